"""In-sample predictions, fitted values, residuals, and the fitted model on new data.

References: statsmodels 0.15.0 ``UnobservedComponents(..., use_exact_diffuse=True)`` at the
fitted parameters: ``get_prediction(start, end, dynamic)`` ``predicted_mean`` and
``var_pred_mean``, ``fittedvalues``, ``resid``, to rtol 1e-8 (two implementations of the same
recursion).  ``append`` against the filter over the longer series (exact); ``extend`` by the
prediction error decomposition: its log-likelihood is llf(y_1..n+k) - llf(y_1..n).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm


@pytest.fixture(scope="module")
def nile():
    y = dlm.datasets.load_nile()
    res = dlm.fit("level", y)
    return y, res


@pytest.fixture(scope="module")
def sm_nile(nile):
    import statsmodels.api as sm

    y, res = nile
    H, Q = float(res.model.H[0, 0]), float(res.model.Q[0, 0])
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True)
    return uc.smooth([H, Q])


@pytest.mark.parametrize("start, end, dynamic", [(1, 99, False), (1, 99, 40), (10, 109, 30),
                                                 (50, 99, True)])
def test_get_prediction_matches_statsmodels(nile, sm_nile, start, end, dynamic):
    _, res = nile
    ours = res.get_prediction(start, end, dynamic=dynamic)
    ref = sm_nile.get_prediction(start=start, end=end, dynamic=dynamic)
    np.testing.assert_allclose(ours.y_mean[:, 0], ref.predicted_mean, rtol=1e-8)
    np.testing.assert_allclose(ours.y_cov[:, 0, 0], ref.var_pred_mean, rtol=1e-8)
    assert ours.index[0] == 1871 + start and ours.index[-1] == 1871 + end
    frame = ours.summary_frame()
    assert frame.index.equals(ours.index) and (frame["mean_ci_lower"] < frame["mean"]).all()


def test_labels_and_bad_positions(nile):
    _, res = nile
    a = res.get_prediction(start=29, dynamic=30)  # ints: positions; dynamic: offset to start
    assert np.all(a.y_mean[30:] == a.y_mean[30]) and a.y_mean[29, 0] != a.y_mean[30, 0]
    y = pd.Series(res.data.to_numpy(), index=pd.period_range("1871", periods=100, freq="Y"))
    res_p = dlm.fit("level", y)
    c = res_p.get_prediction(start="1900", dynamic="1930")
    assert str(c.index[0]) == "1900" and c.y_mean.shape == (71, 1)
    with pytest.raises(ValueError, match=r"start='1700' is not a period of y's index"):
        res_p.get_prediction(start="1700")
    with pytest.raises(ValueError, match=r"start must be >= 0 and <= end"):
        res.get_prediction(start=50, end=40)


def test_fittedvalues_and_resid_match_statsmodels(nile, sm_nile):
    _, res = nile
    fv, rs = res.fittedvalues, res.resid
    assert fv.index.equals(res.data.index) and rs.name == "volume"
    np.testing.assert_allclose(fv.to_numpy()[1:], sm_nile.fittedvalues[1:], rtol=1e-8)
    np.testing.assert_allclose(rs.to_numpy()[1:], sm_nile.resid[1:], rtol=1e-8)


def test_exog_prediction_beyond_the_data_matches_statsmodels():
    import statsmodels.api as sm

    df = dlm.datasets.load_uk_drivers()
    y, X = np.log(df["drivers_ksi"]).iloc[:180], df[["log_petrol_price", "seatbelt_law"]]
    mod = dlm.LocalLevel(0.05, 0.086) + dlm.Regression(X.iloc[:180])
    res = dlm.estimation.fit_em(y, mod, max_iter=1)  # any parameters: compared at the result's
    H, Q = float(res.model.H[0, 0]), float(res.model.Q[0, 0])
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", exog=X.iloc[:180].to_numpy(),
                                     mle_regression=False, use_exact_diffuse=True)
    ref = uc.smooth([H, Q]).get_prediction(start=150, end=191, dynamic=10,
                                           exog=X.iloc[180:].to_numpy())
    ours = res.get_prediction(150, 191, dynamic=10, exog=X.iloc[180:])
    np.testing.assert_allclose(ours.y_mean[:, 0], ref.predicted_mean, rtol=1e-8)
    np.testing.assert_allclose(ours.y_cov[:, 0, 0], ref.var_pred_mean, rtol=1e-8)
    assert ours.index[-1] == pd.Timestamp("1984-12-01")


class TestNewData:
    def test_append_equals_the_longer_series(self, nile):
        y, res = nile
        short = dlm.fit("level", y.iloc[:80])
        longer = short.append(y.iloc[80:])
        assert longer.log_likelihood == pytest.approx(dlm.loglike(short.model, y), rel=1e-12)
        assert longer.nobs == 100 and longer.data.index.equals(y.index)
        np.testing.assert_array_equal(longer.params, short.params)
        arr = short.append(y.iloc[80:].to_numpy())  # an array continues the index
        assert arr.data.index.equals(y.index)

    def test_extend_is_the_conditional_likelihood(self, nile):
        y, res = nile
        short = dlm.fit("level", y.iloc[:80])
        ext = short.extend(y.iloc[80:])
        full, head = dlm.loglike(short.model, y), dlm.loglike(short.model, y.iloc[:80])
        assert ext.log_likelihood == pytest.approx(full - head, rel=1e-10)
        assert ext.data.index[0] == 1951 and ext.nobs == 20
        fc = short.forecast(3)
        assert ext.get_prediction(0, 0).y_mean[0, 0] == pytest.approx(fc["mean"].iloc[0],
                                                                       rel=1e-12)

    def test_apply_to_other_data(self, nile):
        y, res = nile
        other = y * 1.0 + 10.0
        app = res.apply(other)
        assert app.log_likelihood == pytest.approx(dlm.loglike(res.model, other), rel=1e-12)

    def test_append_with_regressors(self):
        df = dlm.datasets.load_uk_drivers()
        y, X = np.log(df["drivers_ksi"]), df[["log_petrol_price", "seatbelt_law"]]
        mod = dlm.LocalLevel(0.05, 0.086) + dlm.Regression(X.iloc[:180])
        res = dlm.estimation.fit_em(y.iloc[:180], mod, max_iter=1)
        full_model = res.model.replace(Z=np.concatenate(
            [np.asarray(res.model.Z), np.asarray((dlm.LocalLevel(1.0) + dlm.Regression(X)).Z)[180:]]))
        longer = res.append(y.iloc[180:], exog=X.iloc[180:])
        assert longer.log_likelihood == pytest.approx(dlm.loglike(full_model, y), rel=1e-12)
        with pytest.raises(ValueError, match=r"needs their future values: pass exog="):
            res.append(y.iloc[180:])
        app = res.apply(y.iloc[100:], exog=X.iloc[100:])
        assert app.model.n_time == 92
