"""Bayesian forecasts with future regressors.

Reference: for a posterior of a single draw, ``sample_forecast``'s per-draw forecast mean and
variance are the classical forecast's at that draw's parameters (:func:`pymc_dlm.forecast`
with ``exog``, itself checked against statsmodels in tests/numeric/test_forecast_exog.py),
to rtol 1e-12 (the same engine on the same numbers); the regressors given as ``exog=`` or,
the PyMC way, through ``pm.set_data`` over the data and the horizon, give the same numbers.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
import xarray as xr

import pymc_dlm as dlm

S_LEVEL, S_OBS = 0.05, 0.086


@pytest.fixture(scope="module")
def drivers():
    df = dlm.datasets.load_uk_drivers()
    y = np.log(df["drivers_ksi"])
    X = df[["log_petrol_price", "seatbelt_law"]]
    return y.iloc[:180], X.iloc[:180], X.iloc[180:]


def _post():
    return xr.Dataset({"s": (("chain", "draw"), [[S_LEVEL]])})


def test_single_draw_equals_classical_forecast(drivers):
    y, X, Xf = drivers
    with pm.Model() as m:
        s = pm.HalfNormal("s", 1.0)
        dlm.DLM("y", dlm.LocalLevel(s, S_OBS) + dlm.Regression(X), observed=y.to_numpy())
    fc = dlm.sample_forecast(m, _post(), 12, exog=Xf.to_numpy(), random_seed=1)
    ref = dlm.forecast(dlm.LocalLevel(S_LEVEL, S_OBS) + dlm.Regression(X), y, 12, exog=Xf)
    np.testing.assert_allclose(fc["forecast_mean"][0, 0], ref.y_mean[:, 0], rtol=1e-12)
    np.testing.assert_allclose(fc["forecast_var"][0, 0], ref.y_cov[:, 0, 0], rtol=1e-12)
    both = dlm.sample_forecast(m, _post(), 12, random_seed=1,
                               exog={"law": Xf.to_numpy(), "repeal": Xf.assign(seatbelt_law=0.0).to_numpy()})
    assert both["forecast_mean"].dims[0] == "scenario"
    np.testing.assert_allclose(both["forecast_mean"].sel(scenario="law")[0, 0], ref.y_mean[:, 0],
                               rtol=1e-12)
    with pytest.raises(ValueError, match=r"needs their future values: pass exog="):
        dlm.sample_forecast(m, _post(), 12)


def test_pm_data_regressors_forecast_through_set_data(drivers):
    y, X, Xf = drivers
    with pm.Model() as m:
        Xd = pm.Data("X", X.to_numpy(), shape=(None, 2))
        s = pm.HalfNormal("s", 1.0)
        dlm.DLM("y", dlm.LocalLevel(s, S_OBS) + dlm.Regression(Xd), observed=y.to_numpy())
    with m:
        pm.set_data({"X": np.vstack([X.to_numpy(), Xf.to_numpy()])})
    fc = dlm.sample_forecast(m, _post(), 12, random_seed=1)
    ref = dlm.forecast(dlm.LocalLevel(S_LEVEL, S_OBS) + dlm.Regression(X), y, 12, exog=Xf)
    np.testing.assert_allclose(fc["forecast_mean"][0, 0], ref.y_mean[:, 0], rtol=1e-12)
    np.testing.assert_allclose(fc["forecast_var"][0, 0], ref.y_cov[:, 0, 0], rtol=1e-12)
