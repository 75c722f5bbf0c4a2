"""The DLM distribution inside pm.Model: log-likelihood equal to the NumPy engine and to
statsmodels, find_MAP at the MLE, NUTS recovering simulated parameters, predictive sampling,
sample_states / sample_forecast, pointwise log-likelihood, and bad input."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr

import pymc_dlm as dlm
from reference_models import NILE_H, NILE_Q, bivariate


@pytest.fixture(scope="module")
def nile_model():
    """Nile local level with flat priors on the log-variances (so the MAP is the MLE)."""
    y = dlm.datasets.load_nile()
    with pm.Model(coords={"year": y.index}) as m:
        log_q = pm.Flat("log_s2_level")
        log_h = pm.Flat("log_s2_obs")
        dlm.DLM("flow", dlm.LocalLevel(pt.exp(0.5 * log_q), pt.exp(0.5 * log_h)), observed=y,
                dims="year")
    return m, y


def fold(llf_t, nd, y):
    """The DLM's pointwise log-likelihood: the nd diffuse steps' terms added to the first
    later step with an observed value (step nd + 1 unless it is wholly missing)."""
    out = np.array(llf_t[nd:])
    seen = ~np.isnan(np.reshape(y, (len(y), -1))[nd:]).all(axis=1)
    out[np.flatnonzero(seen)[0]] += llf_t[:nd].sum()
    return out


def one_draw(**values):
    return xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in values.items()})


def test_logp_is_the_kalman_loglike(nile_model):
    m, y = nile_model
    logp = m.compile_logp(vars=m.observed_RVs, sum=False)
    point = {"log_s2_level": np.log(NILE_Q), "log_s2_obs": np.log(NILE_H)}
    (per_t,) = logp(point)
    ref = dlm.kalman_filter(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)
    assert per_t.shape == (99,)  # the diffuse first step is folded into the second
    np.testing.assert_allclose(per_t, fold(ref.llf_t, 1, y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(per_t.sum(), -633.4646, atol=5e-5)


def test_find_map_reaches_the_mle(nile_model):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    m, y = nile_model
    with m:
        res = pm.find_MAP(initvals={"log_s2_level": 7.0, "log_s2_obs": 9.0}, progressbar=False,
                          return_inferencedata=True, jitter=False)
    mle = {k: float(res.posterior[k].values.squeeze()) for k in ("log_s2_level", "log_s2_obs")}
    q, h = np.exp(mle["log_s2_level"]), np.exp(mle["log_s2_obs"])
    # Durbin and Koopman (2012), section 2.10.3: 15099 and 1469.1
    assert h == pytest.approx(15099, rel=1e-3)
    assert q == pytest.approx(1469.1, rel=1e-3)
    sm = UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True).fit(disp=False)
    llf = m.compile_logp(vars=m.observed_RVs)(mle)
    assert llf == pytest.approx(sm.llf, abs=1e-4)


def test_multivariate_missing_logp_matches_numpy_engine():
    mod_num, y = bivariate()
    with pm.Model() as m:
        h11 = pm.HalfNormal("h11", 1.0)
        q2 = pm.HalfNormal("q2", 1.0)
        h12 = pm.Uniform("h12", -0.5, 0.5)
        mod_sym, _ = bivariate(lambda name, v: {"h11": h11, "q2": q2, "h12": h12}.get(name, v))
        dlm.DLM("y", mod_sym, observed=y)
    point = m.initial_point()
    vals = {"h11": 1.0, "q2": 0.5, "h12": 0.3}
    point.update({"h11_log__": np.log(1.0), "q2_log__": np.log(0.5),
                  "h12_interval__": np.log((0.3 + 0.5) / (0.5 - 0.3))})
    (per_t,) = m.compile_logp(vars=m.observed_RVs, sum=False)(point)
    ref = dlm.kalman_filter(mod_num, y)
    nd = ref.n_diffuse
    np.testing.assert_allclose(per_t, fold(ref.llf_t, nd, y), rtol=1e-9, atol=1e-12)
    assert vals  # the values above are those of the numeric reference model
    with m:
        pp = pm.sample_posterior_predictive(one_draw(**vals), random_seed=1, progressbar=False)
    rep = pp.posterior_predictive["y"].values[0, 0]
    assert rep.shape == y.shape
    # one-step draws for every row after the diffuse period (missing ones too); the
    # diffuse steps replicate the data (NaN where it is missing)
    assert np.isfinite(rep[nd:]).all()
    np.testing.assert_array_equal(rep[:nd], y[:nd])


def test_non_pd_point_gets_minus_inf():
    y = np.array([[1.0, 2.0], [0.5, 0.1], [0.2, 0.3]])
    with pm.Model() as m:
        r = pm.Uniform("r", -3.0, 3.0)
        dlm.DLM("y", dlm.StateSpaceModel(Z=np.eye(2), T=np.eye(2), Q=np.eye(2),
                                         H=[[1.0, r], [r, 1.0]], P1=np.eye(2)), observed=y)
    logp = m.compile_logp()
    assert np.isfinite(logp({"r_interval__": 0.0}))
    assert logp({"r_interval__": np.log(5.0 / 1.0)}) == -np.inf  # r = 2: H indefinite


def test_states_forecast_and_pointwise_loglik(nile_model):
    import arviz as az

    m, y = nile_model
    draw = one_draw(log_s2_level=np.log(NILE_Q), log_s2_obs=np.log(NILE_H))
    ref = dlm.kalman_smoother(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)
    st = dlm.sample_states(m, draw)
    assert m.named_vars_to_dims["flow"] == ("year",)
    assert st.state_mean.dims == ("chain", "draw", "year", "state")
    assert list(st.state.values) == ["level"] and st.year.values[0] == 1871
    np.testing.assert_allclose(st.state_mean.values[0, 0], ref.a_smooth, rtol=1e-12)
    np.testing.assert_allclose(st.state_cov.values[0, 0], ref.V, rtol=1e-12)
    diag = dlm.sample_states(m, draw, covariance="diagonal")
    np.testing.assert_allclose(diag.state_var.values[0, 0], ref.V[:, :, 0], rtol=1e-12)
    assert list(dlm.sample_states(m, draw, covariance="none").data_vars) == ["state_mean"]
    filt = dlm.sample_states(m, draw, kind="filtered")
    np.testing.assert_allclose(filt.state_mean.values[0, 0], ref.filter.a_filt, rtol=1e-12)
    # the simulation smoother: many draws at one parameter value have the smoothed moments
    many = xr.Dataset({k: (("chain", "draw"), np.full((1, 400), v)) for k, v in
                       {"log_s2_level": np.log(NILE_Q), "log_s2_obs": np.log(NILE_H)}.items()})
    sim = dlm.sample_states(m, many, kind="simulated", random_seed=3).states.values[0, :, :, 0]
    se = np.sqrt(ref.V[:, 0, 0] / 400)
    assert np.abs(sim.mean(axis=0) - ref.a_smooth[:, 0]).max() < 4.5 * se.max()
    np.testing.assert_allclose(sim.var(axis=0), ref.V[:, 0, 0], rtol=0.25)
    fc = dlm.sample_forecast(m, draw, 3, random_seed=1)
    assert list(fc.year.values) == [1971, 1972, 1973]
    np.testing.assert_allclose(fc.forecast_mean.values[0, 0], ref.a_smooth[-1, 0], rtol=1e-10)
    # pointwise log-likelihood for LOO
    idata = az.from_dict({"posterior": {k: draw[k].values for k in draw}})
    ll = pm.compute_log_likelihood(idata, model=m, progressbar=False)
    assert ll.log_likelihood["flow"].shape == (1, 1, 99)


def test_nuts_recovers_simulated_local_linear_trend():
    import arviz as az

    truth = {"sigma_level": 0.5, "sigma_slope": 0.1, "sigma_obs": 1.0}
    gen = dlm.LocalLinearTrend(**truth).replace(a1=[10.0, 0.2], P1=np.zeros((2, 2)),
                                                diffuse=[False, False])
    y, _ = dlm.simulate(gen, 150, rng=42)
    with pm.Model() as m:
        s = {k: pm.HalfNormal(k, 2.0) for k in truth}
        dlm.DLM("y", dlm.LocalLinearTrend(**s), observed=y[:, 0])
        idata = pm.sample(300, tune=300, chains=2, cores=1, random_seed=7, progressbar=False,
                          compute_convergence_checks=False, nuts_sampler="pymc")
    for k, v in truth.items():
        lo, hi = np.asarray(az.hdi(idata.posterior[k].values.reshape(-1), prob=0.94)).ravel()
        assert lo < v < hi, f"{k}: {v} outside the 94% HDI ({lo:.3f}, {hi:.3f})"


def test_scan_engine_gives_the_same_logp(nile_model):
    _, y = nile_model
    point = {"log_s2_level": np.log(NILE_Q), "log_s2_obs": np.log(NILE_H)}
    per_t = {}
    for engine in ("fused", "scan"):
        with pm.Model() as m:
            log_q = pm.Flat("log_s2_level")
            log_h = pm.Flat("log_s2_obs")
            dlm.DLM("flow", dlm.LocalLevel(pt.exp(0.5 * log_q), pt.exp(0.5 * log_h)),
                    observed=y, engine=engine)
        (per_t[engine],) = m.compile_logp(vars=m.observed_RVs, sum=False)(point)
    np.testing.assert_allclose(per_t["scan"], per_t["fused"], rtol=1e-10, atol=1e-12)


def test_nutpie_samples_the_nile_model():
    import arviz as az

    import nutpie  # noqa: F401 - an optional extra of users, a test dependency here
    y = dlm.datasets.load_nile()
    with pm.Model():
        s_level = pm.HalfNormal("sigma_level", 100.0)
        s_obs = pm.HalfNormal("sigma_obs", 200.0)
        dlm.DLM("flow", dlm.LocalLevel(s_level, s_obs), observed=y)
        idata = pm.sample(400, tune=400, chains=2, nuts_sampler="nutpie", random_seed=3,
                          progressbar=False)
    post = idata.posterior
    assert post["sigma_obs"].shape == (2, 400)
    assert float(az.rhat(post)["sigma_obs"].max()) < 1.05
    # the posterior concentrates around the MLE (sqrt 15099 = 122.9, sqrt 1469.1 = 38.3)
    assert 100 < float(post["sigma_obs"].median()) < 140
    assert 20 < float(post["sigma_level"].median()) < 60


class TestBadInput:
    def test_dims_must_match(self):
        with pm.Model(coords={"a": range(5), "b": [0]}), pytest.raises(ValueError, match="dims"):
            dlm.DLM("y", dlm.LocalLevel(1.0, 1.0), observed=np.ones(5), dims=("a", "b"))

    def test_unknown_engine(self):
        with pm.Model(), pytest.raises(ValueError, match="engine must be one of"):
            dlm.DLM("y", dlm.LocalLevel(1.0, 1.0), observed=np.ones(5), engine="jax")

    def test_observed_shape_must_match_the_model(self):
        with pm.Model(), pytest.raises(ValueError, match=r"observed must have shape \(n, 2\)"):
            dlm.DLM("y", bivariate()[0], observed=np.zeros(10))

    def test_time_varying_length_must_match(self):
        with pm.Model(), pytest.raises(ValueError, match="time-varying over n = 80"):
            dlm.DLM("y", dlm.Regression(np.ones((80, 1))) + dlm.Irregular(1.0),
                    observed=np.zeros(50))

    def test_model_type_and_observed(self):
        with pm.Model():
            with pytest.raises(TypeError, match="model must be a StateSpaceModel"):
                dlm.DLM("y", "level", observed=np.zeros(5))
            with pytest.raises(ValueError, match="DLM needs observed"):
                dlm.DLM("y", dlm.LocalLevel(1.0, 1.0))
            with pytest.raises(ValueError, match="must not contain inf"):
                dlm.DLM("y", dlm.LocalLevel(1.0, 1.0), observed=np.array([1.0, np.inf]))

    def test_sample_states_options(self, nile_model):
        m, _ = nile_model
        draw = one_draw(log_s2_level=7.0, log_s2_obs=9.0)
        with pytest.raises(ValueError, match="kind must be one of"):
            dlm.sample_states(m, draw, kind="smooth")
        with pytest.raises(ValueError, match="covariance must be one of"):
            dlm.sample_states(m, draw, covariance="diag")
        with pytest.raises(ValueError, match="lacks the free variables"):
            dlm.sample_states(m, one_draw(log_s2_level=7.0))
        with pytest.raises(ValueError, match="steps must be"):
            dlm.sample_forecast(m, draw, 0)
