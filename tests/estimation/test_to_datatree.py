"""MLE and EM fits as ArviZ DataTrees: the estimate as a one-draw posterior, the pointwise
log-likelihood (summing to the fit's log-likelihood), the residual group equal to
pymc_dlm.diagnostics' at the estimate; written to zarr and read back unchanged.
Reference values: D&K (2012), section 2.10.3, Nile MLE sigma2_obs = 15099, sigma2_level = 1469.1;
the NumPy filter's per-step log-likelihood; the PIT of the plug-in one-step predictive,
Phi(standardized residual) (closed form; Monte Carlo bound 6 sd of a mean of S indicators)."""

from __future__ import annotations

import functools

import warnings

import arviz as az
import matplotlib
import numpy as np
import pytest
import xarray as xr
from scipy import stats

import pymc_dlm as dlm
from pymc_dlm.diagnostics import jarque_bera, standardized_residuals

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@functools.cache
def mle():
    return dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())


def test_mle_tree_holds_the_fit():
    res = mle()
    dt = res.to_datatree(name="flow")
    assert dt.posterior["sigma2.obs"].item() == pytest.approx(15099, rel=1e-3)
    assert dt.posterior["sigma2.level"].item() == pytest.approx(1469.1, rel=1e-3)
    ll = dt.log_likelihood["flow"]
    assert ll.dims == ("chain", "draw", "time") and int(ll.time[0]) == 1872
    assert float(ll.sum()) == pytest.approx(res.log_likelihood, rel=1e-12)
    e = standardized_residuals(res.filter())
    r = dt["residuals"]
    np.testing.assert_allclose(r["standardized_residual"].values[0, 0], e[:, 0], rtol=1e-10,
                               equal_nan=True)
    assert r["jarque_bera"].item() == pytest.approx(jarque_bera(e).statistic, rel=1e-10)
    # observed_data and log_likelihood line up: steps after the diffuse one (d = 1)
    np.testing.assert_array_equal(dt.observed_data["flow"].values,
                                  dlm.datasets.load_nile().values[1:])
    np.testing.assert_array_equal(dt.observed_data.time.values, ll.time.values)
    assert dt["residuals"].sizes["time"] == 100  # the residuals keep every step


def test_round_trip_through_zarr(tmp_path):
    dt = mle().to_datatree(name="flow")
    dt.to_zarr(tmp_path / "fit.zarr", consolidated=False)
    back = xr.open_datatree(tmp_path / "fit.zarr", engine="zarr", consolidated=False)
    for group in ("posterior", "observed_data", "log_likelihood", "residuals"):
        xr.testing.assert_allclose(back[group].to_dataset(), dt[group].to_dataset())


def test_em_tree_and_custom_names():
    em = dlm.estimation.fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(30.0, 100.0))
    dt = em.to_datatree(posterior={"sigma_obs": em.params["sigma2.obs"] ** 0.5}, name="flow")
    assert list(dt.posterior.data_vars) == ["sigma_obs"]
    assert float(dt.log_likelihood["flow"].sum()) == pytest.approx(em.log_likelihood, rel=1e-10)
    assert sorted(em.to_datatree().posterior.data_vars) == ["sigma2.level", "sigma2.obs"]


@functools.cache
def em_missing():
    """EM on the Nile with the years missing in D&K (2012), fig. 2.5: 1891-1910, 1931-1950."""
    y = dlm.datasets.load_nile().copy()
    y.iloc[20:40] = np.nan
    y.iloc[60:80] = np.nan
    em = dlm.estimation.fit_em(y, dlm.LocalLevel(30.0, 100.0))
    return em, y, em.to_datatree(name="flow", predictive_draws=2000, random_seed=7)


def test_missing_years_left_out_and_terms_sum_to_the_loglik():
    em, y, dt = em_missing()
    kept = y.index[1:][y.notna().to_numpy()[1:]]  # after the diffuse 1871, observed
    for group in ("observed_data", "log_likelihood", "posterior_predictive"):
        np.testing.assert_array_equal(dt[group]["flow"].time.values, kept)
    np.testing.assert_array_equal(dt.observed_data["flow"].values, y[kept].to_numpy())
    ref = dlm.kalman_filter(em.model, y.to_numpy())  # the NumPy filter at the estimate
    pos = np.flatnonzero(y.index.isin(kept))
    want = ref.llf_t[pos]
    want[0] += ref.llf_t[0]  # the diffuse step's constant, in the first kept entry
    np.testing.assert_allclose(dt.log_likelihood["flow"].values[0, 0], want, rtol=1e-12)
    assert float(dt.log_likelihood["flow"].sum()) == pytest.approx(ref.llf, rel=1e-12)
    assert float(dt.log_likelihood["flow"].sum()) == pytest.approx(em.log_likelihood, rel=1e-12)
    assert dt["residuals"].sizes["time"] == 100


def test_missing_tree_round_trips_through_zarr(tmp_path):
    dt = em_missing()[2]
    dt.to_zarr(tmp_path / "gaps.zarr", consolidated=False)
    back = xr.open_datatree(tmp_path / "gaps.zarr", engine="zarr", consolidated=False)
    for group in ("observed_data", "log_likelihood", "posterior_predictive", "residuals"):
        xr.testing.assert_identical(back[group].to_dataset(), dt[group].to_dataset())


def test_one_draw_tree_in_arviz():
    """The plug-in predictive feeds the PPC plots; PSIS-based checks need posterior draws."""
    em, y, dt = em_missing()
    rep, obs = dt.posterior_predictive["flow"], dt.observed_data["flow"]
    pit = (rep < obs).mean(("chain", "draw")).values
    e = standardized_residuals(em.filter())[:, 0]
    want = stats.norm.cdf(e[np.isin(y.index, obs.time.values)])
    np.testing.assert_allclose(pit, want, atol=6 * 0.5 / np.sqrt(2000))
    for plot in (az.plot_ppc_pit, az.plot_ppc_dist, az.plot_ppc_interval, az.plot_ppc_tstat):
        assert plot(dt) is not None
    plt.close("all")
    with warnings.catch_warnings(), pytest.raises(IndexError):  # ArviZ's PSIS with one draw
        warnings.simplefilter("ignore")
        az.loo(dt)
    with pytest.raises(ValueError, match="predictive_draws must be"):
        em.to_datatree(predictive_draws=-1)
