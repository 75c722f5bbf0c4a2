"""Dynamic factor models against statsmodels 0.15 ``DynamicFactor`` at fixed parameters.

Data: standardised US GDP, consumption and investment growth and the change in
unemployment (bundled ``load_us_macro``).  Parameters are near statsmodels' own estimates
(rounded, so nothing depends on an optimiser).  statsmodels starts every state from the
stationary distribution, as we do; log-likelihoods agree to rtol 1e-10 and the smoothed
factors to 1e-8 (accumulated rounding over 202 steps of two Lyapunov solutions).
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.statespace.dynamic_factor import DynamicFactor as SMDF

import pymc_dlm as dlm

LAM = np.array([-0.89, -0.63, -0.74, 0.43])
S2 = np.array([0.02, 0.56, 0.33, 0.40])
AR = np.array([0.36, 0.07])
RHO = np.array([-0.76, -0.12, -0.13, 0.53])


@pytest.fixture(scope="module")
def y():
    macro = dlm.datasets.load_us_macro()
    g = 100 * np.log(macro[["realgdp", "realcons", "realinv"]]).diff().dropna()
    g["unemp"] = macro["unemp"].diff().dropna()
    return ((g - g.mean()) / g.std()).to_numpy()


def check_against_statsmodels(mod, y, sm_model, params):
    res = sm_model.smooth(params)
    assert dlm.loglike(mod, y) == pytest.approx(res.llf, rel=1e-10)
    ours = dlm.kalman_smoother(mod, y).a_smooth
    np.testing.assert_allclose(ours, res.smoothed_state.T, atol=1e-8)


class TestDynamicFactor:
    def test_one_ar2_factor_white_noise_errors(self, y):
        mod = dlm.DynamicFactor(LAM[:, None], AR.reshape(2, 1, 1), sigma_obs=np.sqrt(S2))
        assert mod.state_names == ("factor0", "factor0.L1")
        check_against_statsmodels(mod, y, SMDF(y, k_factors=1, factor_order=2, error_order=0),
                                  np.r_[LAM, S2, AR])

    def test_ar1_idiosyncratic_errors(self, y):
        mod = dlm.DynamicFactor(LAM[:, None], AR.reshape(2, 1, 1), idio_ar=RHO,
                                idio_sigma=np.sqrt(S2), names=["gdp", "cons", "inv", "unemp"])
        assert mod.state_names[2:] == ("e.gdp", "e.cons", "e.inv", "e.unemp")
        np.testing.assert_array_equal(mod.H, np.zeros((4, 4)))
        check_against_statsmodels(mod, y, SMDF(y, k_factors=1, factor_order=2, error_order=1),
                                  np.r_[LAM, S2, AR, RHO])

    def test_two_var1_factors_lower_triangular_loadings(self, y):
        lam = np.array([[0.9, 0.0], [0.6, 0.3], [0.7, -0.2], [-0.4, 0.5]])
        A = np.array([[0.4, 0.1], [-0.1, 0.3]])
        mod = dlm.DynamicFactor(lam, A, sigma_obs=np.sqrt(S2))
        check_against_statsmodels(mod, y, SMDF(y, k_factors=2, factor_order=1),
                                  np.r_[lam.ravel(), S2, A.ravel()])

    def test_factor_identified_up_to_sign(self, y):
        """(Lambda, f) and (-Lambda, -f): the same likelihood, the smoothed factor negated."""
        a = dlm.DynamicFactor(LAM[:, None], AR.reshape(2, 1, 1), sigma_obs=np.sqrt(S2))
        b = dlm.DynamicFactor(-LAM[:, None], AR.reshape(2, 1, 1), sigma_obs=np.sqrt(S2))
        assert dlm.loglike(a, y) == pytest.approx(dlm.loglike(b, y), rel=1e-12)
        np.testing.assert_allclose(dlm.kalman_smoother(b, y).a_smooth[:, 0],
                                   -dlm.kalman_smoother(a, y).a_smooth[:, 0], atol=1e-12)

    def test_missing_values(self, y):
        """A NaN row adds nothing: dropping GDP at t = 10 equals a model observed without it."""
        mod = dlm.DynamicFactor(LAM[:, None], AR.reshape(2, 1, 1), sigma_obs=np.sqrt(S2))
        z = y.copy()
        z[10, 0] = np.nan
        res = SMDF(z, k_factors=1, factor_order=2).smooth(np.r_[LAM, S2, AR])
        assert dlm.loglike(mod, z) == pytest.approx(res.llf, rel=1e-10)

    @pytest.mark.parametrize(("kwargs", "match"), [
        (dict(loadings=np.ones((3, 2)), factor_ar=[[0.5]]), r"loadings must be \(p, k\)"),
        (dict(loadings=np.ones((3, 1)), factor_ar=[[1.0]]), "not stationary"),
        (dict(loadings=np.ones((2, 1)), factor_ar=[[0.5]], sigma_obs=[1, 1], idio_ar=[0, 0],
              idio_sigma=[1, 1]), "not both"),
        (dict(loadings=np.ones((2, 1)), factor_ar=[[0.5]], idio_ar=[0.1, 0.2]), "need both"),
        (dict(loadings=np.ones((2, 1)), factor_ar=[[0.5]], idio_ar=[0.1, 1.0],
              idio_sigma=[1, 1]), r"idio_ar must lie in \(-1, 1\)"),
        (dict(loadings=np.ones((2, 1)), factor_ar=[[0.5]], sigma_obs=[1.0]), "shape"),
    ])
    def test_bad_input(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            dlm.DynamicFactor(**kwargs)
