"""Residual diagnostics against statsmodels at the same parameters (independent code)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from conftest import statsmodels_smooth
from reference_models import NILE_H, NILE_Q, bivariate
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.tsa.stattools import acf as sm_acf

import pymc_dlm as dlm
from pymc_dlm.diagnostics import acf, heteroskedasticity, jarque_bera, ljung_box, standardized_residuals


@pytest.fixture(scope="module")
def nile():
    y = dlm.datasets.load_nile()
    mod = dlm.LocalLevel(NILE_Q**0.5, NILE_H**0.5)
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True)
    res = uc.filter([NILE_H, NILE_Q])
    return standardized_residuals(dlm.kalman_filter(mod, y)), res


def test_standardized_residuals_match_statsmodels(nile):
    e, res = nile
    d = res.nobs_diffuse
    assert np.isnan(e[:d]).all()
    np.testing.assert_allclose(e[d:, 0], res.standardized_forecasts_error[0, d:], rtol=1e-9)


def test_multivariate_cholesky_standardisation_and_missing():
    """p = 2 with correlated H and missing entries: statsmodels' standardized errors (Cholesky
    of F_t) on fully observed steps; a partly observed step standardises the observed row."""
    mod, y = bivariate()
    f = dlm.kalman_filter(mod, y)
    e = standardized_residuals(f)
    ref = statsmodels_smooth(mod, y).standardized_forecasts_error.T
    full = ~np.isnan(y).any(axis=1)
    full[: f.n_diffuse] = False
    np.testing.assert_allclose(e[full], ref[full], rtol=1e-8, atol=1e-12)
    part = np.flatnonzero(np.isnan(y).sum(axis=1) == 1)
    part = part[part >= f.n_diffuse]
    assert part.size
    for t in part:
        i = np.flatnonzero(~np.isnan(y[t]))[0]
        assert np.isnan(e[t, 1 - i])
        np.testing.assert_allclose(e[t, i], f.v[t, i] / np.sqrt(f.F[t, i, i]), rtol=1e-12)


def test_acf_and_ljung_box_match_statsmodels(nile):
    e, res = nile
    x = e[~np.isnan(e[:, 0]), 0]
    np.testing.assert_allclose(acf(e, 10), sm_acf(x, nlags=10, fft=False), rtol=1e-12)
    for model_df in (0, 2):
        ours = ljung_box(e, 10, model_df=model_df)
        ref = acorr_ljungbox(x, lags=10, model_df=model_df)
        np.testing.assert_allclose(ours.table.statistic, ref.lb_stat, rtol=1e-12)
        np.testing.assert_allclose(ours.table.p_value, ref.lb_pvalue, rtol=1e-10)
        # the result is the test at max_lag (dynaris' fields), the table beside it
        assert (ours.statistic, ours.p_value) == (ours.table.statistic.iloc[-1],
                                                  ours.table.p_value.iloc[-1])
        np.testing.assert_allclose(ours["statistic"], ref.lb_stat, rtol=1e-12)
    # statsmodels' results object runs the same test on the same residuals
    sc = res.test_serial_correlation("ljungbox", lags=10)[0]
    np.testing.assert_allclose(ljung_box(e, 10).table.statistic, sc[0], rtol=1e-10)


def test_jarque_bera_and_heteroskedasticity_match_statsmodels(nile):
    e, res = nile
    jb = jarque_bera(e)
    ref = res.test_normality("jarquebera")[0]  # statistic, p-value, skew, kurtosis
    np.testing.assert_allclose([jb.statistic, jb.p_value, jb.skew, jb.kurtosis], ref, rtol=1e-10)
    h = heteroskedasticity(e)
    ref = res.test_heteroskedasticity("breakvar")[0]
    np.testing.assert_allclose([h.statistic, h.p_value], ref, rtol=1e-10)


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: acf(np.ones((5, 2)), 1), ValueError, "one series"),
        (lambda: acf([1.0, np.inf, 2.0, 3.0], 1), ValueError, "inf"),
        (lambda: acf([1.0, 2.0, 3.0], 5), ValueError, "max_lag"),
        (lambda: acf([1.0, 2.0, 3.0], 1.5), TypeError, "integer"),
        (lambda: ljung_box([1.0, 2.0, 3.0, 4.0], 2, model_df=-1), ValueError, "model_df"),
        (lambda: heteroskedasticity(np.ones(9), alternative="up"), ValueError, "alternative"),
        (lambda: standardized_residuals(np.ones(3)), TypeError, "FilterResult"),
    ],
)
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
