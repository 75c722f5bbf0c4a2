"""align_check_groups on arrays (no PyMC): which steps and values the ArviZ groups keep.

References: the step term log N(v_t; 0, F_t) (scipy's multivariate normal) and its
chain-rule split, row 1 by its marginal and row 2 by its Gaussian conditional given row 1
(closed form); rtol 1e-12 (the same arithmetic in another order).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from pymc_dlm.numeric.check_groups import align_check_groups, checked_steps


def _case(nd, missing=True):
    rng = np.random.default_rng(0)
    n, p = 6, 2
    y = rng.normal(size=(n, p))
    if missing:
        y[3] = np.nan  # a wholly missing step; no partly missing one
    yhat = rng.normal(size=(1, 2, n, p))
    A = rng.normal(size=(1, 2, n, p, p))
    F = A @ np.swapaxes(A, -1, -2) + np.eye(p)
    v = y - yhat
    step = np.zeros((1, 2, n))
    for c, d, t in np.ndindex(1, 2, n):
        if t >= nd and not np.isnan(y[t]).all():
            step[c, d, t] = stats.multivariate_normal(cov=F[c, d, t]).logpdf(v[c, d, t])
    block = -4.2  # what DLM puts in the first checked step for the diffuse steps
    ll = step[..., nd:].copy()
    ll[..., 0] += block
    groups = {"observed_data": xr.Dataset({"y": (("y_dim_0", "y_dim_1"), y)}),
              "log_likelihood": xr.Dataset({"y": (("chain", "draw", "y_dim_0"), ll)})}
    return y, yhat, F, v, step, block, groups


def test_wholly_missing_step_left_out_layout_time_series():
    y, yhat, F, v, step, block, groups = _case(nd=1)
    out = align_check_groups(groups, "y", y, 1, time=("t", np.arange(10, 16)),
                             series=("s", ["a", "b"]), yhat=yhat, F=F)
    obs, ll = out["observed_data"]["y"], out["log_likelihood"]["y"]
    assert obs.dims == ("t", "s") and ll.dims == ("chain", "draw", "t", "s")
    np.testing.assert_array_equal(obs.t.values, [11, 12, 14, 15])
    np.testing.assert_array_equal(obs.values, y[[1, 2, 4, 5]])
    # row 1 by its marginal, row 2 by its conditional given row 1
    for j, t in enumerate([1, 2, 4, 5]):
        Ft, vt = F[0, 1, t], v[0, 1, t]
        first = stats.norm.logpdf(vt[0], 0.0, np.sqrt(Ft[0, 0]))
        mu = Ft[1, 0] / Ft[0, 0] * vt[0]
        second = stats.norm.logpdf(vt[1], mu, np.sqrt(Ft[1, 1] - Ft[1, 0] ** 2 / Ft[0, 0]))
        want = np.array([first + (block if j == 0 else 0.0), second])
        np.testing.assert_allclose(ll.values[0, 1, j], want, rtol=1e-12)
    np.testing.assert_allclose(ll.sum(("t", "s")).values, step.sum(axis=-1) + block, rtol=1e-12)


def test_second_call_changes_nothing_without_a_diffuse_period():
    y, yhat, F, _, _, _, groups = _case(nd=0, missing=False)  # all n steps kept
    out = align_check_groups(groups, "y", y, 0, time=("t", np.arange(6)),
                             series=("s", ["a", "b"]), yhat=yhat, F=F)
    again = align_check_groups(out, "y", y, 0, time=("t", np.arange(6)),
                               series=("s", ["a", "b"]), yhat=yhat, F=F)
    assert "log_likelihood" not in again  # already one term per value: left alone
    xr.testing.assert_identical(again["observed_data"], out["observed_data"])


def test_checked_steps_when_nothing_after_the_diffuse_period_is_observed():
    y = np.array([[1.0], [np.nan], [np.nan]])
    assert checked_steps(y, 1).tolist() == [1]
    assert checked_steps(y, 5).tolist() == [2]
