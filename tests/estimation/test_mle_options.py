"""fit_mle's honesty and options: the issue-23 traps, degenerate data, the variance-scale
summary, fixed parameters, slices of psi, the optimiser keyword, dynaris' estimation page.

References: D&K (2012, section 2.10) for the Nile maximum -633.4646 (15099, 1469.1);
statsmodels 0.15 ``UnobservedComponents(use_exact_diffuse=True)`` (same log-likelihood
convention) for ``fit_constrained`` and for standard errors on the variance scale from its
own numerical Hessian (``cov_type="approx"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest
import statsmodels.api as sm

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_em, fit_mle


@pytest.fixture(scope="module")
def nile():
    return dlm.datasets.load_nile()


@pytest.fixture(scope="module")
def sm_nile(nile):
    return sm.tsa.UnobservedComponents(nile.to_numpy(), "llevel", use_exact_diffuse=True)


def test_the_reported_trap_reaches_the_maximum(nile):
    """Issue 23: from LocalLevel(38, 0.01) the fit stopped at -648.27 with converged=True."""
    res = dlm.fit(dlm.LocalLevel(38.0, 0.01), nile)
    assert res.converged
    assert res.log_likelihood == pytest.approx(-633.4646, abs=1e-4)
    np.testing.assert_allclose(res.estimates[["sigma2.obs", "sigma2.level"]], [15099, 1469.1],
                               rtol=1e-3)


def test_variance_scale_estimates_and_delta_method_errors(nile, sm_nile):
    """At the maximum the delta method from log-variances equals the inverse observed
    information on the variance scale, which statsmodels computes numerically ("approx")."""
    res = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile)
    np.testing.assert_allclose(res.estimates.to_numpy(), [15099.0, 1469.1], rtol=1e-3)
    # statsmodels' numerical Hessian ("approx") at our maximum (its fit stops 1e-2 away)
    ref = sm_nile.smooth(res.estimates.to_numpy(), cov_type="approx")
    np.testing.assert_allclose(res.estimates_bse.to_numpy(), ref.bse, rtol=2e-3)
    text = res.summary()
    assert "sigma2.obs" in text and "log sigma2" not in text
    for line in ("Ljung-Box: Q(1)", "Jarque-Bera:", "Heteroskedasticity H(33)"):
        assert line in text
    # statsmodels' summary numbers on the same residuals (lag 1 Ljung-Box, JB, H)
    lb = ref.test_serial_correlation("ljungbox", lags=1)[0]
    assert f"Q(1) {lb[0, 0]:.3f} (p {lb[1, 0]:.3f})" in text
    jb = ref.test_normality("jarquebera")[0]
    assert f"Jarque-Bera: {jb[0]:.3f} (p {jb[1]:.3f})" in text


def test_a_variance_at_zero_shows_at_the_boundary_without_a_test():
    """UK drivers, level + seasonal + regression: the seasonal variance's maximum is at 0
    (statsmodels: 4e-12); it is reported as such, without a z-test or a standard error."""
    df = dlm.datasets.load_uk_drivers()
    y = np.log(df["drivers_ksi"])
    X = df[["log_petrol_price", "seatbelt_law"]].to_numpy()
    res = dlm.fit(dlm.LocalLevel(0.01, 0.05) + dlm.Seasonal(12, 0.01)
                  + dlm.Regression(X, names=["petrol", "law"]), y)
    assert res.converged and res.boundary.tolist() == [False, False, True]
    assert res.estimates["sigma2.seasonal"] == 0.0 and np.isnan(res.estimates_bse["sigma2.seasonal"])
    line = next(s for s in res.summary().splitlines() if s.startswith("sigma2.seasonal"))
    assert "0 (at boundary)" in line and "nan" not in line
    assert np.isfinite(res.estimates_bse[["sigma2.obs", "sigma2.level"]]).all()


@pytest.mark.parametrize("how", ["model", "formula"])
def test_fixed_parameter_matches_statsmodels_fit_constrained(nile, sm_nile, how):
    ref = sm_nile.fit_constrained({"sigma2.irregular": 15099.0}, disp=0)
    model = dlm.LocalLevel(30.0, 100.0) if how == "model" else "level"
    res = dlm.fit(model, nile, fixed={"sigma2.obs": 15099.0})
    assert res.converged and res.df_model == 2  # one free variance + the diffuse level
    assert res.estimates["sigma2.obs"] == pytest.approx(15099.0, rel=1e-14)
    # statsmodels' constrained fit stops 3e-3 short of the maximum (relative, in sigma2.level);
    # ours is at least as high, and statsmodels' log-likelihood at our point is ours
    assert res.estimates["sigma2.level"] == pytest.approx(ref.params[1], rel=5e-3)
    ours = res.estimates[["sigma2.obs", "sigma2.level"]].to_numpy()
    assert res.log_likelihood == pytest.approx(sm_nile.loglike(ours), abs=1e-8)
    assert res.log_likelihood >= ref.llf - 1e-9
    assert "fixed" in next(s for s in res.summary().splitlines() if s.startswith("sigma2.obs"))
    with pytest.raises(ValueError, match="unknown parameter 'sigma2.foo'"):
        dlm.fit(model, nile, fixed={"sigma2.foo": 1.0})


def test_a_parameter_function_that_slices_psi(nile):
    """Issue 23: ``Q = diag(exp(p[1:]))`` was rejected ("never uses psi[2]")."""
    def model_fn(p):
        base = dlm.LocalLinearTrend(1.0, 1.0, 1.0)
        return base.replace(H=pt.exp(p[0]).reshape((1, 1)), Q=pt.diag(pt.exp(p[1:])))

    res = fit_mle(model_fn, nile, np.log([1e4, 1e3, 1.0]),
                  param_names=["log sigma2.obs", "log sigma2.level", "log sigma2.slope"])
    ref = sm.tsa.UnobservedComponents(nile.to_numpy(), "lltrend", use_exact_diffuse=True).fit(disp=0)
    assert res.converged
    assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-4)


def test_optimizer_keyword_passes_through_dlm_fit(nile):
    """Issue 23: ``method`` named both the estimator and SciPy's optimiser."""
    res = dlm.fit("level", nile, method="mle", optimizer="Nelder-Mead")
    assert res.log_likelihood == pytest.approx(-633.4646, abs=1e-3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        dlm.fit("level", nile, optimizer="newton")


@pytest.mark.parametrize("y, match", [
    (np.full(50, 3.0), "constant"),
    (np.full(50, np.nan), "no observed value"),
    (np.array([1.0]), "fewer than the 2 parameters"),
])
@pytest.mark.parametrize("method", ["mle", "em"])
def test_degenerate_data_is_refused(y, match, method):
    """Issue 23: a constant series gave log-likelihood +11163 and converged=True; an all-NaN
    series or a single value returned the start as the fit."""
    with pytest.raises(ValueError, match=match):
        dlm.fit(dlm.LocalLevel(1.0, 1.0), y, method=method)


def test_dynaris_estimation_page_runs_with_pt(nile):
    """dynaris' documented parameter-estimation page (docs/user-guide/estimation.rst at
    quant-sci/dynaris b707616), ``jnp`` replaced by ``pt``."""
    from pymc_dlm.estimation import (acf, inverse_softplus, ljung_box, softplus,
                                     standardized_residuals)

    y = nile

    def model_fn(params):
        return dlm.LocalLevel(sigma_level=pt.exp(params[0]), sigma_obs=pt.exp(params[1]))

    result = fit_mle(model_fn, y, init_params=pt.zeros(2))
    assert f"{result.log_likelihood:.2f}" == "-633.46"
    fitted_model = result.model
    initial_model = dlm.LocalLevel(10.0, 10.0)
    result = fit_em(y, initial_model, max_iter=100)
    assert isinstance(result.converged, bool) and result.n_iter <= 100
    assert result.model is not None
    sigma_sq = softplus(inverse_softplus(2.0))
    assert sigma_sq == pytest.approx(2.0)
    filter_result = dlm.kalman_filter(fitted_model, y)
    resid = standardized_residuals(filter_result, fitted_model)
    autocorr = acf(resid, max_lag=20)
    lb = ljung_box(resid, max_lag=10)
    assert autocorr.shape == (21,)
    assert f"Ljung-Box p-value: {lb.p_value:.4f}" == f"Ljung-Box p-value: {lb.table.p_value.iloc[-1]:.4f}"


def test_a_first_compile_says_so_once(nile, monkeypatch, caplog):
    from pymc_dlm.estimation import mle

    dlm.fit("level", nile)
    assert mle.kernels_cached()  # the fit above left the kernels in numba's on-disk cache
    monkeypatch.setattr(mle, "kernels_cached", lambda: False)
    monkeypatch.setattr(mle, "_ANNOUNCED", [])
    with caplog.at_level("WARNING", logger="pymc_dlm"):
        mle.announce_first_compile()
        mle.announce_first_compile()
    assert [r.getMessage()[:45] for r in caplog.records] == [
        "pymc_dlm: compiling the Kalman filter kernels"]
    # a compile that runs past the notice time says so; a quick one says nothing
    import time

    caplog.clear()
    with caplog.at_level("WARNING", logger="pymc_dlm"):
        with mle.compile_notice(after=0.01):
            time.sleep(0.3)
        with mle.compile_notice(after=5.0):
            pass
    assert [r.getMessage()[:60] for r in caplog.records] == [
        "pymc_dlm: compiling the likelihood and gradient of a new mod"]


def test_kernels_cached_looks_where_numba_cache_dir_puts_the_cache(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR set numba keeps its index files there, not in __pycache__ (the
    notice said "compiling" in every process then).  Reference: numba's own locator for the
    kernel functions (UserProvidedCacheLocator.from_function)."""
    from numba.core import config as numba_config
    from numba.core.caching import UserProvidedCacheLocator

    from pymc_dlm.estimation import mle
    from pymc_dlm.fused import native
    from pymc_dlm.numeric import adjoint, kernels

    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path))
    assert not mle.kernels_cached()
    for func, prefix in ((native._c_grad, "native._c_grad-"),
                         (adjoint._backward_loop.py_func, "adjoint._backward_loop-"),
                         (kernels.update.py_func, "kernels.")):
        where = UserProvidedCacheLocator.from_function(func, func.__code__.co_filename)
        path = Path(where.get_cache_path())
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{prefix}1.py312.nbi").touch()
    assert mle.kernels_cached()


def test_concentrated_scale_nile_agrees_with_full_mle_and_the_stepwise_procedure(nile):
    """Harvey (1989, section 3.4): the concentrated and the full likelihood have the same
    maximum; the KALMAN procedure's -2Lc at that point is the same log-likelihood
    (log L = -(-2Lc + n* (1 + log 2 pi)) / 2 - log(2 pi) / 2 with y_1's diffuse term)."""
    import math

    full = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile)
    conc = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile, concentrate_scale=True)
    assert conc.converged and conc.param_names[-1] == "log scale"
    assert conc.log_likelihood == pytest.approx(full.log_likelihood, abs=1e-6)
    est = conc.estimates
    np.testing.assert_allclose([est["scale"], est["sigma2.level"] * est["scale"]],
                               full.estimates[["sigma2.obs", "sigma2.level"]], rtol=1e-5)
    # the scale's standard error is the full fit's of sigma2.obs (same information)
    assert conc.estimates_bse["scale"] == pytest.approx(full.estimates_bse["sigma2.obs"], rel=1e-3)
    y, q = nile.to_numpy(), est["sigma2.level"]
    start = dlm.kalman(dlm.KalmanState(b=y[0], covb=1.0), t=1.0, q=q).state
    state = dlm.kalman_sequence(start, y[1:], z=1.0, r=1.0, t=1.0, q=q).state
    ll = -(dlm.concentrated_neg2_loglik(state) + state.n * (1 + math.log(2 * math.pi))) / 2
    assert ll - math.log(2 * math.pi) / 2 == pytest.approx(conc.log_likelihood, abs=1e-6)
    assert state.sigma2_hat == pytest.approx(est["scale"], rel=1e-10)


def test_concentrated_scale_trend_seasonal_formula():
    from test_mle_robust import reference

    y, _, _ = reference("trend_seasonal")
    full = dlm.fit("trend + seasonal(12)", y)
    conc = dlm.fit("trend + seasonal(12)", y, concentrate_scale=True)
    assert full.converged and conc.converged
    assert conc.log_likelihood == pytest.approx(full.log_likelihood, abs=1e-6)
    ratio = (conc.estimates.drop("scale") * conc.estimates["scale"]) / full.estimates
    np.testing.assert_allclose(ratio[full.estimates > 1e-6], 1.0, rtol=1e-3)


def test_a_function_caught_in_the_trap_does_not_say_converged(nile):
    """Without 'log sigma2.*' names there are no restarts, but the stop near zero (-648.27)
    is not called converged."""
    res = fit_mle(lambda p: dlm.LocalLevel(pt.exp(p[0]), pt.exp(p[1])), nile,
                  [np.log(38.0), np.log(0.01)])
    assert res.log_likelihood < -640 and not res.converged
    named = fit_mle(lambda p: dlm.LocalLevel(pt.exp(0.5 * p[0]), pt.exp(0.5 * p[1])), nile,
                    [2 * np.log(38.0), 2 * np.log(0.01)],
                    param_names=["log sigma2.level", "log sigma2.obs"])
    assert named.converged and named.log_likelihood == pytest.approx(-633.4646, abs=1e-4)


def test_kfas_convention_nile_equals_r_arima(nile):
    """R ``arima(Nile, c(0, 1, 1))``: log-likelihood -632.54563 at its maximum (KFAS's
    convention: the diffuse observation's 0.5 log 2 pi dropped); the maximiser is the same."""
    res = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile, convention="kfas")
    assert res.converged and res.n_diffuse_obs == 1 and res.convention == "kfas"
    assert res.log_likelihood == pytest.approx(-632.54563, abs=1e-5)
    assert res.aic == pytest.approx(-2 * res.log_likelihood + 2 * 3, rel=1e-14)
    np.testing.assert_allclose(res.estimates, [15099.0, 1469.1], rtol=1e-3)
    assert "convention kfas   diffuse observation elements 1" in res.summary()
    conc = dlm.fit("level", nile, convention="kfas", concentrate_scale=True)
    assert conc.log_likelihood == pytest.approx(-632.54563, abs=1e-5)


def test_burn_in_mle_reaches_kim_and_nelson():
    """Kim and Nelson (1999, section 3.4): the TVP regression of M1 growth, log-likelihood
    -97.092423 over t = 11..106 at their estimates, beta_0 ~ N(0, 50 I) one step before the
    first observation (P1 = 50 I + Q).  Data: tests/reference/kim_nelson_tvp.csv."""
    import pandas as pd
    from pathlib import Path

    df = pd.read_csv(Path(__file__).parents[1] / "reference" / "kim_nelson_tvp.csv", comment="#")
    y = df["m1"].to_numpy()
    X = np.column_stack([np.ones(len(y)), df["dint"], df["inf"], df["surpl"], df["m1lag"]])
    sd = np.array([0.371245817, 0.111236539, 0.017119149, 0.272032325, 0.037753247, 0.022415721])

    def model_fn(p):
        Q = pt.diag(pt.exp(p[1:]))
        return dlm.StateSpaceModel(Z=X[:, None, :], T=np.eye(5), Q=Q,
                                   H=pt.exp(p[0]).reshape((1, 1)),
                                   P1=50.0 * np.eye(5) + Q, diffuse=[False] * 5)

    names = ["log sigma2.obs"] + [f"log sigma2.beta{i}" for i in range(5)]
    res = fit_mle(model_fn, y, np.log(1.5 * sd**2), param_names=names, burn=10)
    assert res.converged and res.nobs == 96 and res.burn == 10
    assert res.log_likelihood >= -97.092423 - 1e-6
    assert res.log_likelihood == pytest.approx(-97.092423, abs=1e-3)
    assert res.log_likelihood == pytest.approx(dlm.loglike(res.model, y, burn=10), rel=1e-10)
    np.testing.assert_allclose(np.sqrt(res.estimates.to_numpy()), sd, rtol=0.05, atol=1e-3)


def test_kfas_convention_uk_drivers_local_level_equals_commandeur_koopman():
    """Commandeur and Koopman (2007, section 2.2): the local level on log UK drivers KSI,
    maximum log-likelihood / n = 0.6451960 (KFAS's convention), sigma2_eps = 0.00222157,
    sigma2_xi = 0.011866."""
    y = np.log(dlm.datasets.load_uk_drivers()["drivers_ksi"])
    res = dlm.fit(dlm.LocalLevel(1.0, 1e-3), y, convention="kfas")
    assert res.converged
    assert res.log_likelihood / len(y) == pytest.approx(0.6451960, abs=5e-8)
    np.testing.assert_allclose(res.estimates[["sigma2.obs", "sigma2.level"]],
                               [0.00222157, 0.011866], rtol=1e-3)


def test_fixed_passes_through_dlm_fit_to_em(nile):
    em = dlm.fit("level", nile, method="em", fixed={"sigma2.obs": 15099.0}, max_iter=3)
    assert em.model.H[0, 0] == 15099.0 and set(em.params) == {"sigma2.level", "sigma2.obs"}
    with pytest.raises(ValueError, match="optimizer is for method='mle'"):
        dlm.fit("level", nile, method="em", optimizer="BFGS")
