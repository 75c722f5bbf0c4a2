"""MLE and EM fits as ArviZ DataTrees: the estimate as a one-draw posterior, the pointwise
log-likelihood (summing to the fit's log-likelihood), the residual group equal to
pymc_dlm.diagnostics' at the estimate; written to zarr and read back unchanged.
Reference values: D&K (2012), section 2.10.3, Nile MLE sigma2_obs = 15099, sigma2_level = 1469.1."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import xarray as xr

import pymc_dlm as dlm
from pymc_dlm.diagnostics import jarque_bera, standardized_residuals


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
    np.testing.assert_array_equal(dt.observed_data["flow"].values, dlm.datasets.load_nile().values)


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
