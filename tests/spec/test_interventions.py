"""Interventions and auxiliary residuals.

References: the seat-belt law as a level shift at 1983-02 is the regressor ``seatbelt_law`` of
the data set (Harvey and Durbin 1986), so its coefficient equals the regression's (rtol 1e-10,
same model written two ways); forecasts continue the dummies by their rule, compared with
``exog`` given by hand (exact).  Auxiliary residuals against statsmodels 0.15.0
``smoothed_measurement_disturbance`` / ``smoothed_state_disturbance`` standardized by
:math:`\\sqrt{H - Var(\\varepsilon|y)}`, :math:`\\sqrt{Q - Var(\\eta|y)}` from its
``*_cov`` outputs, rtol 1e-8; Nile at D&K's estimates (section 2.12, fig. 2.7): the outliers in
1877 and 1913 and the level break of 1899 (the disturbance between 1898 and 1899).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.numeric.auxiliary import auxiliary_residuals


@pytest.fixture(scope="module")
def drivers():
    df = dlm.datasets.load_uk_drivers()
    return np.log(df["drivers_ksi"]), df


def test_level_shift_is_the_seatbelt_regressor(drivers):
    y, df = drivers
    base = dlm.LocalLevel(0.03) + dlm.Seasonal(12, 0.001) + dlm.Irregular(0.06)
    law = dlm.LevelShift("1983-02-01", index=y.index, name="law")
    np.testing.assert_array_equal(law.Z[:, 0, 0], df["seatbelt_law"].to_numpy())
    a = dlm.kalman_smoother(base + law, y)
    b = dlm.kalman_smoother(base + dlm.Regression(df[["seatbelt_law"]]), y)
    np.testing.assert_allclose(a.a_smooth[-1, -1], b.a_smooth[-1, -1], rtol=1e-10)
    assert a.a_smooth[-1, -1] < -0.1  # the law lowered the deaths


def test_interventions_forecast_by_their_rule(drivers):
    y, _ = drivers
    base = dlm.LocalLevel(0.03, 0.06)
    idx = y.index
    mod = (base + dlm.LevelShift("1983-02-01", index=idx) + dlm.Pulse("1974-01-01", index=idx)
           + dlm.SlopeChange("1984-01-01", index=idx))
    fc = dlm.forecast(mod, y, 3)
    by_hand = base + dlm.Regression(np.asarray(mod.Z)[:, 0, 1:])
    ref = dlm.forecast(by_hand, y, 3, exog=np.array([[1.0, 0.0, 13.0], [1.0, 0.0, 14.0],
                                                      [1.0, 0.0, 15.0]]))
    np.testing.assert_allclose(fc.y_mean, ref.y_mean, rtol=1e-12)
    np.testing.assert_allclose(fc.y_cov, ref.y_cov, rtol=1e-12)
    with pytest.raises(ValueError, match=r"not in the index"):
        dlm.LevelShift("1990-01-01", index=idx)
    with pytest.raises(ValueError, match=r"at must be a position in 0 \.\. 9"):
        dlm.Pulse(10, n=10)


@pytest.fixture(scope="module")
def nile_aux():
    import statsmodels.api as sm

    y = dlm.datasets.load_nile()
    H, Q = 15099.0, 1469.1
    mod = dlm.LocalLevel(Q**0.5, H**0.5)
    e, r = auxiliary_residuals(dlm.kalman_smoother(mod, y), mod)
    ref = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True).smooth([H, Q])
    e_ref = ref.smoothed_measurement_disturbance[0] / np.sqrt(
        H - ref.smoothed_measurement_disturbance_cov[0, 0])
    with np.errstate(invalid="ignore"):  # 0 / 0 at t = n, where r_n = 0
        r_ref = ref.smoothed_state_disturbance[0] / np.sqrt(
            Q - ref.smoothed_state_disturbance_cov[0, 0])
    return y, e[:, 0], r[:, 0], e_ref, r_ref


def test_auxiliary_residuals_match_statsmodels(nile_aux):
    y, e, r, e_ref, r_ref = nile_aux
    np.testing.assert_allclose(e, e_ref, rtol=1e-8)
    np.testing.assert_allclose(r[:-1], r_ref[:-1], rtol=1e-8)
    assert np.isnan(r[-1])  # eta_n has no information (r_n = 0): variance zero, NaN


def test_nile_outliers_and_break(nile_aux):
    y, e, r, _, _ = nile_aux
    years = y.index.to_numpy()
    assert set(years[np.abs(e) > 2.0]) >= {1877, 1913}
    assert years[np.nanargmin(r)] == 1898 and r[years == 1898][0] < -2.5
    res = dlm.fit("level", y)
    report = res.outliers(2.0)
    assert report.iloc[0]["period"] == 1898 and report.iloc[0]["residual"] == "eta[level]"
    assert {1877, 1913} <= set(report[report["residual"] == "obs"]["period"])
    aux = res.auxiliary_residuals()
    assert list(aux.columns) == ["obs", "eta[level]"] and aux.index.equals(y.index)
