"""The one-call workflow: dlm.fit, formulas, forecasts, components, simulation, dlm.bayesian."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import statsmodels.api as sm

import pymc_dlm as dlm
from pymc_dlm.workflow import parse_formula


@pytest.fixture(scope="module")
def nile():
    return dlm.datasets.load_nile()


@pytest.fixture(scope="module")
def nile_fit(nile):
    return dlm.fit("level", nile)


def test_formula_fit_is_the_nile_mle(nile_fit):
    # Durbin and Koopman (2012), section 2.10.3: 15099 and 1469.1
    s2_level, s2_obs = np.exp(nile_fit.params)
    assert abs(s2_obs / 15099 - 1) < 1e-3 and abs(s2_level / 1469.1 - 1) < 1e-3
    assert nile_fit.param_names == ("log sigma2.level", "log sigma2.obs")
    np.testing.assert_allclose(nile_fit.estimates[["sigma2.level", "sigma2.obs"]],
                               [s2_level, s2_obs], rtol=1e-14)


def test_model_and_em_fits_reach_the_same_optimum(nile, nile_fit):
    mle = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile)
    em = dlm.fit(dlm.LocalLevel(30.0, 100.0), nile, method="em", max_iter=2000, tol=1e-10)
    assert mle.log_likelihood == pytest.approx(nile_fit.log_likelihood, abs=1e-7)
    assert em.log_likelihood == pytest.approx(nile_fit.log_likelihood, abs=1e-6)
    assert mle.param_names == ("log sigma2.obs", "log sigma2.level")


def test_forecast_frame_matches_statsmodels_get_forecast(nile, nile_fit):
    s2_level, s2_obs = nile_fit.estimates[["sigma2.level", "sigma2.obs"]]
    mod = sm.tsa.UnobservedComponents(nile.to_numpy(), "llevel")
    ref = mod.filter([s2_obs, s2_level]).get_forecast(8).summary_frame(alpha=0.1)
    ours = nile_fit.forecast(8, alpha=0.1)
    assert ours.index.tolist() == list(range(1971, 1979)) and ours.index.name == "year"
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-9)


def test_forecast_continues_a_monthly_date_index_and_multivariate_columns():
    y = np.log(dlm.datasets.load_airline_passengers())
    res = dlm.fit(dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01), y,
                  method="em", max_iter=3)
    fc = res.forecast(3)
    assert list(fc.index) == list(pd.date_range("1961-01-01", periods=3, freq="MS"))
    uk = np.log(dlm.datasets.load_uk_drivers()[["drivers_ksi"]]).assign(half=lambda d: d / 2)
    two = dlm.StateSpaceModel(Z=[[1.0], [0.5]], H=np.diag([0.01, 0.02]), T=[[1.0]], R=[[1.0]],
                              Q=[[0.001]])
    fc = dlm.fit(two, uk, method="em", max_iter=2).forecast(2)
    assert fc.columns.names == ["series", "statistic"]
    assert fc["half"]["mean"].to_numpy() == pytest.approx(fc["drivers_ksi"]["mean"].to_numpy() / 2)
    assert fc.index[0] == pd.Timestamp("1985-01-01")


def test_components_add_up_to_the_smoothed_signal():
    y = np.log(dlm.datasets.load_airline_passengers())
    model = dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)
    res = dlm.fit(model, y, method="em", max_iter=5)
    comps = res.components()
    assert list(comps.columns) == ["trend", "seasonal"] and comps.index.equals(y.index)
    sm_ = res.smooth()
    signal = sm_.a_smooth @ np.asarray(res.model.Z)[0]
    np.testing.assert_allclose(comps.sum(axis=1).to_numpy(), signal, rtol=1e-12)


def test_simulate_from_the_end_has_the_forecast_spread(nile_fit):
    paths = nile_fit.simulate(3, repetitions=4000, anchor="end", rng=2)
    fc = nile_fit.forecast(3)
    assert paths.shape == (4000, 3, 1)
    se = fc["mean_se"].to_numpy()
    # sample mean within 4 standard errors, sample sd within 5%
    assert np.all(np.abs(paths[:, :, 0].mean(0) - fc["mean"].to_numpy()) < 4 * se / np.sqrt(4000))
    np.testing.assert_allclose(paths[:, :, 0].std(0), se, rtol=0.05)
    start = nile_fit.simulate(repetitions=2, rng=1)
    assert start.shape == (2, 100, 1)
    with pytest.raises(ValueError, match="anchor"):
        nile_fit.simulate(3, anchor="middle")


@pytest.mark.parametrize("text, names", [
    ("level", ("sigma.level", "sigma.obs")),
    ("trend + seasonal(12)", ("sigma.level", "sigma.slope", "sigma.seasonal", "sigma.obs")),
    ("level + seasonal(4, trig) + cycle(20, 0.8) + ar(1)",
     ("sigma.level", "sigma.seasonal", "sigma.cycle", "phi.ar", "sigma.ar", "sigma.obs")),
])
def test_formula_parameters_and_model(text, names):
    f = parse_formula(text)
    assert f.param_names == names
    model = f.build(np.arange(1, len(names) + 1) / 10.0)
    assert float(np.asarray(model.H)[0, 0]) == pytest.approx((len(names) / 10.0) ** 2)


def test_formula_model_equals_hand_built():
    f = parse_formula("trend + seasonal(4)")
    a = f.build([1.0, 0.1, 0.5, 2.0])
    b = dlm.LocalLinearTrend(1.0, 0.1) + dlm.Seasonal(4, 0.5) + dlm.Irregular(2.0)
    for k in ("Z", "H", "T", "R", "Q"):
        np.testing.assert_array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))


@pytest.mark.parametrize("text, match", [
    ("level + season(12)", "unknown term 'season\\(12\\)'"),
    ("level + trend", "already has a level"),
    ("seasonal(x)", "expected an integer"),
    ("seasonal(1)", "period >= 2"),
    ("cycle(20, 1.5)", "damping in"),
    ("level + level", "appears 2 times"),
    ("", "expected a model formula"),
])
def test_bad_formulas(text, match):
    with pytest.raises(ValueError, match=match):
        parse_formula(text)


def test_fit_rejects_bad_combinations(nile):
    with pytest.raises(ValueError, match="method must be one of"):
        dlm.fit("level", nile, method="nuts")
    with pytest.raises(ValueError, match="EM estimates variances only"):
        dlm.fit("level + ar(1)", nile, method="em")
    with pytest.raises(TypeError, match="needs a numeric StateSpaceModel"):
        dlm.fit(lambda p: dlm.LocalLevel(p[0], p[1]), nile, method="em")
    with pytest.raises(ValueError, match="init_params is required"):
        dlm.fit(lambda p: dlm.LocalLevel(p[0], p[1]), nile)


def test_ar_formula_fit_matches_statsmodels_unobserved_components():
    rng = np.random.default_rng(3)
    y, _ = dlm.simulate(dlm.LocalLevel(0.5) + dlm.Autoregressive([0.6], 1.0) + dlm.Irregular(0.7),
                        300, rng=rng)
    res = dlm.fit("level + ar(1)", y[:, 0])
    ref = sm.tsa.UnobservedComponents(y[:, 0], "llevel", autoregressive=1).fit(disp=0, maxiter=500)
    # statsmodels: sigma2.irregular, sigma2.level, sigma2.ar, ar.L1; its llf drops the diffuse
    # part's constant, so compare our llf with its loglike at our parameters
    est = res.estimates
    ours = est[["sigma2.obs", "sigma2.level", "sigma2.ar", "phi.ar"]].to_numpy()
    assert ref.llf <= ref.model.loglike(ours) + 1e-6
    np.testing.assert_allclose(ours, ref.params, rtol=2e-3)


def test_bayesian_log_density_is_prior_plus_kalman_likelihood(nile):
    import pymc as pm

    m = dlm.bayesian(dlm.LocalLevel, nile, priors={"sigma_level": pm.HalfNormal.dist(50.0)})
    point = {"sigma_level_log__": 3.6, "sigma_obs_log__": 4.8}
    s_level, s_obs = np.exp(3.6), np.exp(4.8)
    expected = (dlm.loglike(dlm.LocalLevel(s_level, s_obs), nile)
                + st.halfnorm.logpdf(s_level, scale=50.0) + 3.6
                + st.halfnorm.logpdf(s_obs, scale=float(np.nanstd(nile))) + 4.8)
    assert float(m.compile_logp()(point)) == pytest.approx(expected, rel=1e-10)


def test_bayesian_priors_fixed_values_and_errors(nile):
    import pymc as pm

    m = dlm.bayesian(dlm.LocalLevel, nile, sigma_obs=120.0,
                     priors={"sigma_level": lambda name: pm.Exponential(name, 0.05)})
    assert [v.name for v in m.free_RVs] == ["sigma_level"]
    assert list(m.coords["time"]) == list(nile.index)
    with pytest.raises(ValueError, match="not arguments of LocalLevel"):
        dlm.bayesian(dlm.LocalLevel, nile, priors={"sigma_trend": pm.HalfNormal.dist(1.0)})
    with pytest.raises(ValueError, match="both as priors and as fixed"):
        dlm.bayesian(dlm.LocalLevel, nile, sigma_obs=1.0, priors={"sigma_obs": 2.0})


def test_bayesian_accepts_a_formula_with_the_names_of_the_estimators(nile):
    import pymc as pm

    m = dlm.bayesian("level", nile, priors={"sigma.level": pm.HalfNormal.dist(50.0)})
    assert sorted(v.name for v in m.free_RVs) == ["sigma.level", "sigma.obs"]
    point = {"sigma.level_log__": 3.6, "sigma.obs_log__": 4.8}
    s_level, s_obs = np.exp(3.6), np.exp(4.8)
    expected = (dlm.loglike(dlm.LocalLevel(s_level, s_obs), nile)
                + st.halfnorm.logpdf(s_level, scale=50.0) + 3.6
                + st.halfnorm.logpdf(s_obs, scale=float(np.nanstd(nile))) + 4.8)
    assert float(m.compile_logp()(point)) == pytest.approx(expected, rel=1e-10)
    ar = dlm.bayesian("level + ar(1)", nile)
    assert sorted(v.name for v in ar.free_RVs) == ["phi.ar", "sigma.ar", "sigma.level", "sigma.obs"]
