"""Damped and polynomial trends: special cases that must coincide exactly with existing
components, and the closed-form forecast functions (Gardner and McKenzie 1985 for the damped
trend; a polynomial of degree k - 1 for a polynomial trend of order k)."""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm


@pytest.fixture(scope="module")
def y():
    return np.log(dlm.datasets.load_airline_passengers().to_numpy())


class TestDampedTrend:
    def test_damping_one_is_the_local_linear_trend(self, y):
        a = dlm.loglike(dlm.DampedTrend(0.02, 0.002, 1.0, 0.05), y)
        assert a == pytest.approx(dlm.loglike(dlm.LocalLinearTrend(0.02, 0.002, 0.05), y),
                                  rel=1e-13)

    def test_forecast_levels_off(self, y):
        """From a_{n+1} = (mu, nu): E(y_{n+1+h}) = mu + (1 + phi + ... + phi^(h-1)) nu."""
        phi = 0.8
        mod = dlm.DampedTrend(0.02, 0.002, phi, 0.05)
        fc = dlm.forecast(mod, y, 30)
        mu, nu = fc.a[0]
        h = np.arange(30)
        expected = mu + nu * (1 - phi**h) / (1 - phi)
        np.testing.assert_allclose(fc.y_mean[:, 0], expected, rtol=1e-12)

    def test_bad_damping(self):
        with pytest.raises(ValueError, match=r"damping must be in \(0, 1\]"):
            dlm.DampedTrend(1.0, 1.0, 1.5)


class TestPolynomialTrend:
    def test_orders_one_and_two_are_level_and_trend(self, y):
        assert dlm.loglike(dlm.PolynomialTrend(1, [0.03], 0.05), y) == pytest.approx(
            dlm.loglike(dlm.LocalLevel(0.03, 0.05), y), rel=1e-13)
        assert dlm.loglike(dlm.PolynomialTrend(2, [0.02, 0.002], 0.05), y) == pytest.approx(
            dlm.loglike(dlm.LocalLinearTrend(0.02, 0.002, 0.05), y), rel=1e-13)

    def test_cubic_forecast_function(self, y):
        """Order 3, no disturbances: E(y_{n+1+h}) = m0 + h m1 + h(h-1)/2 m2 from a_{n+1}."""
        fc = dlm.forecast(dlm.PolynomialTrend(3, sigma_obs=0.05), y, 12)
        m0, m1, m2 = fc.a[0]
        h = np.arange(12)
        np.testing.assert_allclose(fc.y_mean[:, 0], m0 + h * m1 + h * (h - 1) / 2 * m2,
                                   rtol=1e-12)

    @pytest.mark.parametrize(("args", "match"), [
        ((0,), "order must be an integer >= 1"),
        ((2, [1.0]), "sigmas must have order = 2 entries"),
        ((2, [1.0, -1.0]), "finite standard deviation"),
    ])
    def test_bad_input(self, args, match):
        with pytest.raises(ValueError, match=match):
            dlm.PolynomialTrend(*args)


class TestFormulaTerms:
    def test_damped_poly_and_harmonics_build_the_components(self):
        f = dlm.parse_formula("damped + seasonal(12, trig, 2)")
        mod = f.build([0.1, 0.01, 0.8, 0.2, 0.5])
        ref = (dlm.DampedTrend(0.1, 0.01, 0.8) + dlm.Seasonal(12, 0.2, "trigonometric", 2)
               + dlm.Irregular(0.5))
        for k in ("Z", "T", "Q", "H"):
            np.testing.assert_array_equal(getattr(mod, k), getattr(ref, k))
        assert dlm.parse_formula("poly(3)").param_names == (
            "sigma.poly_0", "sigma.poly_1", "sigma.poly_2", "sigma.obs")

    @pytest.mark.parametrize(("text", "match"), [
        ("damped + trend", "already has a level"),
        ("level + poly(2)", "already has a level"),
        ("poly(0)", "unknown term"),
        ("seasonal(12, trig, 7)", r"harmonics in 1\.\.6"),
        ("arima(1,1)", r"expected arima\(p,d,q\)"),
        ("sarima(0,1,1)", r"expected sarima\(p,d,q\)\(P,D,Q,s\)"),
        ("sarima(0,1,1)(0,1,1,1)", "seasonal period s >= 2"),
        ("arima(1,0,0) + sarima(0,1,1)(0,1,1,12)", "appears 2 times"),
    ])
    def test_bad_terms(self, text, match):
        with pytest.raises(ValueError, match=match):
            dlm.parse_formula(text)

    def test_arima_formula_has_no_irregular_unless_asked(self):
        assert dlm.parse_formula("arima(1,0,1)").build([0.5, 0.3, 1.0]).H.tolist() == [[0.0]]
        mod = dlm.parse_formula("level + arima(1,0,0) + irregular").build([1.0, 0.5, 2.0, 3.0])
        assert mod.H.tolist() == [[9.0]]
        # partial autocorrelations (0.5, -0.3) are the AR(2) coefficients (0.65, -0.3)
        np.testing.assert_allclose(
            dlm.parse_formula("arima(2,0,0)").build([0.5, -0.3, 1.0]).T[:, 0], [0.65, -0.3])
