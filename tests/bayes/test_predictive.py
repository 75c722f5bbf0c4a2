"""The Bayesian check loop: one-step-ahead posterior predictive, residuals per draw, LOO.

References: the NumPy engine's filter (Z a_t + d and F_t at the same parameters; rtol 1e-10,
the two engines' agreement); the probability integral transform of a correct one-step
predictive is uniform (Dawid 1984), tested with Kolmogorov-Smirnov at alpha = 0.01 on data
simulated from a known local level; PSIS-LOO of the folded pointwise log-likelihood equals
PSIS-LOO of the NumPy filter's terms with the diffuse steps sliced off plus their constant
(the importance ratios are unchanged by a constant); the residual statistics equal
:mod:`pymc_dlm.diagnostics` at each draw.  Sampling is tiny and shared per module.
"""

from __future__ import annotations

import functools
import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from arviz_base import from_dict
from scipy import stats

import pymc_dlm as dlm
from pymc_dlm.bayes.residuals import one_step_draws
from pymc_dlm.diagnostics import heteroskedasticity, jarque_bera, ljung_box, standardized_residuals
from reference_models import NILE_H, NILE_Q, bivariate


def posterior(**draws):
    return from_dict({"posterior": {k: np.asarray(v, float) for k, v in draws.items()}})


@functools.cache
def nile_fit():
    """Nile local level, HalfNormal priors, a small NUTS run, its one-step PPC and residuals."""
    y = dlm.datasets.load_nile()
    with pm.Model(coords={"year": y.index}) as m:
        s_level = pm.HalfNormal("sigma_level", 100.0)
        s_obs = pm.HalfNormal("sigma_obs", 200.0)
        dlm.DLM("flow", dlm.LocalLevel(s_level, s_obs), observed=y, dims="year")
        idata = pm.sample(150, tune=150, chains=2, cores=1, random_seed=11, progressbar=False,
                          compute_convergence_checks=False, nuts_sampler="pymc")
        pm.compute_log_likelihood(idata, progressbar=False)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=2,
                                       progressbar=False)
    dlm.add_residuals(idata, m)
    return m, y.to_numpy(), idata


@functools.cache
def bivariate_model():
    mod_num, y = bivariate()
    with pm.Model() as m:
        h11 = pm.HalfNormal("h11", 1.0)
        q2 = pm.HalfNormal("q2", 1.0)
        mod_sym, _ = bivariate(lambda name, v: {"h11": h11, "q2": q2}.get(name, v))
        dlm.DLM("y", mod_sym, observed=y)
    return m, mod_num, y


class TestOneStepPredictive:
    def test_moments_equal_the_numpy_filter(self):
        m, y, _ = nile_fit()
        _, yhat, F, nd = one_step_draws(m, posterior(sigma_level=[[NILE_Q**0.5]],
                                                     sigma_obs=[[NILE_H**0.5]]))
        ref = dlm.kalman_filter(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)
        assert nd == ref.n_diffuse == 1
        np.testing.assert_allclose(yhat[0, 0, 1:, 0], ref.a_pred[1:-1, 0], rtol=1e-10)
        np.testing.assert_allclose(F[0, 0, 1:], ref.F[1:], rtol=1e-10)
        assert np.isnan(yhat[0, 0, 0]).all()

    def test_multivariate_moments_with_missing_rows(self):
        m, mod_num, y = bivariate_model()
        _, yhat, F, nd = one_step_draws(m, posterior(h11=[[1.0]], q2=[[0.5]]))
        ref = dlm.kalman_filter(mod_num, y)
        Z, d, H = (np.asarray(getattr(mod_num, k), float) for k in ("Z", "d", "H"))
        want = ref.a_pred[:-1] @ Z.T + d  # all rows, the missing ones too
        want_F = Z @ ref.P_pred[:-1] @ Z.T + H
        assert nd == ref.n_diffuse and np.isnan(y[nd:]).any()
        np.testing.assert_allclose(yhat[0, 0, nd:], want[nd:], rtol=1e-10)
        np.testing.assert_allclose(F[0, 0, nd:], want_F[nd:], rtol=1e-10, atol=1e-12)
        both = np.isfinite(y).all(axis=1)
        both[:nd] = False
        np.testing.assert_allclose(F[0, 0, both], ref.F[both], rtol=1e-10)

    def test_draws_have_the_predictive_moments(self):
        """400 replicates at one parameter value: mean and variance of N(Z a_t + d, F_t)
        within 6 Monte Carlo standard errors (multivariate, missing rows included)."""
        m, mod_num, y = bivariate_model()
        k = 400
        with m:
            pp = pm.sample_posterior_predictive(
                posterior(h11=np.ones((1, k)), q2=np.full((1, k), 0.5)), random_seed=5,
                progressbar=False)
        rep = pp.posterior_predictive["y"].values[0]
        ref = dlm.kalman_filter(mod_num, y)
        nd = ref.n_diffuse
        Z, d, H = (np.asarray(getattr(mod_num, k_), float) for k_ in ("Z", "d", "H"))
        mean = (ref.a_pred[:-1] @ Z.T + d)[nd:]
        var = np.diagonal(Z @ ref.P_pred[:-1] @ Z.T + H, axis1=1, axis2=2)[nd:]
        z = (rep[:, nd:].mean(axis=0) - mean) / np.sqrt(var / k)
        assert np.abs(z).max() < 6
        np.testing.assert_allclose(rep[:, nd:].var(axis=0), var, rtol=0.5)
        np.testing.assert_array_equal(rep[:, :nd], np.broadcast_to(y[:nd], (k, nd, 2)))

    def test_pit_is_uniform_on_a_simulated_local_level(self):
        gen = dlm.LocalLevel(0.5, 1.0).replace(a1=[10.0], P1=[[0.0]], diffuse=[False])
        y, _ = dlm.simulate(gen, 200, rng=4)
        with pm.Model() as m:
            s_level = pm.HalfNormal("sigma_level", 2.0)
            s_obs = pm.HalfNormal("sigma_obs", 2.0)
            dlm.DLM("y", dlm.LocalLevel(s_level, s_obs), observed=y[:, 0])
            idata = pm.sample(100, tune=150, chains=2, cores=1, random_seed=3, progressbar=False,
                              compute_convergence_checks=False, nuts_sampler="pymc")
            pp = pm.sample_posterior_predictive(idata, random_seed=4, progressbar=False)
        rep = pp.posterior_predictive["y"].values.reshape(-1, 200)
        pit = (rep[:, 1:] <= y[1:, 0]).mean(axis=0)
        assert stats.kstest(pit, "uniform").pvalue > 0.01

    def test_nile_94_percent_intervals_cover(self):
        _, y, idata = nile_fit()
        rep = idata.posterior_predictive["flow"].values.reshape(-1, 99)  # steps 2..n
        lo, hi = np.quantile(rep, [0.03, 0.97], axis=0)
        cover = np.mean((lo <= y[1:]) & (y[1:] <= hi))
        assert 0.85 <= cover <= 0.99


class TestOtherKinds:
    def test_simulate_needs_a_proper_start(self):
        y = np.ones(20)
        with pm.Model(), pytest.raises(ValueError, match="proper initial distribution.*level"):
            dlm.DLM("y", dlm.LocalLevel(1.0, 1.0), observed=y, predictive="simulate")
        with pytest.raises(ValueError, match="states \\['level'\\] are diffuse"):
            pm.draw(dlm.DLM.dist(dlm.LocalLevel(1.0, 1.0), 20))
        with pm.Model(), pytest.raises(ValueError, match="predictive must be one of"):
            dlm.DLM("y", dlm.LocalLevel(1.0, 1.0), observed=y, predictive="smoothed")

    def test_simulate_with_a_proper_start(self):
        proper = dlm.LocalLevel(1.0, 0.5).replace(a1=[100.0], P1=[[4.0]], diffuse=[False])
        with pm.Model() as m:
            dlm.DLM("y", proper, observed=np.full(30, 100.0), predictive="simulate")
            pr = pm.sample_prior_predictive(300, random_seed=1)
        sims = pr.prior_predictive["y"].values[0]
        # y_t ~ N(100, 4 + (t - 1) + 0.25): the first and last steps
        assert abs(sims[:, 0].mean() - 100.0) < 6 * np.sqrt(4.25 / 300)
        np.testing.assert_allclose(sims[:, [0, -1]].var(axis=0), [4.25, 33.25], rtol=0.3)
        assert m["y"].owner.op.dlm_info.predictive == "simulate"

    def test_states_replicates_centre_on_the_smoothed_signal(self):
        m, y, _ = nile_fit()
        k = 300
        with pm.Model(coords={"year": np.arange(100)}):
            s_level = pm.HalfNormal("sigma_level", 100.0)
            dlm.DLM("flow", dlm.LocalLevel(s_level, NILE_H**0.5), observed=y, dims="year",
                    predictive="states")
            pp = pm.sample_posterior_predictive(posterior(sigma_level=np.full((1, k), NILE_Q**0.5)),
                                                random_seed=3, progressbar=False)
        rep = pp.posterior_predictive["flow"].values[0]
        sm = dlm.kalman_smoother(dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5), y)
        var = sm.V[:, 0, 0] + NILE_H
        z = (rep.mean(axis=0) - sm.a_smooth[:, 0]) / np.sqrt(var / k)
        assert np.abs(z).max() < 6
        np.testing.assert_allclose(rep.var(axis=0).mean(), var.mean(), rtol=0.2)


    def test_states_replicates_on_a_time_varying_regression(self):
        """Z_t = (1, x_t): local level + static regression.  300 replicates at one parameter
        value: mean Z_t alpha_hat_t (the smoothed signal, the mean of the NumPy simulation
        smoother's draws) within 6 Monte Carlo standard errors, variance Z_t V_t Z_t' + H."""
        rng = np.random.default_rng(8)
        n, k = 60, 300
        X = rng.normal(size=(n, 1))
        gen = (dlm.LocalLevel(0.3, 0.5) + dlm.Regression(X)).replace(
            a1=[5.0, 2.0], P1=np.zeros((2, 2)), diffuse=[False, False])
        y, _ = dlm.simulate(gen, n, rng=9)
        y[[10, 11, 40]] = np.nan
        with pm.Model():
            s_level = pm.HalfNormal("sigma_level", 1.0)
            dlm.DLM("y", dlm.LocalLevel(s_level, 0.5) + dlm.Regression(X), observed=y[:, 0],
                    predictive="states")
            pp = pm.sample_posterior_predictive(posterior(sigma_level=np.full((1, k), 0.3)),
                                                random_seed=3, progressbar=False)
        rep = pp.posterior_predictive["y"].values[0]
        num = dlm.LocalLevel(0.3, 0.5) + dlm.Regression(X)
        sm = dlm.kalman_smoother(num, y)
        Z = np.asarray(num.Z, float)[:, 0, :]  # (n, 2): (1, x_t)
        mean = np.einsum("tj,tj->t", Z, sm.a_smooth)
        var = np.einsum("ti,tij,tj->t", Z, sm.V, Z) + 0.25
        z = (rep.mean(axis=0) - mean) / np.sqrt(var / k)
        assert np.abs(z).max() < 6
        np.testing.assert_allclose(rep.var(axis=0).mean(), var.mean(), rtol=0.2)
        from pymc_dlm.numeric.simulate import simulation_smoother

        draws = np.stack([simulation_smoother(num, y, np.random.default_rng(i))
                          for i in range(200)])
        np.testing.assert_allclose(np.einsum("tj,stj->t", Z, draws) / 200, mean,
                                   atol=6 * np.sqrt(var.max() / 200))


class TestLOO:
    def test_nile_pointwise_terms_sum_to_the_logp_and_loo_runs(self):
        m, y, idata = nile_fit()
        ll = idata.log_likelihood["flow"]
        assert ll.dims == ("chain", "draw", "year") and int(ll.year[0]) == 1872
        post = idata.posterior
        logp = m.compile_logp(vars=m.observed_RVs, jacobian=False)
        for c, d in [(0, 0), (1, 37)]:
            point = {"sigma_level_log__": np.log(float(post.sigma_level[c, d])),
                     "sigma_obs_log__": np.log(float(post.sigma_obs[c, d]))}
            assert float(ll[c, d].sum()) == pytest.approx(float(logp(point)), rel=1e-12)
        self._loo_is_sliced_plus_constant(idata, "flow", y, lambda s: dlm.LocalLevel(*s),
                                          ["sigma_level", "sigma_obs"])

    def test_trend_seasonal_loo_runs(self):
        y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
        rng = np.random.default_rng(0)
        draws = {"s_level": np.abs(0.03 + 0.005 * rng.standard_normal((2, 60))),
                 "s_slope": np.abs(0.001 + 0.0002 * rng.standard_normal((2, 60))),
                 "s_seas": np.abs(0.01 + 0.002 * rng.standard_normal((2, 60))),
                 "s_obs": np.abs(0.02 + 0.003 * rng.standard_normal((2, 60)))}

        def build(s):
            return dlm.LocalLinearTrend(s[0], s[1]) + dlm.Seasonal(12, s[2], sigma_obs=s[3])

        with pm.Model() as m:
            free = [pm.HalfNormal(k, 1.0) for k in draws]
            dlm.DLM("y", build(free), observed=y)
        idata = posterior(**draws)
        pm.compute_log_likelihood(idata, model=m, progressbar=False)
        assert idata.log_likelihood["y"].shape == (2, 60, len(y) - 13)
        self._loo_is_sliced_plus_constant(idata, "y", y, build, list(draws))

    @staticmethod
    def _loo_is_sliced_plus_constant(idata, name, y, build, names):
        post = idata.posterior
        nc, nd_ = post.sizes["chain"], post.sizes["draw"]
        llf = np.array([[dlm.kalman_filter(build([float(post[k][c, d]) for k in names]), y).llf_t
                         for d in range(nd_)] for c in range(nc)])
        n_diffuse = len(y) - idata.log_likelihood[name].shape[-1]
        const = llf[..., :n_diffuse].mean(axis=(0, 1))
        np.testing.assert_allclose(llf[..., :n_diffuse], np.broadcast_to(const, llf[..., :n_diffuse].shape),
                                   rtol=1e-10, atol=1e-10)  # the diffuse terms are constants
        sliced = from_dict({"posterior": {k: post[k].values for k in names},
                            "log_likelihood": {name: llf[..., n_diffuse:]}})
        with warnings.catch_warnings():  # a few k-hat above 0.6 with these small posteriors:
            warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto")  # both alike
            ours = az.loo(idata, var_name=name, pointwise=True)
            ref = az.loo(sliced, var_name=name, pointwise=True)
        assert ours.elpd == pytest.approx(ref.elpd + const.sum(), rel=1e-10)
        assert ours.p == pytest.approx(ref.p, rel=1e-8, abs=1e-10)
        np.testing.assert_allclose(ours.pareto_k.values, ref.pareto_k.values, rtol=1e-8)


class TestMissingRows:
    """p = 2 with a wholly missing step (10) and partly missing ones (6, 21-23): one pointwise
    term per observed value, stacked on ``y_obs``; reference: the NumPy filter's one-step
    moments and the Gaussian conditional density of row 2 given row 1 (closed form)."""

    @staticmethod
    @functools.cache
    def fit():
        m, mod_num, y = bivariate_model()
        rng = np.random.default_rng(8)
        idata = posterior(h11=np.abs(1.0 + 0.1 * rng.standard_normal((2, 30))),
                          q2=np.abs(0.5 + 0.05 * rng.standard_normal((2, 30))))
        with m:
            pm.compute_log_likelihood(idata, progressbar=False)
            pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=9,
                                           progressbar=False)
        return m, y, dlm.add_residuals(idata, m)

    def test_observed_values_stacked(self):
        m, y, idata = self.fit()
        nd = dlm.kalman_filter(bivariate_model()[1], y).n_diffuse
        t, i = np.nonzero(~np.isnan(y[nd:]))
        for group in ("observed_data", "posterior_predictive", "log_likelihood"):
            da = idata[group]["y"]
            assert da.dims[-1] == "y_obs"
            np.testing.assert_array_equal(da["time"].values, t + nd)
            np.testing.assert_array_equal(da["series"].values, i)
        np.testing.assert_array_equal(idata.observed_data["y"].values, y[t + nd, i])
        assert idata["residuals"].sizes["time"] == len(y)
        before = {g: idata[g].to_dataset() for g in ("observed_data", "log_likelihood")}
        dlm.add_residuals(idata, m)  # a second call changes nothing
        for group, ds in before.items():
            xr.testing.assert_identical(idata[group].to_dataset(), ds)

    def test_stacked_groups_round_trip_through_zarr(self, tmp_path):
        _, _, idata = self.fit()
        groups = ("observed_data", "posterior_predictive", "log_likelihood")
        xr.DataTree.from_dict({g: idata[g].to_dataset() for g in groups}).to_zarr(
            tmp_path / "fit.zarr", consolidated=False)
        back = xr.open_datatree(tmp_path / "fit.zarr", engine="zarr", consolidated=False)
        for group in groups:
            xr.testing.assert_identical(back[group].to_dataset(), idata[group].to_dataset())

    def test_entries_are_conditional_densities_summing_to_the_loglik(self):
        m, y, idata = self.fit()
        ll = idata.log_likelihood["y"]
        tt, ii = ll["time"].values, ll["series"].values
        for c, k in [(0, 0), (1, 17)]:
            h11, q2 = float(idata.posterior.h11[c, k]), float(idata.posterior.q2[c, k])
            mod, _ = bivariate(lambda name, v: {"h11": h11, "q2": q2}.get(name, v))
            ref = dlm.kalman_filter(mod, y)
            Z, d, H = (np.asarray(getattr(mod, x), float) for x in ("Z", "d", "H"))
            want = []
            for t, i in zip(tt, ii, strict=True):
                mu, F = Z @ ref.a_pred[t] + d, Z @ ref.P_pred[t] @ Z.T + H
                if i == 1 and not np.isnan(y[t, 0]):  # row 2 given row 1 of the same step
                    mu1 = mu[1] + F[1, 0] / F[0, 0] * (y[t, 0] - mu[0])
                    var1 = F[1, 1] - F[1, 0] ** 2 / F[0, 0]
                    want.append(stats.norm.logpdf(y[t, 1], mu1, np.sqrt(var1)))
                else:
                    want.append(stats.norm.logpdf(y[t, i], mu[i], np.sqrt(F[i, i])))
            want = np.array(want)
            want[0] += ref.llf_t[: tt[0]].sum()  # the diffuse steps' terms, in the first entry
            np.testing.assert_allclose(ll.values[c, k], want, rtol=1e-9)
            assert float(ll[c, k].sum()) == pytest.approx(ref.llf, rel=1e-12)

    def test_loo_and_pit_run(self):
        m, y, idata = self.fit()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto")
            loo = az.loo(idata)
            pit = az.loo_pit(idata)["y"].values
        assert loo.n_data_points == idata.observed_data.sizes["y_obs"] and np.isfinite(loo.elpd)
        assert np.isfinite(pit).all() and ((pit > 0.0) & (pit < 1.0)).mean() > 0.95
        import matplotlib.pyplot as plt

        assert az.plot_ppc_pit(idata) is not None
        plt.close("all")


class TestResiduals:
    def test_group_and_statistics_match_the_diagnostics(self):
        _, y, idata = nile_fit()
        r = idata["residuals"]
        assert r["standardized_residual"].dims == ("chain", "draw", "year")
        post = idata.posterior
        for c, d in [(0, 3), (1, 99)]:
            sl, so = float(post.sigma_level[c, d]), float(post.sigma_obs[c, d])
            ref = dlm.kalman_filter(dlm.LocalLevel(sl, so), y)
            e = standardized_residuals(ref)
            np.testing.assert_allclose(r["standardized_residual"].values[c, d], e[:, 0],
                                       rtol=1e-9, equal_nan=True)
            np.testing.assert_allclose(r["prediction_error"].values[c, d, 1:], ref.v[1:, 0],
                                       rtol=1e-9)
            np.testing.assert_allclose(float(r["ljung_box"][c, d, 0]),
                                       ljung_box(e, 10).statistic, rtol=1e-10)  # Q(10)
            np.testing.assert_allclose(float(r["jarque_bera"][c, d]), jarque_bera(e).statistic,
                                       rtol=1e-10)
            np.testing.assert_allclose(float(r["heteroskedasticity"][c, d]),
                                       heteroskedasticity(e).statistic, rtol=1e-10)
        summ = az.summary(idata, group="residuals",
                          var_names=["ljung_box", "jarque_bera", "heteroskedasticity"])
        assert len(summ) == 3 and np.isfinite(summ["mean"].to_numpy(float)).all()

    def test_needs_a_datatree(self):
        m, _, _ = bivariate_model()
        with pytest.raises(TypeError, match="must be a DataTree"):
            dlm.add_residuals(xr.Dataset({"h11": (("chain", "draw"), [[1.0]])}), m)

    def test_multivariate_standardized_by_cholesky(self):
        m, mod_num, y = bivariate_model()
        idata = dlm.add_residuals(posterior(h11=[[1.0]], q2=[[0.5]]), m, lags=[1, 5])
        r = idata["residuals"]
        assert r["standardized_residual"].dims == ("chain", "draw", "time", "series")
        assert r["prediction_variance"].dims[-2:] == ("series", "series_bis")
        e = standardized_residuals(dlm.kalman_filter(mod_num, y))
        np.testing.assert_allclose(r["standardized_residual"].values[0, 0], e, rtol=1e-9,
                                   equal_nan=True)
        assert r["ljung_box"].dims == ("chain", "draw", "series", "lag")
        np.testing.assert_allclose(r["ljung_box"].values[0, 0, 1],
                                   ljung_box(e[:, 1], 5).table["statistic"].iloc[[0, 4]],
                                   rtol=1e-10)
