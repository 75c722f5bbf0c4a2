"""The NumPy engine against independent references.

- statsmodels 0.15 (`MLEModel` holding exactly our matrices; exact diffuse initialisation):
  every filtered/predicted/smoothed quantity at every t, rtol 1e-8 (two float64 codes with
  different operation orders agree to ~1e-12; 1e-8 leaves room for ill-conditioned steps).
- dense Gaussian conditioning on the stacked y (tests/conftest.py): llf and smoothed moments,
  rtol 1e-10 (both are exact; only rounding differs).
"""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from conftest import dense_reference, statsmodels_smooth
from reference_models import NILE_H, NILE_Q, REFERENCE_MODELS, ar2, bivariate, trend_seasonal, tv_intercepts, tv_regression
from pymc_dlm.numeric.assemble import at_time

RTOL = 1e-8


def _compare(model, y, rtol=RTOL):
    f = dlm.kalman_filter(model, y)
    s = dlm.kalman_smoother(model, filter_result=f)
    ref = statsmodels_smooth(model, np.asarray(y, float))
    y2 = np.asarray(y, float).reshape(len(y), -1)
    scale_a = np.max(np.abs(f.a_pred[: f.n]))
    atol_a = rtol * scale_a
    np.testing.assert_allclose(f.llf, ref.llf, rtol=rtol)
    np.testing.assert_allclose(f.llf_t, ref.llf_obs, rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(f.a_pred, ref.predicted_state.T, rtol=rtol, atol=atol_a)
    np.testing.assert_allclose(f.a_filt, ref.filtered_state.T, rtol=rtol, atol=atol_a)
    scale_P = np.max(np.abs(f.P_pred[f.n_diffuse:]))
    np.testing.assert_allclose(
        f.P_pred, np.moveaxis(ref.predicted_state_cov, -1, 0), rtol=rtol, atol=rtol * scale_P
    )
    np.testing.assert_allclose(
        f.P_filt, np.moveaxis(ref.filtered_state_cov, -1, 0), rtol=rtol, atol=rtol * scale_P
    )
    obs = ~np.isnan(y2)
    nd = f.n_diffuse
    # in diffuse steps with a non-diagonal H statsmodels reports decorrelated errors; ours is
    # always v_t = y_t - Z_t a_t - d_t, checked there against its definition
    after = obs.copy()
    after[:nd] = False
    np.testing.assert_allclose(f.v[after], ref.forecasts_error.T[after], rtol=rtol, atol=atol_a)
    s_ = dlm.numeric.system_arrays(model)
    for t in range(nd):
        Z, d = at_time(s_.Z, t), at_time(s_.d, t)
        np.testing.assert_allclose(f.v[t], y2[t] - Z @ f.a_pred[t] - d, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        f.F[nd:], np.moveaxis(ref.forecasts_error_cov, -1, 0)[nd:], rtol=rtol, atol=rtol * scale_P
    )
    full = obs.all(axis=1)
    full[:nd] = False
    np.testing.assert_allclose(
        f.K[full], np.moveaxis(ref.kalman_gain, -1, 0)[full], rtol=1e-7, atol=1e-10
    )
    np.testing.assert_allclose(s.a_smooth, ref.smoothed_state.T, rtol=rtol, atol=atol_a)
    np.testing.assert_allclose(
        s.V, np.moveaxis(ref.smoothed_state_cov, -1, 0), rtol=1e-7, atol=rtol * scale_P
    )
    np.testing.assert_allclose(
        s.eta_hat, ref.smoothed_state_disturbance.T, rtol=1e-7, atol=rtol * np.sqrt(scale_P)
    )
    np.testing.assert_allclose(
        s.eta_var, np.moveaxis(ref.smoothed_state_disturbance_cov, -1, 0), rtol=1e-7,
        atol=rtol * scale_P,
    )
    np.testing.assert_allclose(
        s.eps_hat[obs], ref.smoothed_measurement_disturbance.T[obs], rtol=1e-7,
        atol=rtol * np.sqrt(scale_P),
    )
    return f, s


class TestNile:
    """Nile local level at D&K's estimates (sigma_eps^2 = 15099, sigma_eta^2 = 1469.1)."""

    def test_every_quantity_matches_statsmodels(self):
        y = dlm.datasets.load_nile()
        _compare(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)

    def test_matches_unobserved_components(self):
        import statsmodels.api as sm

        y = dlm.datasets.load_nile()
        f = dlm.kalman_filter(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)
        uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True)
        np.testing.assert_allclose(f.llf, uc.loglike([NILE_H, NILE_Q]), rtol=1e-10)

    def test_loglike_fast_path_equals_filter(self):
        y = dlm.datasets.load_nile()
        mod = dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5)
        assert dlm.loglike(mod, y) == pytest.approx(dlm.kalman_filter(mod, y).llf, rel=1e-14)

    def test_index_is_kept(self):
        y = dlm.datasets.load_nile()
        f = dlm.kalman_filter(dlm.LocalLevel(1.0, 1.0), y)
        assert f.index.equals(y.index)
        assert f.state_names == ("level",)


def test_trend_seasonal_matches_statsmodels():
    """Local linear trend + monthly dummy seasonal (13 states) on log airline passengers."""
    mod, y = trend_seasonal()
    f, _ = _compare(mod, y)
    assert f.n_diffuse == 13


def test_trigonometric_seasonal_matches_statsmodels_uc():
    import statsmodels.api as sm

    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
    mod = dlm.LocalLevel(0.03, 0.02) + dlm.Seasonal(12, 0.005, form="trigonometric")
    uc = sm.tsa.UnobservedComponents(
        y, "llevel", freq_seasonal=[{"period": 12}], use_exact_diffuse=True
    )
    ref = uc.loglike([0.02**2, 0.03**2, 0.005**2])
    np.testing.assert_allclose(dlm.loglike(mod, y), ref, rtol=1e-10)
    _compare(mod, y)


def test_multivariate_missing_diffuse_matches_statsmodels():
    mod, y = bivariate()
    f, _ = _compare(mod.replace(stationary=None), y)
    assert f.nobs == y.size - np.isnan(y).sum()


def test_time_varying_regression_matches_statsmodels():
    _compare(*tv_regression())


def _assert_matches_dense(mod, y, atol_mean, atol_cov):
    llf, means, covs = dense_reference(mod, y)
    s = dlm.kalman_smoother(mod, y)
    np.testing.assert_allclose(s.filter.llf, llf, rtol=1e-10)
    np.testing.assert_allclose(s.a_smooth, means, rtol=1e-10, atol=atol_mean)
    np.testing.assert_allclose(s.V, covs, rtol=1e-9, atol=atol_cov)


class TestDenseConditioning:
    """Known initialisation: the filter's llf and the smoother's moments equal the exact
    Gaussian computations on the stacked vector (rtol 1e-10)."""

    @pytest.mark.parametrize("missing", [False, True])
    def test_bivariate_known_init(self, missing):
        mod, y = bivariate(n=12)
        mod = mod.replace(diffuse=[False] * 3, P1=np.diag([2.0, 0.78125, 3.0]), a1=[1, 0, -1])
        if not missing:
            y = np.nan_to_num(y, nan=0.3)
        _assert_matches_dense(mod, y, atol_mean=1e-10, atol_cov=1e-11)

    def test_time_varying_and_intercepts(self):
        _assert_matches_dense(*tv_intercepts(), atol_mean=1e-12, atol_cov=1e-12)

    def test_stationary_ar2_initialisation(self):
        """AR(2) starts from its stationary covariance: check against the dense reference
        built with the closed-form autocovariances of an AR(2)."""
        phi1, phi2, s2 = 0.5, -0.3, 2.0
        mod, y = ar2()
        g0 = (1 - phi2) * s2 / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))
        from pymc_dlm.numeric import system_arrays

        P1 = system_arrays(mod).P1
        np.testing.assert_allclose(P1[0, 0], g0, rtol=1e-12)
        llf, means, _ = dense_reference(mod, y)
        np.testing.assert_allclose(dlm.loglike(mod, y), llf, rtol=1e-10)


class TestMissing:
    def test_all_missing_gives_prior_moments(self):
        mod = dlm.LocalLevel(1.0, 2.0).replace(a1=[3.0], P1=[[4.0]], diffuse=[False])
        y = np.full(5, np.nan)
        f = dlm.kalman_filter(mod, y)
        s = dlm.kalman_smoother(mod, filter_result=f)
        assert f.llf == 0.0 and f.nobs == 0
        np.testing.assert_allclose(f.P_pred[:, 0, 0], 4.0 + np.arange(6))
        np.testing.assert_allclose(s.a_smooth[:, 0], 3.0)
        np.testing.assert_allclose(s.V[:, 0, 0], 4.0 + np.arange(5))
        assert np.isnan(f.v).all()

    def test_all_missing_diffuse_stays_diffuse(self):
        f = dlm.kalman_filter(dlm.LocalLevel(1.0, 2.0), np.full(4, np.nan))
        assert f.llf == 0.0 and f.n_diffuse == 4 and np.all(np.isfinite(f.a_pred))

    def test_missing_row_adds_zero_loglik(self):
        y = dlm.datasets.load_nile().to_numpy().copy()
        mod = dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5)
        y[30] = np.nan
        f = dlm.kalman_filter(mod, y)
        assert f.llf_t[30] == 0.0 and f.rank[30] == 0
        # the prediction steps over the gap: P_31 = P_30 + Q twice
        np.testing.assert_allclose(f.P_pred[31, 0, 0], f.P_pred[30, 0, 0] + NILE_Q, rtol=1e-14)


class TestSingularF:
    def test_singular_F_uses_generalised_inverse(self):
        """Two identical noiseless observations of one state: F = P [[1,1],[1,1]] has rank 1;
        the update must equal the update with one of them, and logdet the log of the non-zero
        eigenvalue 2P (Rao 1973)."""
        P1 = 2.5
        mod2 = dlm.StateSpaceModel(Z=[[1.0], [1.0]], T=[[1.0]], Q=[[0.7]], H=np.zeros((2, 2)),
                                   a1=[0.0], P1=[[P1]])
        mod1 = dlm.StateSpaceModel(Z=[[1.0]], T=[[1.0]], Q=[[0.7]], H=[[0.0]], a1=[0.0],
                                   P1=[[P1]])
        y2 = np.array([[1.2, 1.2], [0.4, 0.4]])
        f2 = dlm.kalman_filter(mod2, y2)
        f1 = dlm.kalman_filter(mod1, y2[:, :1])
        assert f2.rank.tolist() == [1, 1]
        np.testing.assert_allclose(f2.a_filt, f1.a_filt, rtol=1e-14)
        np.testing.assert_allclose(f2.P_pred, f1.P_pred, rtol=1e-14)
        # llf_1: rank 1, pseudo-det 2 P1, F^+ = [[1,1],[1,1]] / (4 P1), v'F^+v = 2.4^2 / (4 P1)
        expect = -0.5 * (np.log(2 * np.pi) + np.log(2 * P1) + 2.4**2 / (4 * P1))
        np.testing.assert_allclose(f2.llf_t[0], expect, rtol=1e-14)
        assert np.all(np.isfinite(f2.llf_t))
        # loglike's fast loop meets the singular F and hands the series back to the
        # generalised-inverse path: same total
        assert dlm.loglike(mod2, y2) == pytest.approx(f2.llf, rel=1e-14)


def test_steady_state_steps_match_full_recursion():
    """Once P changes by rounding only (8 ulps), the fast loop updates only the mean (same
    arithmetic): the log-likelihood equals the full recursion's to rounding, also after
    missing values interrupt the steady state (and it is found again); with steady_tol = -1
    (off) the fast loop computes the full filter's recursion: equal to 1e-14 (bit for bit in
    most runs; numba compiles the shared kernels separately into each loop, and one run showed
    rounding differences, up to 2.2e-15 relative, on a third of the steps)."""
    rng = np.random.default_rng(5)
    n = 3000
    y = np.cumsum(rng.normal(0, 0.3, n)) + rng.normal(0, 1.0, n)
    y[[700, 1500, 1501, 2900]] = np.nan
    mod = dlm.LocalLevel(0.3, 1.0)
    full = dlm.kalman_filter(mod, y)
    assert dlm.loglike(mod, y) == pytest.approx(full.llf, rel=1e-14, abs=0)
    mod2, y2 = REFERENCE_MODELS["bivariate"](n=1500)
    assert dlm.loglike(mod2, y2) == pytest.approx(dlm.kalman_filter(mod2, y2).llf, rel=1e-13)
    # the same loop with the steady state off: bit for bit
    from pymc_dlm.numeric.adjoint import loglike_forward
    from pymc_dlm.numeric.assemble import system_arrays

    s = system_arrays(mod)
    llf_t = np.empty(n - 1)
    loglike_forward(np.ascontiguousarray(y[1:, None]), s.Z, s.d, s.H, s.T, s.c, s.R, s.Q, full.a_pred[1],
                    full.P_pred[1], 1e-14, -1.0, np.empty((0, 1)), np.empty((0, 1, 1)), llf_t)
    np.testing.assert_allclose(llf_t, full.llf_t[1:], rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_loglike_fast_path_equals_filter(name):
    """``loglike`` runs the diffuse steps with the filter loop and the rest with the
    allocation-free loop: the total equals ``kalman_filter``'s on every reference model."""
    mod, y = REFERENCE_MODELS[name]()
    np.testing.assert_allclose(dlm.loglike(mod, y), dlm.kalman_filter(mod, y).llf, rtol=1e-12)


@pytest.mark.parametrize("case", ["ordinary_row_missing_step", "tv_rq_and_T_zero", "never_ends", "known"])
def test_one_state_diffuse_prefix_equals_the_filter_loop(case):
    """m = p = r = 1: ``loglike_steps`` runs the diffuse steps on scalars
    (filter._diffuse_scalar).  Per step it equals ``kalman_filter`` (the general diffuse
    update, kernels.update_diffuse) bit for bit in the diffuse period and to 1e-14 after it:
    an ordinary row in the diffuse period (Z_1 = 0), a missing step, time-varying R and Q, a
    T_t = 0 that ends the period, a period that never ends, and a known start."""
    from pymc_dlm.numeric.assemble import system_arrays
    from pymc_dlm.numeric.filter import TOL, TOL_DIFFUSE, _diffuse_scalar, loglike_steps
    from pymc_dlm.numeric.adjoint import STEADY_TOL

    rng = np.random.default_rng(5)
    n = 12
    y = rng.standard_normal(n)
    Z = np.ones((n, 1, 1))
    T = np.full((n, 1, 1), 0.9)
    Rm = np.ones((1, 1))
    Q = np.full((1, 1), 0.5)
    diffuse = [True]
    if case == "ordinary_row_missing_step":
        Z[0] = 0.0
        y[1] = np.nan
    elif case == "tv_rq_and_T_zero":
        Z[:2] = 0.0
        T[1] = 0.0
        Rm = rng.uniform(0.5, 1.5, (n, 1, 1))
        Q = rng.uniform(0.5, 1.5, (n, 1, 1))
    elif case == "never_ends":
        Z[:] = 0.0
    else:
        diffuse = [False]
    mod = dlm.StateSpaceModel(Z=Z, d=[0.3], H=[[0.7]], T=T, c=[0.2], R=Rm, Q=Q, a1=[0.1],
                              P1=[[0.0 if diffuse[0] else 2.0]], diffuse=diffuse)
    f = dlm.kalman_filter(mod, y)
    llf_t = np.empty(n)
    status = loglike_steps(y[:, None], *system_arrays(mod), TOL, TOL_DIFFUSE, STEADY_TOL, llf_t)
    assert status == -1
    nd = f.n_diffuse
    assert nd == {"ordinary_row_missing_step": 3, "tv_rq_and_T_zero": 2, "never_ends": n,
                  "known": 0}[case]
    np.testing.assert_array_equal(llf_t[:nd], f.llf_t[:nd])
    s = system_arrays(mod)
    n_d, a, P = _diffuse_scalar(y[:, None], *s[:7], s.a1[0], s.P1[0, 0], s.P1inf[0, 0],
                                TOL_DIFFUSE, np.empty(n))
    assert (n_d, a, P) == (nd, f.a_pred[nd, 0], f.P_pred[nd, 0, 0])  # bit for bit
    np.testing.assert_allclose(llf_t[nd:], f.llf_t[nd:], rtol=1e-14, atol=0)
    assert dlm.loglike(mod, y) == pytest.approx(f.llf, rel=1e-14)


def test_loglike_reports_inf_in_y():
    """The compiled log-likelihood finds the inf; the message names where it is."""
    y = np.ones(5)
    y[3] = -np.inf
    with pytest.raises(ValueError, match=r"must not contain inf .*got inf at \(3, 0\)"):
        dlm.loglike(dlm.LocalLevel(1.0, 1.0), y)


class TestForecast:
    def test_local_level_closed_form(self):
        """Local level: E(y_{n+j}) = a_{n+1}, Var = P_{n+1} + (j-1) q + h (D&K section 2.8)."""
        y = dlm.datasets.load_nile()
        mod = dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5)
        f = dlm.kalman_filter(mod, y)
        fc = dlm.forecast(mod, y, 5)
        a, P = f.a_pred[-1, 0], f.P_pred[-1, 0, 0]
        np.testing.assert_allclose(fc.y_mean[:, 0], a, rtol=1e-14)
        np.testing.assert_allclose(
            fc.y_cov[:, 0, 0], P + np.arange(5) * NILE_Q + NILE_H, rtol=1e-14
        )
        assert list(fc.index) == [1971, 1972, 1973, 1974, 1975]

    def test_date_index_is_extended(self):
        y = dlm.datasets.load_airline_passengers()
        fc = dlm.forecast(dlm.LocalLevel(1.0, 1.0), y, 2)
        assert [str(d.date()) for d in fc.index] == ["1961-01-01", "1961-02-01"]

    def test_time_varying_model_must_cover_horizon(self):
        X = np.ones((12, 1))
        with pytest.raises(ValueError, match=r"needs their future values: pass exog="):
            dlm.forecast(dlm.Regression(X), np.ones(12), 1)

    def test_matches_statsmodels_forecast(self):
        import statsmodels.api as sm

        y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
        mod = dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)
        uc = sm.tsa.UnobservedComponents(y, "lltrend", seasonal=12, use_exact_diffuse=True)
        res = uc.smooth([0.01**2, 0.02**2, 0.002**2, 0.01**2])
        ref = res.get_forecast(24)
        fc = dlm.forecast(mod, y, 24)
        np.testing.assert_allclose(fc.y_mean[:, 0], ref.predicted_mean, rtol=1e-9)
        np.testing.assert_allclose(fc.y_cov[:, 0, 0], ref.var_pred_mean, rtol=1e-9)


def test_simulation_moments():
    """Simulated local level: the sample variance of first differences of y matches
    q + 2h within the Monte Carlo error (6 sigma)."""
    q, h = 1.5, 0.7
    y, alpha = dlm.simulate(dlm.LocalLevel(q**0.5, h**0.5).replace(
        P1=[[0.0]], diffuse=[False]), 20000, rng=11)
    dy = np.diff(y[:, 0])
    var = q + 2 * h
    # Var of the sample variance of a Gaussian MA(1): approx 2 var^2 (1 + 2 rho^2) / n
    rho = -h / var
    se = np.sqrt(2 * var**2 * (1 + 2 * rho**2) / dy.size)
    assert abs(dy.var() - var) < 6 * se
    np.testing.assert_allclose(alpha[0], 0.0)
