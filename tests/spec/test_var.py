"""VAR(p) in companion form; impulse responses and the variance decomposition.

References: statsmodels 0.15 ``VARMAX(order=(2, 0), trend="n")`` log-likelihood and
impulse responses at fixed parameters (for the VARMA, ``order=(1, 1)`` and ``(2, 1)``) (its own stationary initialisation; agreement to
rtol 1e-10), and statsmodels' ``VAR`` (OLS, independent moving-average code) orthogonalised
moving-average matrices and FEVD at its estimates (to 1e-12).  Data: US real GDP,
consumption and investment growth (bundled ``load_us_macro``), demeaned.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.api import VAR as SMVAR
from statsmodels.tsa.statespace.varmax import VARMAX

import pymc_dlm as dlm

A = np.array([
    [[0.3, 0.1, 0.02], [0.1, 0.2, 0.01], [0.5, 0.3, 0.1]],
    [[0.1, 0.0, 0.01], [0.05, 0.1, 0.0], [0.2, 0.1, -0.1]],
])
S = np.array([[0.8, 0.3, 1.5], [0.3, 0.5, 0.8], [1.5, 0.8, 9.0]])


@pytest.fixture(scope="module")
def growth():
    macro = dlm.datasets.load_us_macro()
    y = 100 * np.log(macro[["realgdp", "realcons", "realinv"]]).diff().dropna().to_numpy()
    return y - y.mean(axis=0)


@pytest.fixture(scope="module")
def varmax(growth):
    """statsmodels VARMAX smoothed at (A, S): params are the equations' lag coefficients
    (L1.y1.y1, L1.y2.y1, ..., L2.y3.y1, then y2's...) and the lower Cholesky factor."""
    L = np.linalg.cholesky(S)
    params = np.r_[np.concatenate([A[lag][i] for i in range(3) for lag in range(2)]),
                   L[np.tril_indices(3)]]
    mod = VARMAX(growth, order=(2, 0), trend="n")
    return mod.loglike(params), mod.smooth(params)


class TestVAR:
    def test_companion_form(self):
        mod = dlm.VAR(A, S, names=["gdp", "cons", "inv"])
        assert (mod.p, mod.m, mod.r) == (3, 6, 3)
        np.testing.assert_array_equal(mod.T[:3], np.hstack([A[0], A[1]]))
        np.testing.assert_array_equal(mod.T[3:], np.hstack([np.eye(3), np.zeros((3, 3))]))
        np.testing.assert_array_equal(mod.Z, np.hstack([np.eye(3), np.zeros((3, 3))]))
        np.testing.assert_array_equal(mod.Q, S)
        assert mod.state_names[3:] == ("gdp.L1", "cons.L1", "inv.L1")
        assert all(mod.stationary)

    def test_loglike_matches_varmax(self, growth, varmax):
        assert dlm.loglike(dlm.VAR(A, S), growth) == pytest.approx(varmax[0], rel=1e-10)

    @pytest.mark.parametrize("orthogonalized", [False, True])
    def test_impulse_responses_match_varmax(self, varmax, orthogonalized):
        ours = dlm.impulse_responses(dlm.VAR(A, S), 8, orthogonalized=orthogonalized)
        for j in range(3):
            ref = varmax[1].impulse_responses(8, impulse=j, orthogonalized=orthogonalized)
            np.testing.assert_allclose(ours.observed[:, :, j], np.asarray(ref), atol=1e-12)
        # the first k states are the series themselves
        np.testing.assert_array_equal(ours.states[:, :3], ours.observed)

    def test_fevd_matches_statsmodels_var(self, growth):
        fit = SMVAR(growth).fit(2, trend="n")
        mod = dlm.VAR(fit.coefs, fit.sigma_u)
        np.testing.assert_allclose(dlm.impulse_responses(mod, 6, orthogonalized=True).observed,
                                   fit.orth_ma_rep(6), atol=1e-12)
        dec = dlm.fevd(mod, 8)
        np.testing.assert_allclose(dec, np.moveaxis(fit.fevd(8).decomp, 0, 1), atol=1e-12)
        np.testing.assert_allclose(dec.sum(axis=2), 1.0, rtol=1e-14)

    def test_symbolic_coefficients(self):
        import pytensor.tensor as pt

        from pymc_dlm.symbolic import system_tensors

        a = pt.tensor3("a", shape=(2, 3, 3))
        sys = system_tensors(dlm.VAR(a, S))
        np.testing.assert_allclose(sys.T.eval({a: A}), dlm.VAR(A, S).T)

    @pytest.mark.parametrize(("coefs", "cov", "match"), [
        (np.zeros((2, 3)), np.eye(3), r"coefs must be \(p, k, k\)"),
        (np.eye(2)[None], np.eye(2), "not describe a stationary VAR"),
        (np.zeros((1, 2, 2)), np.eye(3), "Q must be"),
        (np.zeros((1, 2, 2)), [[1.0, 2.0], [2.0, 1.0]], "positive semi-definite"),
    ])
    def test_bad_input(self, coefs, cov, match):
        with pytest.raises(ValueError, match=match):
            dlm.VAR(coefs, cov)


MA = np.array([[[0.2, -0.1, 0.0], [0.1, 0.1, 0.02], [0.3, -0.2, 0.3]]])


@pytest.fixture(scope="module", params=[1, 2], ids=["varma11", "varma21"])
def varma(request, growth):
    """(our model, statsmodels VARMAX(p, 1) smoothed at the same parameters): params are
    each equation's AR coefficients by lag, then each equation's MA coefficients
    (``L1.e(y1).y1``, ...), then the lower Cholesky factor of S."""
    import warnings

    p = request.param
    L = np.linalg.cholesky(S)
    params = np.r_[np.concatenate([A[lag][i] for i in range(3) for lag in range(p)]),
                   MA[0].ravel(), L[np.tril_indices(3)]]
    with warnings.catch_warnings():  # "VARMA(p,q) models is not generically identified"
        warnings.simplefilter("ignore")
        sm = VARMAX(growth, order=(p, 1), trend="n").smooth(params)
    return dlm.VAR(A[:p], S, ma=MA, names=["gdp", "cons", "inv"]), sm


class TestVARMA:
    def test_loglike_matches_varmax(self, growth, varma):
        mod, sm = varma
        assert dlm.loglike(mod, growth) == pytest.approx(sm.llf, rel=1e-10)

    def test_impulse_responses_match_varmax(self, varma):
        mod, sm = varma
        ours = dlm.impulse_responses(mod, 8, orthogonalized=True)
        for j in range(3):
            ref = sm.impulse_responses(8, impulse=j, orthogonalized=True)
            np.testing.assert_allclose(ours.observed[:, :, j], np.asarray(ref), atol=1e-12)

    def test_state_names_and_shapes(self, varma):
        mod = varma[0]
        p = mod.m // 3 - 1
        lags = ["gdp.L1", "cons.L1", "inv.L1"] if p == 2 else []
        assert mod.state_names == ("gdp", "cons", "inv", *lags, "e.gdp", "e.cons", "e.inv")
        assert mod.r == 3 and mod.components[0].description == f"VARMA({p}, 1) of 3 series"

    def test_symbolic_ma(self):
        import pytensor.tensor as pt

        from pymc_dlm.symbolic import system_tensors

        m = pt.tensor3("m", shape=(1, 3, 3))
        sys = system_tensors(dlm.VAR(A, S, ma=m))
        np.testing.assert_allclose(sys.T.eval({m: MA}), dlm.VAR(A, S, ma=MA).T)

    def test_ma_of_another_dimension(self):
        with pytest.raises(ValueError, match=r"ma must be \(q, k, k\) with k = 3"):
            dlm.VAR(A, S, ma=np.zeros((1, 2, 2)))


class TestImpulseResponseErrors:
    def test_time_varying_model(self):
        with pytest.raises(ValueError, match="time-varying"):
            dlm.impulse_responses(dlm.Regression(np.ones((5, 1))), 3)

    def test_singular_Q_orthogonalised(self):
        with pytest.raises(ValueError, match="positive definite Q"):
            dlm.impulse_responses(dlm.LocalLinearTrend(1.0, 0.0), 3, orthogonalized=True)

    def test_steps(self):
        with pytest.raises(ValueError, match="steps must be an integer >= 0"):
            dlm.impulse_responses(dlm.VAR(A, S), -1)
        with pytest.raises(ValueError, match="steps must be >= 1"):
            dlm.fevd(dlm.VAR(A, S), 0)

    def test_local_level_responses_are_permanent(self):
        irf = dlm.impulse_responses(dlm.LocalLevel(2.0, 1.0), 3, orthogonalized=True)
        np.testing.assert_array_equal(irf.observed[:, 0, 0], [2.0] * 4)
