"""SUTSE models: k series sharing a component's structure with full disturbance covariances.

References: with zero correlations the likelihood is the sum of the univariate ones (exact);
with correlations, statsmodels' filter on the same matrices with its exact diffuse
initialisation (``statsmodels_smooth`` in conftest, rtol 1e-8 as in the filter reference
tests); the EM algorithm's log-likelihood never decreases and it estimates the covariance
blocks in full.
"""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from conftest import statsmodels_smooth
from pymc_dlm.estimation import fit_em


@pytest.fixture(scope="module")
def y():
    """Log UK drivers killed or seriously injured and the log petrol price, 1969-1976."""
    d = dlm.datasets.load_uk_drivers().iloc[:96]
    return np.column_stack([np.log(d["drivers_ksi"]), d["log_petrol_price"]])


def test_uncorrelated_is_the_sum_of_univariate_models(y):
    mod = dlm.SUTSE(dlm.LocalLinearTrend(1.0, 1.0), [np.diag([0.02, 0.01]), np.diag([1e-4, 4e-4])],
                    np.diag([0.01, 0.003]), series=["a", "b"])
    ref = (dlm.loglike(dlm.LocalLinearTrend(0.02**0.5, 1e-2, 0.1), y[:, 0])
           + dlm.loglike(dlm.LocalLinearTrend(0.1, 0.02, 0.003**0.5), y[:, 1]))
    assert dlm.loglike(mod, y) == pytest.approx(ref, rel=1e-12)
    assert mod.state_names == ("level.a", "level.b", "slope.a", "slope.b")
    np.testing.assert_array_equal(mod.T, np.kron([[1, 1], [0, 1]], np.eye(2)))


def test_correlated_local_level_matches_statsmodels(y):
    mod = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.02, 0.012], [0.012, 0.01]]],
                    [[0.01, -0.002], [-0.002, 0.004]], series=["a", "b"])
    assert dlm.loglike(mod, y) == pytest.approx(statsmodels_smooth(mod, y).llf, rel=1e-8)


def test_rank_one_level_is_a_common_level(y):
    """Sigma_level = l l' (rank one): the two levels move together."""
    lam = np.array([[0.1], [0.06]])
    mod = dlm.SUTSE(dlm.LocalLevel(1.0), [lam @ lam.T], np.diag([0.01, 0.004]),
                    series=["a", "b"])
    assert dlm.loglike(mod, y) == pytest.approx(statsmodels_smooth(mod, y).llf, rel=1e-8)


def test_em_estimates_full_blocks(y):
    start = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.01, 0.001], [0.001, 0.01]]],
                      [[0.01, 0.001], [0.001, 0.01]], series=["a", "b"])
    em = fit_em(y, start, max_iter=30, tol=1e-10)
    assert np.diff(em.log_likelihood_history).min() > -1e-9
    Q, H = em.model.Q, em.model.H
    assert Q[0, 1] != 0.001 and H[0, 1] != 0.001
    np.testing.assert_allclose(Q, Q.T)
    assert np.all(np.linalg.eigvalsh(Q) > 0) and np.all(np.linalg.eigvalsh(H) > 0)


@pytest.mark.parametrize(("args", "match"), [
    ((dlm.LocalLevel(1.0), []), "covs must hold r = 1"),
    ((dlm.LocalLevel(1.0), [np.eye(3)]), r"covs\[0\] must be \(k, k\) = \(2, 2\)"),
    ((dlm.Regression(np.ones((5, 1))), [np.eye(2)]), "constant, numeric Z, T and R"),
    ((dlm.VAR(np.zeros((1, 2, 2)), np.eye(2)), [np.eye(2)] * 2), "univariate"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        dlm.SUTSE(*args, series=["a", "b"])


def dense_em_local_level(y, H, Q, n_iter):
    """EM for a k-series local level with full H and Q and a diffuse (flat-prior) level, by
    dense Gaussian conditioning in information form: the states alpha_1..alpha_n have the
    precision Lambda = I_n (x) H^-1 + D'(I (x) Q^-1)D (D the first differences) and
    alpha | y ~ N(Lambda^-1 b, Lambda^-1), b = (H^-1 y_t)_t; the M-step is
    Q = sum E[(alpha_{t+1} - alpha_t)(.)'|y] / (n - 1), H = sum E[(y_t - alpha_t)(.)'|y] / n.
    The log-likelihood is log of the integral over alpha_1 under the flat prior, which for
    Z = I is the diffuse log-likelihood in KFAS's convention.  Returns the trace, H, Q."""
    n, k = y.shape
    D = np.kron(np.eye(n, k=1)[: n - 1] - np.eye(n)[: n - 1], np.eye(k))
    trace = []
    for it in range(n_iter + 1):
        Hi, Qi = np.linalg.inv(H), np.linalg.inv(Q)
        Lam = np.kron(np.eye(n), Hi) + D.T @ np.kron(np.eye(n - 1), Qi) @ D
        b = (y @ Hi).ravel()
        Lc = np.linalg.cholesky(Lam)
        mean = np.linalg.solve(Lam, b)
        quad = np.einsum("ti,ij,tj->", y, Hi, y) - b @ mean
        trace.append(-0.5 * ((n - 1) * k * np.log(2 * np.pi) + n * np.linalg.slogdet(H)[1]
                             + (n - 1) * np.linalg.slogdet(Q)[1]
                             + 2 * np.log(np.diag(Lc)).sum() + quad))
        if it == n_iter:
            break
        cov = np.linalg.inv(Lam)
        mu = mean.reshape(n, k)
        blk = lambda s, t: cov[s * k:(s + 1) * k, t * k:(t + 1) * k]  # noqa: E731
        SQ = sum(np.outer(mu[t + 1] - mu[t], mu[t + 1] - mu[t]) + blk(t + 1, t + 1)
                 - blk(t + 1, t) - blk(t, t + 1) + blk(t, t) for t in range(n - 1))
        SH = sum(np.outer(y[t] - mu[t], y[t] - mu[t]) + blk(t, t) for t in range(n))
        Q, H = SQ / (n - 1), SH / n
    return np.array(trace), H, Q


def test_em_equals_dense_gaussian_em(y):
    """SUTSE local level, 2 series, n = 30, full H and Q: 8 EM iterations against the dense
    EM above, the log-likelihood trace to 1e-8 and the estimates to 1e-10."""
    y30 = y[:30]
    H0, Q0 = np.array([[0.01, 0.001], [0.001, 0.01]]), np.array([[0.02, 0.005], [0.005, 0.01]])
    start = dlm.SUTSE(dlm.LocalLevel(1.0), [Q0], H0, series=["a", "b"])
    ref, H, Q = dense_em_local_level(y30, H0, Q0, 8)
    em = fit_em(y30, start, max_iter=8, tol=0.0, gtol=0.0, convention="kfas", accelerate=None)
    assert em.n_iter == em.n_em_steps == 8
    np.testing.assert_allclose(em.log_likelihood_history, ref, rtol=0, atol=1e-8)
    assert ref[-1] - ref[0] > 1.0
    np.testing.assert_allclose(em.model.H, H, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(em.model.Q, Q, rtol=1e-10, atol=1e-13)
    assert set(em.params) == {"cov(obs[0], obs[1])", "cov(level.a, level.b)"}
