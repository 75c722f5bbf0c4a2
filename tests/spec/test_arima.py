"""SARIMAX: state-space form, log-likelihood against statsmodels at fixed parameters, the
maximum likelihood fits R's ``arima`` publishes, the partial-autocorrelation transform.

References and tolerances:

* statsmodels 0.15 ``SARIMAX(..., simple_differencing=True)`` at fixed parameters: the
  likelihood of the differenced data with the ARMA part stationary (statsmodels' own Lyapunov
  solve).  Agreement to rtol 1e-9 (the two Lyapunov solvers differ in the last digits).
* Our likelihood keeps the differencing in the state, exactly diffuse.  In KFAS's convention
  (``convention="kfas"``), which drops 1/2 log(2 pi) for each diffuse
  observation, it is R's ``arima`` / statsmodels' differenced value; in statsmodels'
  convention (the default) it is that value minus K/2 log(2 pi), K = d + sD.  Both are checked.
* R ``arima`` (and statsmodels): Nile ARIMA(0,1,1): ma1 -0.73295, sigma2 20599.7, loglik
  -632.54563; airline model (0,1,1)(0,1,1)_12 on log passengers (Box and Jenkins 1976):
  ma1 -0.4018, sma1 -0.5569, sigma2 0.001348, loglik 244.70 (statsmodels 244.6965).
  Optimum tolerances are those of L-BFGS-B on a flat optimum (gradient 1e-5 relative).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX as SM

import pymc_dlm as dlm
from pymc_dlm.estimation import ar_to_pacf, ma_to_pacf, pacf_to_ar, pacf_to_ma

HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def simulated(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=n)) * 0.3 + rng.normal(size=n)


class TestStateSpaceForm:
    def test_arima_111_matrices(self):
        mod = dlm.SARIMAX((1, 1, 1), ar=[0.5], ma=[0.4], sigma=2.0)
        np.testing.assert_array_equal(mod.Z, [[1.0, 1.0, 0.0]])
        np.testing.assert_array_equal(mod.T, [[1, 1, 0], [0, 0.5, 1], [0, 0, 0]])
        np.testing.assert_array_equal(mod.R, [[0.0], [1.0], [0.4]])
        np.testing.assert_array_equal(mod.Q, [[4.0]])
        np.testing.assert_array_equal(mod.H, [[0.0]])
        assert mod.diffuse == (True, False, False)
        assert mod.stationary == (False, True, True)

    def test_multiplicative_seasonal_polynomials(self):
        """(1 - 0.5L)(1 - 0.3L^4) = 1 - 0.5L - 0.3L^4 + 0.15L^5; (1 + 0.4L)(1 + 0.2L^4)."""
        mod = dlm.SARIMAX((1, 0, 1), (1, 0, 1, 4), ar=[0.5], ma=[0.4], seasonal_ar=[0.3],
                          seasonal_ma=[0.2], sigma=1.0)
        np.testing.assert_allclose(mod.T[:, 0], [0.5, 0, 0, 0.3, -0.15, 0.0])
        np.testing.assert_allclose(mod.R[:, 0], [1, 0.4, 0, 0, 0.2, 0.08])

    def test_seasonal_differencing_lags(self):
        """(1 - L)(1 - L^12) = 1 - L - L^12 + L^13: Z holds delta = (1, 0 x 10, 1, -1)."""
        mod = dlm.SARIMAX((0, 1, 1), (0, 1, 1, 12), ma=[-0.4], seasonal_ma=[-0.5], sigma=1.0)
        assert mod.m == 13 + 14 and sum(mod.diffuse) == 13
        np.testing.assert_array_equal(mod.Z[0, :13], [1] + [0] * 10 + [1, -1])

    def test_symbolic_coefficients_pass_through(self):
        phi = pt.dvector("phi", shape=(2,))
        mod = dlm.SARIMAX((2, 0, 0), ar=phi, sigma=1.0)
        assert not mod.is_numeric
        from pymc_dlm.symbolic import system_tensors

        T = system_tensors(mod).T.eval({phi: [0.5, -0.3]})
        np.testing.assert_array_equal(T, dlm.SARIMAX((2, 0, 0), ar=[0.5, -0.3], sigma=1.0).T)

    @pytest.mark.parametrize(("kwargs", "match"), [
        (dict(order=(1, 0)), "order must be 3 non-negative integers"),
        (dict(order=(1, 0, 0)), "ar needs 1 coefficients"),
        (dict(order=(2, 0, 0), ar=[0.5]), "ar must have 2 coefficients"),
        (dict(order=(1, 0, 0), ar=[1.0]), "not stationary"),
        (dict(order=(0, 0, 1)), "ma needs 1 coefficients"),
        (dict(order=(0, 0, 0), seasonal_order=(0, 1, 0, 1)), "period s >= 2"),
        (dict(order=(1, 0, 0), ar=[np.nan]), "ar must be finite"),
    ])
    def test_bad_input(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            dlm.SARIMAX(sigma=1.0, **kwargs)

    def test_sigma_is_required(self):
        with pytest.raises(ValueError, match="sigma .* is required"):
            dlm.SARIMAX((0, 0, 0), sigma=None)


class TestLoglikeAgainstStatsmodels:
    def test_arma_21(self):
        y = simulated()
        ours = dlm.loglike(dlm.SARIMAX((2, 0, 1), ar=[0.5, -0.3], ma=[0.4], sigma=1.3), y)
        ref = SM(y, order=(2, 0, 1)).loglike(np.array([0.5, -0.3, 0.4, 1.69]))
        assert ours == pytest.approx(ref, rel=1e-9)

    def test_sarima_101_100_4(self):
        y = simulated()
        ours = dlm.loglike(dlm.SARIMAX((1, 0, 1), (1, 0, 0, 4), ar=[0.5], ma=[0.4],
                                       seasonal_ar=[0.3], sigma=1.3), y)
        ref = SM(y, order=(1, 0, 1), seasonal_order=(1, 0, 0, 4)).loglike(
            np.array([0.5, 0.4, 0.3, 1.69]))
        assert ours == pytest.approx(ref, rel=1e-9)

    def test_arima_111_with_a_regressor(self):
        """Regression with ARIMA errors: y = 2 x + u, u ARIMA(1,1,1); statsmodels differences
        y and x (simple_differencing); our diffuse u_0 costs one diffuse step."""
        rng = np.random.default_rng(1)
        x = np.cumsum(rng.normal(size=80))
        y = 2.0 * x + np.cumsum(rng.normal(size=80))
        reg = dlm.Regression(x[:, None]).replace(a1=[2.0], P1=[[0.0]], diffuse=[False])
        mod = reg + dlm.SARIMAX((1, 1, 1), ar=[0.5], ma=[0.4], sigma=1.3)
        ref = SM(y, exog=x, order=(1, 1, 1), simple_differencing=True).loglike(
            np.array([2.0, 0.5, 0.4, 1.69]))
        assert dlm.loglike(mod, y, convention="kfas") == pytest.approx(ref, rel=1e-9)
        assert dlm.loglike(mod, y) + HALF_LOG_2PI == pytest.approx(ref, rel=1e-9)


class TestMaximumLikelihood:
    def test_nile_arima_011(self):
        res = dlm.fit("arima(0,1,1)", dlm.datasets.load_nile())
        assert res.converged
        # fit_mle's parameters: atanh phi.arima.ma1, log sigma2.arima (docs/estimation.md)
        ma1, sigma2 = np.tanh(res.params[0]), np.exp(res.params[1])
        assert ma1 == pytest.approx(-0.73295, abs=2e-5)
        assert sigma2 == pytest.approx(20599.7, rel=2e-5)
        assert res.estimates["sigma2.arima"] == pytest.approx(sigma2, rel=1e-12)
        # R arima's log-likelihood: KFAS's convention = ours + 1/2 log(2 pi) (one diffuse obs.)
        assert res.log_likelihood + HALF_LOG_2PI == pytest.approx(-632.54563, abs=1e-5)
        kfas = dlm.loglike(res.model, dlm.datasets.load_nile(), convention="kfas")
        assert kfas == pytest.approx(-632.54563, abs=1e-5)

    def test_airline_model(self):
        y = np.log(dlm.datasets.load_airline_passengers())
        res = dlm.fit("sarima(0,1,1)(0,1,1,12)", y)
        assert res.converged
        ma1, sma1 = np.tanh(res.params[:2])
        assert ma1 == pytest.approx(-0.4018, abs=1e-4)
        assert sma1 == pytest.approx(-0.5569, abs=1e-4)
        assert np.exp(res.params[2]) == pytest.approx(0.001348, rel=1e-3)  # log sigma2.arima
        assert res.log_likelihood + 13 * HALF_LOG_2PI == pytest.approx(244.6965, abs=1e-4)
        assert dlm.loglike(res.model, y, convention="kfas") == pytest.approx(244.6965, abs=1e-4)


class TestPartialAutocorrelationTransform:
    def test_round_trip_and_stationarity(self):
        rng = np.random.default_rng(3)
        for p in (1, 2, 3, 5):
            r = rng.uniform(-0.99, 0.99, size=p)
            phi = pacf_to_ar(r)
            comp = np.zeros((p, p))
            comp[0] = phi
            comp[1:, :-1] = np.eye(p - 1)
            assert np.max(np.abs(np.linalg.eigvals(comp))) < 1
            np.testing.assert_allclose(ar_to_pacf(phi), r, rtol=1e-10, atol=1e-12)
            theta = pacf_to_ma(r)
            # 1 + theta_1 z + ... + theta_q z^q has its roots outside the unit circle
            assert np.all(np.abs(np.roots(np.r_[theta[::-1], 1.0])) > 1)
            np.testing.assert_allclose(ma_to_pacf(theta), r, rtol=1e-10, atol=1e-12)

    def test_ar2_closed_form(self):
        """AR(2): phi1 = r1 (1 - r2), phi2 = r2."""
        np.testing.assert_allclose(pacf_to_ar([0.6, -0.4]), [0.6 * 1.4, -0.4])

    def test_symbolic_equals_numeric(self):
        r = pt.dvector("r", shape=(3,))
        vals = np.array([0.3, -0.5, 0.8])
        np.testing.assert_allclose(pacf_to_ar(r).eval({r: vals}), pacf_to_ar(vals), rtol=1e-14)
        np.testing.assert_allclose(pacf_to_ma(r).eval({r: vals}), pacf_to_ma(vals), rtol=1e-14)

    def test_bad_input(self):
        with pytest.raises(ValueError, match=r"must lie in \(-1, 1\)"):
            pacf_to_ar([0.5, 1.0])
        with pytest.raises(ValueError, match="not stationary"):
            ar_to_pacf([1.2])
        with pytest.raises(ValueError, match="static length"):
            pacf_to_ar(pt.dvector("v"))

    def test_priors_on_partial_autocorrelations_in_pymc(self):
        """The documented route: Uniform(-1, 1) priors on r, ar = pacf_to_ar(r)."""
        y = simulated(60, seed=4)
        with pm.Model() as m:
            r = pm.Uniform("r", -1, 1, shape=2)
            sigma = pm.HalfNormal("sigma", 2.0)
            dlm.DLM("y", dlm.SARIMAX((2, 0, 0), ar=pacf_to_ar(r), sigma=sigma), observed=y)
        logp = m.compile_logp(vars=m.observed_RVs)
        point = m.initial_point()
        point["r_interval__"] = np.array([0.4, -0.2])  # r = tanh(x / 2)
        point["sigma_log__"] = np.array(0.1)
        ref = dlm.loglike(dlm.SARIMAX((2, 0, 0), ar=pacf_to_ar(np.tanh([0.2, -0.1])),
                                      sigma=np.exp(0.1)), y)
        assert float(logp(point)) == pytest.approx(ref, rel=1e-10)
