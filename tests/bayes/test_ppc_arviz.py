"""ArviZ's predictive checks on a DLM's one-step posterior predictive, with no extra step.

After ``pm.compute_log_likelihood``, ``pm.sample_posterior_predictive`` and
``dlm.add_residuals``, the observed, posterior-predictive and log-likelihood groups cover the
steps after the exact diffuse period (d = 1 for the Nile local level, 13 for trend +
seasonal(12)) with one time coordinate, so every ArviZ check compares an observation with its
own proper one-step predictive.  References: the PIT of a correct predictive is uniform
(Dawid 1984; Kolmogorov-Smirnov at alpha = 0.01 on data simulated from a known local level);
PIT values are computed as arviz_plots' ``plot_ppc_pit`` computes them (fraction of
replicates below the observation, ties split at random); LOO-PIT is ``az.loo_pit``.
With ~10% of the simulated series missing, the wholly missing steps leave all three groups and
the pointwise terms equal the NumPy filter's llf_t (rtol 1e-10) and sum to its llf.
Sampling is tiny and shared per module.
"""

from __future__ import annotations

import functools
import warnings

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from arviz_base import from_dict
from scipy import stats

import pymc_dlm as dlm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _sample(m, draws, tune, seed):
    with m:
        idata = pm.sample(draws, tune=tune, chains=2, cores=1, random_seed=seed,
                          progressbar=False, compute_convergence_checks=False,
                          nuts_sampler="pymc")
        pm.compute_log_likelihood(idata, progressbar=False)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=seed + 1,
                                       progressbar=False)
    return idata


@functools.cache
def nile():
    y = dlm.datasets.load_nile()
    with pm.Model(coords={"year": y.index}) as m:
        s_level = pm.HalfNormal("sigma_level", 100.0)
        s_obs = pm.HalfNormal("sigma_obs", 200.0)
        dlm.DLM("flow", dlm.LocalLevel(s_level, s_obs), observed=y, dims="year")
    idata = _sample(m, 150, 150, 21)
    with m:
        idata["prior_predictive"] = pm.sample_prior_predictive(50, random_seed=1)["prior_predictive"]
    return m, y, dlm.add_residuals(idata, m), 1


@functools.cache
def airline():
    """log airline passengers, local linear trend + seasonal(12): d = 13, monthly dates.

    The draws are not NUTS's (its gradient of a 13-state model costs ~3 minutes to compile
    cold) but independent normal draws at the posterior means and sds of a NUTS run
    (2 x 100 draws, seed 1: level 0.0273 (0.0035), slope 0.0007 (0.0006), seasonal 0.0085
    (0.0025), observation 0.010 (0.0044)), folded to positive values.
    """
    y = np.log(dlm.datasets.load_airline_passengers())
    moments = {"s_level": (0.0273, 0.0035), "s_slope": (0.0007, 0.0006),
               "s_seas": (0.0085, 0.0025), "s_obs": (0.010, 0.0044)}
    with pm.Model(coords={"month": y.index}) as m:
        s = [pm.HalfNormal(k, 0.1) for k in moments]
        dlm.DLM("y", dlm.LocalLinearTrend(s[0], s[1]) + dlm.Seasonal(12, s[2], sigma_obs=s[3]),
                observed=y, dims="month")
    rng = np.random.default_rng(31)
    idata = from_dict({"posterior": {k: np.abs(mu + sd * rng.standard_normal((2, 150)))
                                     for k, (mu, sd) in moments.items()}})
    with m:
        pm.compute_log_likelihood(idata, progressbar=False)
        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=32,
                                       progressbar=False)
    return m, y, dlm.add_residuals(idata, m), 13


@functools.cache
def simulated():
    """A known local level, n = 200, about 10% missing at random (fixed seed) and step 2 too,
    so that the first step after the diffuse one is missing."""
    gen = dlm.LocalLevel(0.5, 1.0).replace(a1=[10.0], P1=[[0.0]], diffuse=[False])
    y, _ = dlm.simulate(gen, 200, rng=4)
    y[np.random.default_rng(5).random(200) < 0.1] = np.nan
    y[0], y[1] = 10.3, np.nan
    with pm.Model() as m:
        s_level = pm.HalfNormal("sigma_level", 2.0)
        s_obs = pm.HalfNormal("sigma_obs", 2.0)
        dlm.DLM("y", dlm.LocalLevel(s_level, s_obs), observed=y[:, 0])
    idata = _sample(m, 150, 150, 41)
    return m, y[:, 0], dlm.add_residuals(idata, m), 1


FITS = {"nile": nile, "airline": airline}


def _ppc_pit(idata, name):
    """arviz_plots.plot_ppc_pit's PIT: P(rep < y) + U * P(rep = y); also P(rep = y)."""
    rep = idata.posterior_predictive[name]
    obs = idata.observed_data[name]
    less = (rep < obs).mean(("chain", "draw")).values
    ties = (rep == obs).mean(("chain", "draw")).values
    return less, ties


@pytest.mark.parametrize("fit", list(FITS))
class TestGroupsAligned:
    def test_same_steps_after_the_diffuse_period(self, fit):
        m, y, idata, d = FITS[fit]()
        name = m.observed_RVs[0].name
        tname = m.named_vars_to_dims[name][0]
        want = np.asarray(y.index[d:])
        for group in ("observed_data", "posterior_predictive", "log_likelihood"):
            np.testing.assert_array_equal(idata[group][name][tname].values, want)
        np.testing.assert_array_equal(idata.observed_data[name].values, y.to_numpy()[d:])
        assert idata["residuals"].sizes[tname] == len(y)  # the full series, NaN at 1..d
        # idempotent
        dlm.add_residuals(idata, m)
        assert idata.posterior_predictive.sizes[tname] == len(y) - d

    def test_ppc_pit_values_are_proper(self, fit):
        m, _, idata, _ = FITS[fit]()
        name = m.observed_RVs[0].name
        less, ties = _ppc_pit(idata, name)
        assert ties.max() == 0.0  # no replicate is the observation itself (was 1 at 1..d)
        assert np.mean((less == 0.0) | (less == 1.0)) < 0.05
        assert stats.kstest(less, "uniform").pvalue > 0.01
        pc = az.plot_ppc_pit(idata, var_names=[name])
        assert pc is not None
        plt.close("all")

    def test_loo_pit_and_its_plot(self, fit):
        m, _, idata, d = FITS[fit]()
        name = m.observed_RVs[0].name
        with warnings.catch_warnings():  # small posteriors: a few k-hat above 0.7
            warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto")
            pit = az.loo_pit(idata, var_names=[name])[name].values
            az.plot_loo_pit(idata, var_names=[name])
        plt.close("all")
        assert pit.shape == (idata.observed_data[name].size,)
        assert np.all((pit >= 0.0) & (pit <= 1.0)) and np.isfinite(pit).all()
        assert np.mean((pit == 0.0) | (pit == 1.0)) < 0.05  # an extreme year may be 0 or 1
        assert stats.kstest(pit, "uniform").pvalue > 0.01

    def test_dist_interval_and_tstat_plots(self, fit):
        m, _, idata, _ = FITS[fit]()
        name = m.observed_RVs[0].name
        az.plot_ppc_dist(idata, var_names=[name], num_samples=20)
        az.plot_ppc_interval(idata, var_names=[name])
        az.plot_ppc_tstat(idata, var_names=[name], t_stat="median")
        plt.close("all")
        rep = idata.posterior_predictive[name]
        obs = idata.observed_data[name]
        lo, hi = rep.quantile([0.03, 0.97], dim=("chain", "draw"))
        cover = float(((lo <= obs) & (obs <= hi)).mean())
        assert 0.85 <= cover <= 0.99  # the interval plot's 94% intervals
        tdim = obs.dims[0]
        p_median = float((rep.median(tdim) <= float(obs.median())).mean())
        assert 0.01 < p_median < 0.99  # the t-stat plot's posterior predictive p-value


def test_prior_predictive_trimmed_too():
    m, y, idata, d = nile()
    pr = idata.prior_predictive["flow"]
    np.testing.assert_array_equal(pr.year.values, y.index[d:])
    assert np.isfinite(pr.values).all() and not (pr.values == y.to_numpy()[d:]).any()


class TestMissingObservations:
    """~10% of a simulated local level missing: the checks keep the observed steps."""

    def test_groups_keep_the_observed_steps(self):
        m, y, idata, d = simulated()
        kept = np.flatnonzero(~np.isnan(y))
        kept = kept[kept >= d]
        assert 15 <= len(y) - d - len(kept) <= 30 and 1 not in kept
        for group in ("observed_data", "posterior_predictive", "log_likelihood"):
            np.testing.assert_array_equal(idata[group]["y"]["time"].values, kept)
        np.testing.assert_array_equal(idata.observed_data["y"].values, y[kept])
        assert idata["residuals"].sizes["time"] == len(y)  # the model keeps all n steps

    def test_pointwise_terms_sum_to_the_loglik(self):
        """Per draw: the NumPy filter's llf, and its llf_t at the kept steps (the diffuse
        step's term in the first kept one, step 3, as step 2 is missing)."""
        m, y, idata, d = simulated()
        ll = idata.log_likelihood["y"]
        kept = ll["time"].values
        for c, k in [(0, 5), (1, 120)]:
            post = idata.posterior
            sl, so = float(post.sigma_level[c, k]), float(post.sigma_obs[c, k])
            ref = dlm.kalman_filter(dlm.LocalLevel(sl, so), y)
            want = ref.llf_t[kept]
            want[0] += ref.llf_t[:kept[0]].sum()
            np.testing.assert_allclose(ll.values[c, k], want, rtol=1e-10)
            assert float(ll[c, k].sum()) == pytest.approx(ref.llf, rel=1e-12)

    def test_loo_and_loo_pit_uniform(self):
        m, y, idata, d = simulated()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto")
            loo = az.loo(idata)
            pit = az.loo_pit(idata, var_names=["y"])["y"].values
            az.plot_loo_pit(idata, var_names=["y"])
            az.plot_ppc_pit(idata, var_names=["y"])
        plt.close("all")
        n_kept = idata.observed_data.sizes["time"]
        assert loo.n_data_points == n_kept and np.isfinite(loo.elpd)
        assert pit.shape == (n_kept,) and np.isfinite(pit).all()
        assert np.mean((pit == 0.0) | (pit == 1.0)) < 0.05
        assert stats.kstest(pit, "uniform").pvalue > 0.01
        less, ties = _ppc_pit(idata, "y")
        assert ties.max() == 0.0 and stats.kstest(less, "uniform").pvalue > 0.01


def test_airline_dates_kept():
    _, y, idata, d = airline()
    assert isinstance(y.index, pd.DatetimeIndex)
    assert idata.observed_data["y"].month.values[0] == np.datetime64(y.index[d])
