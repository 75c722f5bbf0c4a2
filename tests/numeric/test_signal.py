"""The smoothed signal Z_t alpha_hat_t + d_t and its variance.

Reference: statsmodels 0.15.0 (which has no signal output) ``UnobservedComponents("lltrend",
seasonal=12, use_exact_diffuse=True)`` at the same parameters: its design matrix times its
``smoothed_state``, and design x ``smoothed_state_cov`` x design', rtol 1e-8 (D&K 2012 section
4.5.3); ``components(signal=True)`` against the sum of the component contributions (rtol 1e-12).
"""

from __future__ import annotations

import numpy as np

import pymc_dlm as dlm


def test_signal_matches_statsmodels():
    import statsmodels.api as sm

    y = np.log(dlm.datasets.load_airline_passengers())
    mod = dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)
    s = dlm.kalman_smoother(mod, y)
    ref = sm.tsa.UnobservedComponents(y.to_numpy(), "lltrend", seasonal=12,
                                      use_exact_diffuse=True).smooth(
        [0.01**2, 0.02**2, 0.002**2, 0.01**2])
    Z = ref.model["design"][0]  # (m,): constant design
    np.testing.assert_allclose(s.signal[:, 0], Z @ ref.smoothed_state, rtol=1e-8)
    np.testing.assert_allclose(s.signal_var[:, 0, 0],
                               np.einsum("i,ijt,j->t", Z, ref.smoothed_state_cov, Z), rtol=1e-8)
    res = dlm.fit(mod, y, method="em", max_iter=1)
    comps = res.components(signal=True)
    np.testing.assert_allclose(comps["signal"], comps[["trend", "seasonal"]].sum(axis=1),
                               rtol=1e-12)
    assert (comps["signal_var"] > 0).all() and comps.index.equals(y.index)
