"""Posterior impulse responses: each draw equals the numeric responses of the VAR at that draw."""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

import pymc_dlm as dlm


def test_each_draw_matches_the_numeric_responses():
    rng = np.random.default_rng(0)
    S = np.array([[1.0, 0.4], [0.4, 2.0]])
    y = rng.normal(size=(30, 2))
    with pm.Model(coords={"t": np.arange(30), "series": ["a", "b"]}) as m:
        A = pm.Normal("A", 0.0, 0.3, shape=(2, 2, 2))
        dlm.DLM("y", dlm.VAR(A, S), observed=y, dims=("t", "series"))
    draws = rng.normal(0.0, 0.2, size=(1, 3, 2, 2, 2))
    post = xr.Dataset({"A": (("chain", "draw", "lag", "row", "col"), draws)})
    out = dlm.sample_impulse_responses(m, post, 4, orthogonalized=True)
    assert out.irf.dims == ("chain", "draw", "horizon", "series", "shock")
    assert list(out.series.values) == ["a", "b"]
    for d in range(3):
        num = dlm.VAR(draws[0, d], S)
        ref = dlm.impulse_responses(num, 4, orthogonalized=True)
        np.testing.assert_allclose(out.irf.values[0, d], ref.observed, rtol=1e-12)
        np.testing.assert_allclose(out.state_irf.values[0, d], ref.states, rtol=1e-12)
        np.testing.assert_allclose(out.fevd.values[0, d], dlm.fevd(num, 5), rtol=1e-12)
