"""fit_mle and the transforms against statsmodels, D&K's published estimates and closed forms."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import statsmodels.api as sm

import pymc_dlm as dlm
from pymc_dlm.estimation import exp, fit_mle, inverse_softplus, log, softplus


def nile_fn(p):
    return dlm.LocalLevel(pt.exp(p[0]), pt.exp(p[1]))


@pytest.fixture(scope="module")
def nile_fit():
    y = dlm.datasets.load_nile()
    res = fit_mle(nile_fn, y, [np.log(30.0), np.log(100.0)], param_names=["ls_level", "ls_obs"])
    uc = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True)
    return y, res, uc.fit(disp=0)


def test_nile_mle_matches_durbin_koopman_and_statsmodels(nile_fit):
    """D&K (2012, section 2.10): sigma2_eps = 15099, sigma2_eta = 1469.1."""
    y, res, ref = nile_fit
    assert res.converged
    np.testing.assert_allclose(np.exp(2 * res.params), [1469.1, 15099.0], rtol=1e-3)
    assert res.log_likelihood >= ref.llf - 1e-6
    assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-3)
    # the fitted model holds the numbers; its NumPy log-likelihood is the optimum's
    assert dlm.loglike(res.model, y) == pytest.approx(res.log_likelihood, rel=1e-10)
    # AIC/BIC count the diffuse state as statsmodels and D&K do
    assert res.df_model == 3
    np.testing.assert_allclose([res.aic, res.bic], [ref.aic, ref.bic], atol=2e-3)


def test_standard_errors_from_an_independent_hessian(nile_fit):
    """Second differences of the NumPy engine's log-likelihood (no gradient code involved)."""
    y, res, _ = nile_fit
    x, h = res.params, 1e-3
    def f(z):
        return dlm.loglike(dlm.LocalLevel(np.exp(z[0]), np.exp(z[1])), y)

    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(np.linalg.inv(-H))), rtol=1e-4)
    assert "ls_level" in res.summary() and "central differences" in res.summary()


def test_softplus_transforms_numpy_and_pytensor():
    x = np.array([-745.0, -40.0, -1e-8, 0.0, 1e-8, 3.0, 40.0, 745.0])
    s = softplus(x)
    np.testing.assert_allclose(s[3], np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(s[1], np.exp(-40.0), rtol=1e-12)       # log1p(e^x) ~ e^x
    np.testing.assert_allclose(s[-1], 745.0, rtol=1e-15)                 # no overflow
    back = inverse_softplus(s[1:])
    np.testing.assert_allclose(back, x[1:], rtol=1e-10, atol=1e-15)
    v = pt.dvector("v")
    np.testing.assert_allclose(softplus(v).eval({v: x}), s, rtol=1e-12)
    np.testing.assert_allclose(inverse_softplus(v).eval({v: s[1:]}), x[1:], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(log(exp(x[1:-1])), x[1:-1], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(exp(v).eval({v: [0.5]}), np.exp(0.5))
    with pytest.raises(ValueError, match="positive"):
        inverse_softplus(0.0)
    with pytest.raises(ValueError, match="positive"):
        log(-1.0)


def test_softplus_parameterisation_reaches_the_same_mle(nile_fit):
    y, res, _ = nile_fit
    r2 = fit_mle(lambda p: dlm.LocalLevel(pt.sqrt(softplus(p[0])), pt.sqrt(softplus(p[1]))), y,
                 inverse_softplus(np.array([900.0, 10000.0])))
    np.testing.assert_allclose(softplus(r2.params), np.exp(2 * res.params), rtol=1e-3)
    assert r2.log_likelihood == pytest.approx(res.log_likelihood, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(model_fn=lambda p: 1.0), TypeError, "StateSpaceModel"),
        (dict(optimizer="Newton-CG"), ValueError, "optimizer must be one of"),
        (dict(init_params=[np.nan, 1.0]), ValueError, "finite"),
        (dict(init_params=[3.0]), ValueError, "1 entries"),
        (dict(init_params=[3.0, 4.0, 5.0]), ValueError, r"never uses psi\[2\]"),
        (dict(param_names=["a"]), ValueError, "names"),
        (dict(y=np.ones((100, 2))), ValueError, "shape"),
    ],
)
def test_bad_input(kwargs, err, match):
    args = dict(model_fn=nile_fn, y=dlm.datasets.load_nile(), init_params=[3.0, 4.0]) | kwargs
    with pytest.raises(err, match=match):
        fit_mle(args.pop("model_fn"), args.pop("y"), args.pop("init_params"), **args)


def test_trend_seasonal_mle_matches_statsmodels():
    """Local linear trend + dummy seasonal(12) on log airline passengers: our optimum's
    log-likelihood equals (or beats) statsmodels' UnobservedComponents fit within 1e-3."""
    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())

    def model_fn(p):
        return dlm.LocalLinearTrend(pt.exp(p[0]), pt.exp(p[1]), pt.exp(p[2])) + dlm.Seasonal(
            12, pt.exp(p[3]))

    res = fit_mle(model_fn, y, np.log([0.02, 0.002, 0.02, 0.01]))
    ref = sm.tsa.UnobservedComponents(y, level="lltrend", seasonal=12,
                                      use_exact_diffuse=True).fit(disp=0)
    assert res.log_likelihood >= ref.llf - 1e-3
    assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-2)
    # same fitted variances where the likelihood is not flat (irregular, level, seasonal)
    ours = np.exp(2 * res.params)[[2, 0, 3]]
    theirs = ref.params[[0, 1, 3]]
    np.testing.assert_allclose(ours, theirs, rtol=0.05, atol=2e-6)


def test_flat_optimum_at_a_variance_boundary_is_reported_converged():
    """UK drivers KSI, level + seasonal + regression: the seasonal variance goes to zero on the
    log scale, where L-BFGS-B's line search stops without 'success'; the end point is
    stationary and is the optimum BFGS finds (same log-likelihood)."""
    df = dlm.datasets.load_uk_drivers()
    y = np.log(df["drivers_ksi"])

    def model_fn(p):
        return (dlm.LocalLevel(pt.exp(p[0])) + dlm.Seasonal(12, pt.exp(p[1]))
                + dlm.Regression(df[["log_petrol_price", "seatbelt_law"]])
                + dlm.Irregular(pt.exp(p[2])))

    start = np.log([0.01, 0.001, 0.05])
    lbfgs = fit_mle(model_fn, y, start)
    bfgs = fit_mle(model_fn, y, start, method="BFGS")
    assert lbfgs.converged and bfgs.converged
    assert lbfgs.log_likelihood == pytest.approx(bfgs.log_likelihood, abs=1e-7)
    assert np.exp(lbfgs.params[1]) < 1e-6  # the seasonal standard deviation at its boundary


def test_compiled_functions_are_reused_only_for_the_same_computation():
    """fit_mle keeps compiled functions by graph key: the same model structure on the same
    data reuses one; other data or another constant in the model must not (each fit is
    checked against the NumPy engine at its optimum)."""
    from pymc_dlm.estimation import mle

    y = dlm.datasets.load_nile()

    def fn(scale):
        return lambda p: dlm.LocalLevel(pt.exp(p[0]), scale * pt.exp(p[1]))

    mle._FUNCTIONS.clear()
    first = fit_mle(fn(1.0), y, [3.0, 4.0])
    assert len(mle._FUNCTIONS) == 1
    again = fit_mle(fn(1.0), y, [2.0, 5.0])
    assert len(mle._FUNCTIONS) == 1  # reused
    assert again.log_likelihood == pytest.approx(first.log_likelihood, abs=1e-6)
    other_data = fit_mle(fn(1.0), y * 2.0, [3.0, 4.0])
    other_const = fit_mle(fn(2.0), y, [3.0, 4.0])
    assert len(mle._FUNCTIONS) == 3
    for res, data in ((other_data, y * 2.0), (other_const, y)):
        assert res.log_likelihood == pytest.approx(dlm.loglike(res.model, data), rel=1e-10)
    # scaling y by 2 scales the variances by 4 and lowers the llf by n log 2
    assert other_data.log_likelihood == pytest.approx(
        first.log_likelihood - 99 * np.log(2.0), abs=1e-4)
    assert other_const.log_likelihood == pytest.approx(first.log_likelihood, abs=1e-4)
