"""Forecasts with future regressors and future system matrices.

References: statsmodels ``UnobservedComponents(..., exog=X, mle_regression=False,
use_exact_diffuse=True)`` (statsmodels 0.15.0: the coefficients are diffuse states, as in our
``Regression``) ``get_forecast(steps, exog=X_future)`` at the same parameters, means and
variances to rtol 1e-8 (two implementations of the same recursion); a scenario forecast is the
forecast of each scenario on its own (exact); a time-varying ``H`` given through ``future=``
against the same model built over n + steps (exact).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.numeric.forecast import extend_model

S2_LEVEL, S2_EPS = 0.0025, 0.0074


@pytest.fixture(scope="module")
def drivers():
    df = dlm.datasets.load_uk_drivers()
    y = np.log(df["drivers_ksi"])
    X = df[["log_petrol_price", "seatbelt_law"]]
    return y.iloc[:180], X.iloc[:180], X.iloc[180:]


def _model(X):
    return dlm.LocalLevel(S2_LEVEL**0.5, S2_EPS**0.5) + dlm.Regression(X)


def test_exog_forecast_matches_statsmodels(drivers):
    import statsmodels.api as sm

    y, X, Xf = drivers
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", exog=X.to_numpy(),
                                     mle_regression=False, use_exact_diffuse=True)
    sres = uc.smooth([S2_EPS, S2_LEVEL])
    ref = sres.get_forecast(12, exog=Xf.to_numpy())
    for exog in (Xf, Xf.to_numpy()):  # a DataFrame aligned by its index, or an array
        fc = dlm.forecast(_model(X), y, 12, exog=exog)
        np.testing.assert_allclose(fc.y_mean[:, 0], ref.predicted_mean, rtol=1e-8)
        np.testing.assert_allclose(fc.y_cov[:, 0, 0], ref.var_pred_mean, rtol=1e-8)
    assert fc.index.equals(pd.DatetimeIndex(Xf.index.to_numpy(), freq="MS"))


def test_frame_rows_are_taken_by_date(drivers):
    y, X, Xf = drivers
    longer = pd.concat([X.iloc[-5:], Xf]).iloc[::-1]  # extra rows, reversed order
    a = dlm.forecast(_model(X), y, 12, exog=longer)
    b = dlm.forecast(_model(X), y, 12, exog=Xf.to_numpy())
    np.testing.assert_array_equal(a.y_mean, b.y_mean)
    with pytest.raises(ValueError, match=r"exog has no row for 1984-01-01"):
        dlm.forecast(_model(X), y, 12, exog=Xf.iloc[1:])
    with pytest.raises(ValueError, match=r"exog lacks the regressors \['seatbelt_law'\]"):
        dlm.forecast(_model(X), y, 12, exog=Xf[["log_petrol_price"]])


def test_scenarios_equal_separate_forecasts(drivers):
    y, X, Xf = drivers
    law_off = Xf.assign(seatbelt_law=0.0)
    both = dlm.forecast(_model(X), y, 12, exog={"law": Xf, "no law": law_off})
    for name, x in (("law", Xf), ("no law", law_off)):
        one = dlm.forecast(_model(X), y, 12, exog=x)
        np.testing.assert_array_equal(both[name].y_mean, one.y_mean)
        np.testing.assert_array_equal(both[name].y_cov, one.y_cov)
    assert not np.allclose(both["law"].y_mean, both["no law"].y_mean)


def test_missing_future_values_are_named(drivers):
    y, X, _ = drivers
    with pytest.raises(ValueError, match=r"regressors \['log_petrol_price', 'seatbelt_law'\]\); "
                                         r"forecasting 4 steps needs their future values: pass "
                                         r"exog= as a \(4, 2\) array"):
        dlm.forecast(_model(X), y, 4)
    with pytest.raises(ValueError, match=r"exog must hold the future values .* \(4, 2\); got "
                                         r"shape \(3, 2\)"):
        dlm.forecast(_model(X), y, 4, exog=np.ones((3, 2)))
    with pytest.raises(ValueError, match="the model has no regressors"):
        dlm.forecast(dlm.LocalLevel(1.0, 1.0), y, 4, exog=np.ones((4, 1)))
    H = np.full((180, 1, 1), S2_EPS)
    mod = dlm.LocalLevel(S2_LEVEL**0.5).replace(H=H)
    with pytest.raises(ValueError, match=r"H is time-varying over the n = 180 observations; "
                                         r"forecasting 4 steps needs its future values: pass "
                                         r"future=\{'H': \(steps, \.\.\.\) array\}"):
        dlm.forecast(mod, y, 4)


def test_future_matrices_equal_the_model_over_the_horizon(drivers):
    y = drivers[0]
    Hall = np.linspace(0.005, 0.01, 184)[:, None, None]
    base = dlm.LocalLevel(S2_LEVEL**0.5)
    a = dlm.forecast(base.replace(H=Hall[:180]), y, 4, future={"H": Hall[180:]})
    b = dlm.forecast(base.replace(H=Hall), y, 4)
    np.testing.assert_array_equal(a.y_cov, b.y_cov)
    np.testing.assert_array_equal(a.y_mean, b.y_mean)
    ext = extend_model(base.replace(H=Hall[:180]), 180, 4, future={"H": Hall[180:]})
    assert ext.n_time == 184
