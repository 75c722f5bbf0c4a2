"""Regressors in formulas, on the command line and in summaries: the UK drivers regression.

Reference: Commandeur and Koopman (2007), section 7.1: log drivers KSI on a deterministic level
and seasonal, the log petrol price and the seat-belt law: coefficients -0.45213 (petrol) and
-0.19714 (law), sigma2_eps = 0.00740223 (printed to 5 and 6 significant digits: compared to
half a unit of the last digit; the variance at the MLE optimiser's tolerance, rtol 1e-5).  The
standard errors against statsmodels 0.15.0 ``UnobservedComponents("deterministic constant",
seasonal=12, stochastic_seasonal=False, exog=X, mle_regression=False)`` smoothed state
covariances at the same variance (rtol 1e-8), and against the closed form of D&K 2012 section
6.2.2 for this fully deterministic model, :math:`\\sigma^2 (X'X)^{-1}` of the regression on a
constant, 11 seasonal dummies and the two regressors (rtol 1e-8).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
import pymc_dlm.cli as cli

FORMULA = "level(fixed) + seasonal(12, fixed) + reg(log_petrol_price, seatbelt_law)"
CK_PETROL, CK_LAW, CK_S2 = -0.45213, -0.19714, 0.00740223


@pytest.fixture(scope="module")
def drivers():
    df = dlm.datasets.load_uk_drivers()
    return np.log(df["drivers_ksi"]).rename("log_ksi"), df


@pytest.fixture(scope="module")
def fitted(drivers):
    y, df = drivers
    return dlm.fit(FORMULA, y, data=df)


def test_formula_reproduces_commandeur_koopman(fitted):
    table = fitted.coefficients()
    assert list(table.index) == ["beta.log_petrol_price", "beta.seatbelt_law"]
    assert table["coef"].iloc[0] == pytest.approx(CK_PETROL, abs=5e-6)
    assert table["coef"].iloc[1] == pytest.approx(CK_LAW, abs=5e-6)
    assert float(fitted.model.H[0, 0]) == pytest.approx(CK_S2, rel=1e-5)
    assert table["static"].all()
    text = fitted.summary()
    assert "beta.log_petrol_price" in text and "-0.45213" in text


def test_standard_errors_match_statsmodels_and_gls(fitted, drivers):
    import statsmodels.api as sm

    y, df = drivers
    s2 = float(fitted.model.H[0, 0])
    X = df[["log_petrol_price", "seatbelt_law"]].to_numpy()
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "deterministic constant", seasonal=12,
                                     stochastic_seasonal=False, exog=X, mle_regression=False,
                                     use_exact_diffuse=True)
    ref = uc.smooth([s2])
    table = fitted.coefficients()
    np.testing.assert_allclose(table["coef"], ref.smoothed_state[-2:, -1], rtol=1e-8)
    np.testing.assert_allclose(table["std err"], np.sqrt(np.diag(ref.smoothed_state_cov[-2:, -2:, -1])),
                               rtol=1e-8)
    n = len(y)
    D = np.column_stack([np.ones(n)] + [(np.arange(n) % 12 == k) for k in range(1, 12)] + [X])
    gls = s2 * np.linalg.inv(D.T @ D)[-2:, -2:]
    np.testing.assert_allclose(table["std err"], np.sqrt(np.diag(gls)), rtol=1e-8)


def test_regression_forecast_needs_the_future(fitted, drivers):
    _, df = drivers
    with pytest.raises(ValueError, match=r"needs their future values: pass exog="):
        fitted.forecast(2)
    future = pd.DataFrame({"log_petrol_price": [-2.3, -2.3], "seatbelt_law": [1.0, 1.0]},
                          index=pd.date_range("1985-01-01", periods=2, freq="MS"))
    fc = fitted.forecast(2, exog={"law": future, "repeal": future.assign(seatbelt_law=0.0)})
    assert fc.index.names == ["scenario", "month"]
    gap = fc.loc["repeal", "mean"].to_numpy() - fc.loc["law", "mean"].to_numpy()
    np.testing.assert_allclose(gap, -fitted.coefficients()["coef"].iloc[1], rtol=1e-10)


@pytest.mark.parametrize("text, match", [
    ("level + reg()", r"expected reg\(column, \.\.\.\)"),
    ("level + reg(a, a)", r"a regressor appears twice"),
])
def test_bad_reg_terms(text, match):
    with pytest.raises(ValueError, match=match):
        dlm.parse_formula(text)


def test_reg_needs_its_columns(drivers):
    y, df = drivers
    with pytest.raises(ValueError, match=r"pass the DataFrame holding them as data="):
        dlm.fit("level + reg(log_petrol_price)", y)
    with pytest.raises(ValueError, match=r"the data has no column 'petrol'"):
        dlm.fit("level + reg(petrol)", y, data=df)


def test_command_line_with_exog(tmp_path, drivers, capsys):
    y, df = drivers
    csv = tmp_path / "drivers.csv"
    frame = df.assign(log_ksi=y).drop(columns="drivers_ksi")
    future = pd.DataFrame({"log_petrol_price": [-2.3] * 3, "seatbelt_law": [1.0] * 3},
                          index=pd.date_range("1985-01-01", periods=3, freq="MS", name="month"))
    pd.concat([frame, future])[["log_ksi", "log_petrol_price", "seatbelt_law"]].rename_axis(
        "month").to_csv(csv, date_format="%d/%m/%Y")
    out = tmp_path / "report"
    code = cli.main(["fit", str(csv), "--column", "log_ksi", "--dayfirst", "--model",
                     "level(fixed) + seasonal(12, fixed)", "--exog",
                     "log_petrol_price,seatbelt_law", "--steps", "12", "--out", str(out)])
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert code == 0, err
    assert "parsed day-first: '01/01/1969' -> 1969-01-01" in err
    assert "forecast: 3 periods after the data" in err
    s = json.loads((out / "summary.json").read_text())
    assert s["coefficients"]["beta.log_petrol_price"]["coef"] == pytest.approx(CK_PETROL, abs=5e-6)
    assert s["coefficients"]["beta.seatbelt_law"]["coef"] == pytest.approx(CK_LAW, abs=5e-6)
    fc = pd.read_csv(out / "forecast.csv", index_col=0)
    assert list(fc.index) == ["1985-01-01", "1985-02-01", "1985-03-01"]
