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


# ---------------------------------------------------------------------------------------------
# Common components in the loadings form (Harvey and Koopman 1997; Harvey 1989, section 8.5)
# ---------------------------------------------------------------------------------------------

MACRO = ["gdp", "cons", "inv"]


@pytest.fixture(scope="module")
def macro_levels():
    """100 log US real GDP, consumption and investment (1959Q1-2009Q3), five entries and one
    whole quarter missing."""
    macro = dlm.datasets.load_us_macro()
    y = 100 * np.log(macro[["realgdp", "realcons", "realinv"]].to_numpy())
    y[[5, 40, 41, 100], [0, 1, 2, 1]] = np.nan
    y[60] = np.nan
    return y


@pytest.mark.parametrize("trend", [False, True], ids=["level", "trend"])
def test_loadings_form_is_the_rank_deficient_sutse(macro_levels, trend):
    """(a) y = Theta mu + mubar + e with D_j against SUTSE with Sigma_j = Theta D_j Theta':
    one model (the states differ by an invertible map of determinant 1, so the exact diffuse
    likelihoods agree as well); rtol 1e-10 (two filters on different state vectors)."""
    H = np.array([[0.3, 0.1, 0.0], [0.1, 0.4, 0.2], [0.0, 0.2, 2.0]])
    if trend:
        comp = dlm.LocalLinearTrend(1.0, 1.0)
        theta = np.array([[1.0, 0.0], [0.9, 1.0], [1.7, -0.4]])
        D = [np.diag([0.5, 0.2]), np.diag([0.01, 0.002])]
    else:
        comp, theta, D = dlm.LocalLevel(1.0), np.array([[1.0], [0.9], [1.7]]), [np.array([[0.8]])]
    common = dlm.SUTSE(comp, D, H, series=MACRO, loadings=theta)
    full = dlm.SUTSE(comp, [theta @ d @ theta.T for d in D], H, series=MACRO)
    assert np.linalg.matrix_rank(full.Q) == len(D) * theta.shape[1] < full.r
    for convention in ("statsmodels", "kfas"):
        assert dlm.loglike(common, macro_levels, convention=convention) == pytest.approx(
            dlm.loglike(full, macro_levels, convention=convention), rel=1e-10)
    if trend:
        assert common.state_names == ("level.common0", "level.common1", "slope.common0",
                                      "slope.common1", "level.offset.inv", "slope.offset.inv")
        assert common.m == full.m and common.r == 4


def dense_loglike(model, y):
    """log N(vec y_obs; mean, cov) of a time-invariant model with a proper start (a1, P1): the
    states are alpha = G (alpha_1, eta_1..eta_{n-1}), y_t = Z alpha_t + e_t (closed form)."""
    n, p = y.shape
    m, r = model.m, model.r
    Z, T, R, Q, H = model.Z, model.T, model.R, model.Q, model.H
    G = np.zeros((n * m, m + (n - 1) * r))
    G[:m, :m] = np.eye(m)
    for t in range(1, n):
        G[t * m:(t + 1) * m] = T @ G[(t - 1) * m:t * m]
        G[t * m:(t + 1) * m, m + (t - 1) * r:m + t * r] += R
    V0 = np.zeros((m + (n - 1) * r,) * 2)
    V0[:m, :m] = model.P1
    for t in range(n - 1):
        V0[m + t * r:m + (t + 1) * r, m + t * r:m + (t + 1) * r] = Q
    Zn = np.kron(np.eye(n), Z)
    mean = Zn @ G[:, :m] @ model.a1
    cov = Zn @ G @ V0 @ G.T @ Zn.T + np.kron(np.eye(n), H)
    obs = ~np.isnan(y.ravel())
    from scipy.stats import multivariate_normal
    return multivariate_normal(mean[obs], cov[np.ix_(obs, obs)]).logpdf(y.ravel()[obs])


def test_loadings_form_equals_dense_gaussian_likelihood():
    """(b) Two common trends of three series with a proper start, n = 12 simulated, two
    entries missing: the filter's log-likelihood against the dense Gaussian density of the
    stacked observations, rtol 1e-10."""
    rng = np.random.default_rng(3)
    theta = [[1.0, 0.0], [0.6, 1.0], [-1.2, 0.5]]
    mod = dlm.SUTSE(dlm.LocalLinearTrend(1.0, 1.0), [np.diag([0.4, 0.3]), np.diag([0.05, 0.02])],
                    np.diag([0.2, 0.3, 0.5]), series=MACRO, loadings=theta)
    A = rng.normal(size=(mod.m, mod.m))
    proper = mod.replace(a1=rng.normal(size=mod.m), P1=A @ A.T + np.eye(mod.m),
                         diffuse=[False] * mod.m)
    y = np.stack([np.asarray(proper.Z) @ rng.normal(size=mod.m) for _ in range(12)])
    y += np.cumsum(rng.normal(size=y.shape), axis=0)
    y[3, 1] = y[7, 0] = np.nan
    assert dlm.loglike(proper, y) == pytest.approx(dense_loglike(proper, y), rel=1e-10)


@pytest.fixture(scope="module")
def common_level_fits():
    """(c) US GDP, consumption and investment growth with one common stochastic level, fitted
    in both forms: loadings (Theta_2, Theta_3, log d, log H_ii) and rank-one
    Sigma = l l' (l free, no identification), two parameterisations of one model."""
    import pytensor.tensor as pt
    from pymc_dlm.estimation import fit_mle

    macro = dlm.datasets.load_us_macro()
    y = 100 * np.log(macro[["realgdp", "realcons", "realinv"]]).diff().dropna().to_numpy()

    def H(p):
        return pt.diag(pt.exp(pt.stack([p[3], p[4], p[5]])))

    def loadings(p):
        return dlm.SUTSE(dlm.LocalLevel(1.0), [[[pt.exp(p[2])]]], H(p), series=MACRO,
                         loadings=[[1.0], [p[0]], [p[1]]])

    def rank_one(p):
        lam = pt.stack([p[0], p[1], p[2]])
        return dlm.SUTSE(dlm.LocalLevel(1.0), [pt.outer(lam, lam)], H(p), series=MACRO)

    return (y, fit_mle(loadings, y, [1.0, 1.0, -3.0, 0.0, 0.0, 2.0]),
            fit_mle(rank_one, y, [0.1, 0.1, 0.1, 0.0, 0.0, 2.0]))


def test_loadings_form_mle_equals_rank_deficient_mle(common_level_fits):
    """The two maxima agree to 1e-4 (each optimiser stops at its own tolerance), and so do
    the implied level covariances Theta d Theta' = l l'."""
    y, common, rank_one = common_level_fits
    assert common.converged and rank_one.converged
    assert np.isfinite(common.log_likelihood)
    assert common.log_likelihood == pytest.approx(rank_one.log_likelihood, abs=1e-4)
    th = np.r_[1.0, common.params[:2]]
    lam = rank_one.params[:3]
    np.testing.assert_allclose(np.outer(th, th) * np.exp(common.params[2]), np.outer(lam, lam),
                               rtol=1e-3)
    # the PyTensor likelihood that fit_mle maximised equals the NumPy filter's
    assert dlm.loglike(common.model, y) == pytest.approx(common.log_likelihood, rel=1e-10)
    assert common.model.state_names == ("level.common0", "level.offset.cons", "level.offset.inv")


def test_em_with_fixed_loadings_reaches_the_mle(common_level_fits):
    """fit_em estimates D and H with Theta held at the MLE's: the same maximum (EM stops at
    its own tolerance, 1e-5)."""
    y, common, _ = common_level_fits
    th = [[1.0], [common.params[0]], [common.params[1]]]
    start = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.5]]], np.diag([0.5, 0.5, 5.0]), series=MACRO,
                      loadings=th)
    em = fit_em(y, start, max_iter=500)
    assert em.log_likelihood == pytest.approx(common.log_likelihood, abs=1e-5)
    assert set(em.params) == {"sigma2.level", "sigma2.obs[0]", "sigma2.obs[1]", "sigma2.obs[2]"}


def test_loadings_as_pymc_variables(macro_levels):
    """Theta's free entries as PyMC random variables: the DLM's log-probability (fused Op,
    diffuse period planned from a prior draw of Z) equals the NumPy filter's log-likelihood
    at the same values, rtol 1e-10 (the engines' cross-test tolerance)."""
    import pymc as pm

    y = macro_levels[:40]
    H = np.diag([0.3, 0.4, 2.0])
    with pm.Model() as m:
        th = pm.Normal("th", 1.0, 0.5, shape=2)
        dlm.DLM("y", dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.8]]], H, series=MACRO,
                               loadings=[[1.0], [th[0]], [th[1]]]), observed=y)
    logp = m.compile_logp(vars=[m["y"]])
    for value in ([0.9, 1.7], [0.5, -0.3]):
        ref = dlm.loglike(dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.8]]], H, series=MACRO,
                                    loadings=[[1.0], [value[0]], [value[1]]]), y)
        assert float(logp({"th": np.array(value)})) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(covs=[np.eye(1)], loadings=[[1.0, 0.0], [0.5, 1.0]]),
     r"covs\[0\] must be \(r, r\) = \(2, 2\)"),
    (dict(covs=[np.eye(1)], loadings=[[1.0], [0.5], [0.2]]),
     r"loadings must be \(k, r\) with k = 2"),
    (dict(covs=[np.eye(1)], loadings=[[2.0], [0.5]]),
     r"unit lower triangular .*loadings\[0, 0\] must be the number 1.0; got 2.0"),
    (dict(covs=[np.eye(2)], loadings=[[1.0, 0.3], [0.5, 1.0]]),
     r"loadings\[0, 1\] must be the number 0.0; got 0.3"),
])
def test_bad_loadings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dlm.SUTSE(dlm.LocalLevel(1.0), kwargs["covs"], series=["a", "b"],
                  loadings=kwargs["loadings"])


def test_symbolic_loadings_must_fix_the_top_block():
    import pytensor.tensor as pt
    with pytest.raises(ValueError,
                       match=r"loadings\[0, 0\] must be the number 1.0; got a symbolic"):
        dlm.SUTSE(dlm.LocalLevel(1.0), [np.eye(1)], series=["a", "b"],
                  loadings=pt.matrix("theta", shape=(2, 1)))
