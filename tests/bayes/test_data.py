"""Observed data that change through pm.set_data: values, missing pattern and length follow
into the log-likelihood (equal to the NumPy engine's at the same parameters, rtol 1e-10),
the posterior predictive and sample_states; a change the graph cannot follow (the pattern
of missing values in the exact diffuse period) raises instead of giving -inf."""

from __future__ import annotations

import functools

import numpy as np
import pymc as pm
import pytest
from arviz_base import from_dict

import pymc_dlm as dlm

S_LEVEL, S_OBS = 38.3, 122.9


def numpy_llf(y):
    return dlm.kalman_filter(dlm.LocalLevel(S_LEVEL, S_OBS), y).llf


@functools.cache
def nile_data_model():
    y = dlm.datasets.load_nile().to_numpy().copy()
    y[10] = np.nan
    with pm.Model(coords={"time": np.arange(100)}) as m:
        data = dlm.Data("y", y, dims="time")
        s = pm.HalfNormal("s", 100.0)
        dlm.DLM("flow", dlm.LocalLevel(s, S_OBS), observed=data, dims="time")
    return m, y, m.compile_logp(vars=m.observed_RVs)


POINT = {"s_log__": np.log(S_LEVEL)}


def test_new_missing_pattern_and_length_follow():
    m, y, logp = nile_data_model()
    try:
        assert logp(POINT) == pytest.approx(numpy_llf(y), rel=1e-10)
        y2 = y.copy()
        y2[10] = 900.0
        y2[[30, 31, 70]] = np.nan
        with m:
            pm.set_data({"y": y2})  # PyMC stores NaN data as a masked array; DLM refills NaN
        assert not isinstance(m["y"].get_value(), np.ma.MaskedArray)
        assert logp(POINT) == pytest.approx(numpy_llf(y2), rel=1e-10)
        assert m.compile_logp(vars=m.observed_RVs)(POINT) == pytest.approx(numpy_llf(y2), rel=1e-10)
        y3 = y2[:80]
        with m:
            pm.set_data({"y": y3}, coords={"time": np.arange(80)})
        assert logp(POINT) == pytest.approx(numpy_llf(y3), rel=1e-10)
        post = from_dict({"posterior": {"s": np.full((1, 2), S_LEVEL)}})
        with m:
            pp = pm.sample_posterior_predictive(post, progressbar=False, random_seed=1)
        assert pp.posterior_predictive["flow"].shape == (1, 2, 80)
        st = dlm.sample_states(m, post)
        ref = dlm.kalman_smoother(dlm.LocalLevel(S_LEVEL, S_OBS), y3)
        np.testing.assert_allclose(st.state_mean.values[0, 1], ref.a_smooth, rtol=1e-10)
    finally:
        with m:
            pm.set_data({"y": y}, coords={"time": np.arange(100)})


def test_diffuse_terms_move_to_the_first_observed_step():
    """y_2 (the step after the diffuse one) set missing: its entry is 0 and the diffuse
    step's term joins step 3's, so a wholly missing step can leave the pointwise terms."""
    m, y, _ = nile_data_model()
    y5 = y.copy()
    y5[1] = np.nan
    logp_t = m.compile_logp(vars=m.observed_RVs, sum=False)
    try:
        with m:
            pm.set_data({"y": y5})
        (per_t,) = logp_t(POINT)
        ref = dlm.kalman_filter(dlm.LocalLevel(S_LEVEL, S_OBS), y5).llf_t
        assert per_t.shape == (99,) and per_t[0] == 0.0 and per_t[9] == 0.0  # y_2, y_11
        assert per_t[1] == pytest.approx(ref[0] + ref[2], rel=1e-10)
        np.testing.assert_allclose(per_t[2:], ref[3:], rtol=1e-10)
    finally:
        with m:
            pm.set_data({"y": y})


def test_a_change_in_the_diffuse_period_asks_for_a_rebuild():
    m, y, logp = nile_data_model()
    y4 = y.copy()
    y4[0] = np.nan
    try:
        with m:
            pm.set_data({"y": y4})
        with pytest.raises(ValueError, match="rebuild the model"):
            logp(POINT)
    finally:
        with m:
            pm.set_data({"y": y})


def test_data_container_checks():
    with pm.Model():
        with pytest.raises(ValueError, match="must not contain inf"):
            dlm.Data("y", [1.0, np.inf])
        with pytest.raises(ValueError, match="dims must name the 1 axes"):
            dlm.Data("y", [1.0, 2.0], dims=("a", "b"))
