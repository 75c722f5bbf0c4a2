"""fit_em against dense Gaussian conditioning (the M-step), statsmodels and fit_mle (the optimum)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import statsmodels.api as sm

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_em, fit_mle
from pymc_dlm.numeric import system_arrays
from pymc_dlm.numeric.assemble import at_time

from conftest import stacked_states
from reference_models import bivariate


def dense_states_and_noise(model, y):
    """Posterior mean and covariance of (alpha_1..alpha_n, eps_1..eps_n) given the observed
    entries of y, by stacking everything into one Gaussian vector (known initialisation)."""
    s = system_arrays(model)
    y = np.asarray(y, float).reshape(len(y), -1)
    n, p = y.shape
    m, r = model.m, model.r
    # xi = (alpha_1 - a1, eta_1..eta_{n-1}, eps_1..eps_n); rows: alpha_1..alpha_n, eps_1..eps_n
    A_states, mu_states, cov_xi = stacked_states(model, n, extra=n * p)
    A = np.vstack([A_states, np.zeros((n * p, cov_xi.shape[0]))])
    mu = np.concatenate([mu_states, np.zeros(n * p)])
    e0 = m + (n - 1) * r
    for t in range(n):
        A[n * m + t * p:n * m + (t + 1) * p, e0 + t * p:e0 + (t + 1) * p] = np.eye(p)
        cov_xi[e0 + t * p:e0 + (t + 1) * p, e0 + t * p:e0 + (t + 1) * p] = at_time(s.H, t)
    # y = Z alpha + d + eps
    G = np.zeros((n * p, n * m + n * p))
    d = np.zeros(n * p)
    for t in range(n):
        G[t * p:(t + 1) * p, t * m:(t + 1) * m] = at_time(s.Z, t)
        G[t * p:(t + 1) * p, n * m + t * p:n * m + (t + 1) * p] = np.eye(p)
        d[t * p:(t + 1) * p] = at_time(s.d, t)
    cov = A @ cov_xi @ A.T
    obs = ~np.isnan(y.ravel())
    Go = G[obs]
    Syy = Go @ cov @ Go.T
    gain = np.linalg.solve(Syy, Go @ cov).T
    mean = mu + gain @ (y.ravel()[obs] - Go @ mu - d[obs])
    return mean, cov - gain @ Go @ cov


def dense_m_step(model, y, lag_one=True):
    """Q and H maximising the expected complete-data log-likelihood, from dense moments.

    E(eta_t eta_t'|y) = R^+ E[(alpha_{t+1} - T alpha_t - c)(...)'|y] R^+' needs
    Cov(alpha_t, alpha_{t+1}|y); ``lag_one=False`` is the common mistake that drops it.
    """
    s = system_arrays(model)
    y = np.asarray(y, float).reshape(len(y), -1)
    n, p = y.shape
    m = model.m
    mean, cov = dense_states_and_noise(model, y)
    Rp = np.linalg.pinv(at_time(s.R, 0))
    T, c = at_time(s.T, 0), at_time(s.c, 0)
    SQ = 0.0
    for t in range(n - 1):
        i, j = slice(t * m, (t + 1) * m), slice((t + 1) * m, (t + 2) * m)
        e = mean[j] - T @ mean[i] - c
        C = cov[i, j] if lag_one else np.zeros((m, m))
        M = np.outer(e, e) + cov[j, j] - T @ C - C.T @ T.T + T @ cov[i, i] @ T.T
        SQ = SQ + Rp @ M @ Rp.T
    SH = 0.0
    for t in range(n):
        k = slice(n * m + t * p, n * m + (t + 1) * p)
        SH = SH + np.outer(mean[k], mean[k]) + cov[k, k]
    return SQ / (n - 1), SH / n


def test_m_step_equals_dense_conditioning_with_lag_one_covariances():
    """One EM iteration on the bivariate model (full H, missing entries, known init) gives the
    closed-form maximiser computed from the dense joint posterior of states and noise."""
    mod, y = bivariate()
    mod = mod.replace(P1=np.diag([2.0, 0.5 / (1 - 0.36), 3.0]), diffuse=[False] * 3)
    res = fit_em(y, mod, max_iter=1, tol=0.0)
    Q_ref, H_ref = dense_m_step(mod, y)
    np.testing.assert_allclose(np.diag(res.model.Q), np.diag(Q_ref), rtol=1e-10)
    np.testing.assert_array_equal(res.model.Q - np.diag(np.diag(res.model.Q)), 0.0)
    np.testing.assert_allclose(res.model.H, H_ref, rtol=1e-10)
    # the shortcut without Cov(alpha_t, alpha_{t+1}|y) is a different (inflated) Q
    Q_bad, _ = dense_m_step(mod, y, lag_one=False)
    assert np.all(np.diag(Q_bad) > np.diag(res.model.Q) * 1.05)


def test_m_step_diagonal_h_uses_observed_entries_only():
    """Diagonal H with missing rows: H_ii = mean over observed t of E(eps_ti^2|y)."""
    mod, y = bivariate()
    mod = mod.replace(H=np.diag([1.0, 0.5]), P1=np.diag([2.0, 0.78125, 3.0]), diffuse=[False] * 3)
    res = fit_em(y, mod, max_iter=1, tol=0.0)
    mean, cov = dense_states_and_noise(mod, y)
    n, m = y.shape[0], mod.m
    for i in range(2):
        ts = np.flatnonzero(~np.isnan(y[:, i]))
        k = n * m + 2 * ts + i
        ref = np.mean(mean[k] ** 2 + cov[k, k])
        assert res.model.H[i, i] == pytest.approx(ref, rel=1e-10)
    assert res.model.H[0, 1] == 0.0


def test_nile_em_reaches_the_mle_and_never_decreases():
    """D&K (2012, section 2.10) estimates; statsmodels' optimum log-likelihood within 1e-3."""
    y = dlm.datasets.load_nile()
    res = fit_em(y, dlm.LocalLevel(10.0, 10.0), max_iter=2000, tol=1e-8)
    assert res.converged and res.n_iter < 2000
    np.testing.assert_allclose([res.params["sigma2.obs"], res.params["sigma2.level"]],
                               [15099.0, 1469.1], rtol=2e-4)
    ref = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True).fit(disp=0)
    assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-3)
    h = res.log_likelihood_history
    assert h.shape == (res.n_iter + 1,)
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))
    assert h[-1] - h[0] > 10.0
    assert res.log_likelihood == pytest.approx(dlm.loglike(res.model, y), rel=1e-12)
    assert res.df_model == 3 and res.aic == pytest.approx(ref.aic, abs=2e-3)
    assert "sigma2.level" in res.summary()


def test_default_stop_is_honest():
    """100 iterations do not reach a relative step of 1e-6 on the Nile: converged is False."""
    res = fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(10.0, 10.0))
    assert res.n_iter == 100 and not res.converged


def test_structure_is_kept_zeros_and_tied_variances():
    """A zero slope variance stays zero; the trigonometric seasonal's disturbances share one
    variance; the log-likelihood still never decreases."""
    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
    mod = dlm.LocalLinearTrend(0.05, 0.0, 0.05) + dlm.Seasonal(12, 0.05, form="trigonometric")
    res = fit_em(y, mod, max_iter=30, tol=0.0)
    Q = res.model.Q
    assert Q[1, 1] == 0.0
    seas = np.diag(Q)[2:]
    assert np.all(seas == seas[0]) and seas[0] != 0.0025
    np.testing.assert_array_equal(Q - np.diag(np.diag(Q)), 0.0)
    assert set(res.params) == {"sigma2.obs", "sigma2.level", "sigma2.seasonal"}
    h = res.log_likelihood_history
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_two_series_with_missing_entries_em_matches_mle():
    """The bivariate model (full H, missing entries, diffuse and known states; the third
    state's variance is a structural zero): EM's optimum equals fit_mle's (H by its Cholesky
    factor, Q diagonal) within 1e-3 in log-likelihood."""
    mod, y = bivariate()
    mod = mod.replace(Q=np.diag([0.2, 0.5, 0.0]))
    em = fit_em(y, mod, max_iter=2000, tol=1e-8)
    assert em.converged and em.model.Q[2, 2] == 0.0

    def model_fn(p):
        L = pt.stack([pt.stack([pt.exp(p[0]), 0.0]), pt.stack([p[1], pt.exp(p[2])])])
        return mod.replace(H=L @ L.T, Q=pt.diag(pt.concatenate([pt.exp(p[3:5]), pt.zeros(1)])))

    mle = fit_mle(model_fn, y, np.zeros(5))
    assert mle.converged
    assert em.log_likelihood == pytest.approx(mle.log_likelihood, abs=1e-3)
    np.testing.assert_allclose(em.model.H, mle.model.H, rtol=1e-3)
    np.testing.assert_allclose(em.model.Q, mle.model.Q, rtol=1e-3)
    h = em.log_likelihood_history
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_initial_state_mean_and_variance():
    """a1 <- E(alpha_1|y), P1 <- Var(alpha_1|y) on a known-initialised level (dense check)."""
    y = dlm.datasets.load_nile().to_numpy()[:30]
    mod = dlm.LocalLevel(38.0, 123.0).replace(a1=[1000.0], P1=[[1e4]], diffuse=[False])
    res = fit_em(y, mod, max_iter=1, tol=0.0, estimate=("H", "Q", "a1", "P1"))
    mean, cov = dense_states_and_noise(mod, y)
    assert res.model.a1[0] == pytest.approx(mean[0], rel=1e-10)
    assert res.model.P1[0, 0] == pytest.approx(cov[0, 0], rel=1e-10)
    longer = fit_em(y, mod, max_iter=50, tol=0.0, estimate=("H", "Q", "a1"))
    assert np.all(np.diff(longer.log_likelihood_history) >= -1e-10 * 200)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(estimate=("H", "R")), ValueError, "estimate"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(estimate=("a1",)), ValueError, "known initial"),
])
def test_bad_options(kwargs, err, match):
    with pytest.raises(err, match=match):
        fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(30.0, 100.0), **kwargs)


def test_bad_models():
    y = dlm.datasets.load_nile()
    with pytest.raises(ValueError, match="no free variance"):
        fit_em(y, dlm.LocalLevel(0.0, 0.0))
    with pytest.raises(TypeError, match="numeric initial_model"):
        fit_em(y, dlm.LocalLevel(pt.dscalar("s"), 1.0))
    with pytest.raises(TypeError, match="StateSpaceModel"):
        fit_em(y, "level")
    tv = dlm.LocalLevel(1.0, 1.0).replace(Q=np.ones((100, 1, 1)))
    with pytest.raises(ValueError, match="time-varying Q"):
        fit_em(y, tv)


# ------------------------------------------------------------------ honest convergence (issue 23)
@pytest.fixture(scope="module")
def nile_max():
    """statsmodels' maximum of the Nile local level (exact diffuse): -633.46456."""
    y = dlm.datasets.load_nile().to_numpy()
    return sm.tsa.UnobservedComponents(y, "llevel", use_exact_diffuse=True).fit(disp=0).llf


@pytest.mark.parametrize("accelerate", [None, "squarem"])
@pytest.mark.parametrize("start", [(38.0, 0.1), (38.0, 1.0), (0.1, 123.0), (1e-3, 1e-3),
                                   (1e4, 1e4)])
def test_small_or_large_starts_reach_the_maximum(start, accelerate, nile_max):
    """The traps of issue 23: from LocalLevel(38, 0.1) plain EM stopped after 3 iterations at
    -648.27 and called it converged; from (38, 1) and (0.1, 123) it ran 5000 iterations to the
    wrong point.  EM steps near a variance of zero are tiny; the score (through the jump
    steps) finds the maximum."""
    y = dlm.datasets.load_nile()
    res = fit_em(y, dlm.LocalLevel(*start), max_iter=5000, accelerate=accelerate)
    assert res.converged, res.message
    assert res.log_likelihood == pytest.approx(nile_max, abs=1e-4)
    h = res.log_likelihood_history
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))
    assert res.max_score <= 1e-6 * abs(res.log_likelihood)


def _finite_difference_gradient(mod, y, g, h=1e-6):
    """Central differences of dlm.loglike in a variance (or each symmetric entry of a block)."""
    A = np.asarray(getattr(mod, g.matrix), float)
    idx = np.asarray(g.index)

    def ll(B):
        return dlm.loglike(mod.replace(**{g.matrix: B}), y)

    if not g.full:
        E = np.zeros_like(A)
        E[idx, idx] = 1.0
        eps = h * A[idx[0], idx[0]]
        return (ll(A + eps * E) - ll(A - eps * E)) / (2 * eps)
    k = len(idx)
    G = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            E = np.zeros_like(A)
            E[idx[i], idx[j]] += 0.5
            E[idx[j], idx[i]] += 0.5
            eps = h * np.sqrt(A[idx[i], idx[i]] * A[idx[j], idx[j]])
            G[i, j] = (ll(A + eps * E) - ll(A - eps * E)) / (2 * eps)
    return G


def _em_gradients(mod, y, covariance="structure"):
    from pymc_dlm.estimation import em
    from pymc_dlm.estimation.structure import variance_groups

    y = np.asarray(y, float).reshape(len(y), -1)
    groups = (em._full_groups(mod, ("H", "Q")) if covariance == "full"
              else variance_groups(mod, ("H", "Q")))
    st = em._Setup(mod, y, groups, set(), ("H", "Q"))
    run = em._Runner(st)
    init = (st.a0, st.P0) if st.before else None
    sys_, _, _, sm_ = run.point(system_arrays(mod), init)
    return groups, em._gradients(st, sys_, sm_)


@pytest.mark.parametrize("name", ["trend_seasonal", "trig_seasonal", "bivariate", "tv_regression",
                                  "tv_intercepts", "ar2", "bivariate-full"])
def test_score_is_the_gradient_of_the_loglikelihood(name):
    """Fisher's identity from the E-step's moments equals central differences of the NumPy
    engine's log-likelihood: diffuse and known starts, tied variances, a full H block, missing
    values, time-varying Z, and the stationary AR(2) whose P1 follows Q (the adjoint Lyapunov
    term).  Tolerance: the differences' truncation error (h = 1e-6 relative)."""
    from reference_models import REFERENCE_MODELS

    full = name.endswith("-full")
    mod, y = REFERENCE_MODELS[name.removesuffix("-full")]()
    groups, grads = _em_gradients(mod, y, "full" if full else "structure")
    for g in groups:
        ref = _finite_difference_gradient(mod, y, g)
        np.testing.assert_allclose(grads[g.name], ref, rtol=2e-5,
                                   atol=2e-5 * np.max(np.abs(ref)))


def test_score_equals_the_adjoint_gradient():
    """The same gradient from the adjoint pass (numeric.adjoint.loglike_and_grad; known
    initialisation): dl/dH (symmetrised) of the full H block and dl/dq_i of diagonal Q."""
    from pymc_dlm.numeric.adjoint import loglike_and_grad

    mod, y = bivariate()
    mod = mod.replace(P1=np.diag([2.0, 0.5 / (1 - 0.36), 3.0]), diffuse=[False] * 3)
    groups, grads = _em_gradients(mod, y)
    s = system_arrays(mod)
    _, ref = loglike_and_grad(y, *s[:9], dlm.numeric.filter.TOL)
    gH = 0.5 * (ref["H"][0] + ref["H"][0].T)
    for g in groups:
        if g.matrix == "H":
            np.testing.assert_allclose(grads[g.name], gH, rtol=1e-8)
        else:
            assert grads[g.name] == pytest.approx(ref["Q"][0][g.index[0], g.index[0]], rel=1e-8)


def test_a_small_step_is_not_convergence():
    """The stationary AR(2): P1 follows Q (Lyapunov), which the closed-form M-step ignores, so
    EM settles where its steps are tiny but the score is not zero; converged stays False and
    the message gives the score."""
    from reference_models import ar2

    mod, y = ar2()
    res = fit_em(y, mod, max_iter=300)
    assert not res.converged
    assert res.max_score > 100 * 1e-6 * abs(res.log_likelihood)
    assert "scaled score" in res.message
    h = res.log_likelihood_history
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_squarem_safeguard_ends_no_cycle_below_two_em_steps():
    """Varadhan and Roland's safeguard as documented in fit_em: whatever the largest step
    length, a cycle's point is no lower than the two EM steps it extrapolates from."""
    from pymc_dlm.estimation import em
    from pymc_dlm.estimation.structure import variance_groups

    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())[:, None]
    mod = dlm.LocalLinearTrend(0.05, 0.01, 0.05) + dlm.Seasonal(12, 0.05, form="trigonometric")
    st = em._Setup(mod, y, variance_groups(mod, ("H", "Q")), set(), ("H", "Q"))
    run = em._Runner(st)
    s0, _, f0, sm0 = run.point(system_arrays(mod), None)
    s1, _ = run.em_map(s0, None, sm0)
    s1, _, _, sm1 = run.point(s1, None)
    s2, _ = run.em_map(s1, None, sm1)
    ll2 = run.loglike(s2, None)
    for step_max in (1.0, 1e2, 1e8):
        s_new, _, _ = em._squarem_cycle(run, s0, None, sm0, f0.llf, step_max)
        assert run.loglike(s_new, None) >= ll2
    res = fit_em(y, mod, max_iter=200, accelerate="squarem")
    h = res.log_likelihood_history
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_fixed_variance_equals_statsmodels_fit_constrained():
    """fixed={"sigma2.obs": 15099}: the level variance maximising the likelihood, as
    statsmodels' fit_constrained (BFGS to gtol 1e-10: 1469.05675)."""
    y = dlm.datasets.load_nile()
    ref = sm.tsa.UnobservedComponents(y.to_numpy(), "llevel", use_exact_diffuse=True) \
        .fit_constrained({"sigma2.irregular": 15099.0}, disp=0, method="bfgs", gtol=1e-10)
    for accelerate, rtol in ((None, 1e-4), ("squarem", 1e-7)):
        res = fit_em(y, dlm.LocalLevel(10.0, 10.0), fixed={"sigma2.obs": 15099.0},
                     max_iter=5000, accelerate=accelerate)
        assert res.converged and res.params["sigma2.obs"] == 15099.0
        assert res.model.H[0, 0] == 15099.0
        assert res.params["sigma2.level"] == pytest.approx(ref.params[1], rel=rtol)
        assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-8)
        assert res.df_model == 2


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(fixed={"sigma2.slope": 1.0}), ValueError,
     r"fixed names an unknown parameter 'sigma2.slope'; the parameters are \['sigma2.obs'"),
    (dict(fixed={"sigma2.obs": -1.0}), ValueError, "must be a variance >= 0"),
    (dict(fixed={"sigma2.obs": 1.0, "sigma2.level": 2.0}), ValueError, "no free variance"),
    (dict(accelerate="aitken"), ValueError, "accelerate must be one of"),
    (dict(covariance="diagonal"), ValueError, "covariance must be one of"),
    (dict(convention="R"), ValueError, "convention must be one of"),
    (dict(gtol=-1.0), ValueError, "gtol"),
])
def test_bad_new_options(kwargs, err, match):
    with pytest.raises(err, match=match):
        fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(30.0, 100.0), **kwargs)


def test_kfas_convention_shifts_the_history():
    y = dlm.datasets.load_nile()
    a = fit_em(y, dlm.LocalLevel(38.0, 120.0), max_iter=5)
    b = fit_em(y, dlm.LocalLevel(38.0, 120.0), max_iter=5, convention="kfas")
    np.testing.assert_allclose(b.log_likelihood_history - a.log_likelihood_history,
                               0.5 * np.log(2 * np.pi), rtol=1e-12)
    assert b.log_likelihood == pytest.approx(dlm.loglike(b.model, y, convention="kfas"))
