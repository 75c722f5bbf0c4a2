"""fit_em against dense Gaussian conditioning (the M-step), statsmodels and fit_mle (the optimum)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import statsmodels.api as sm
from scipy.stats import multivariate_normal

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
    res = fit_em(y, mod, max_iter=1, tol=0.0, accelerate=None)
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
    res = fit_em(y, mod, max_iter=1, tol=0.0, accelerate=None)
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
    """Plain EM: 100 iterations do not reach a relative step of 1e-6 on the Nile (it takes
    379), so converged is False.  The default (SQUAREM) gets there in 13 cycles."""
    y = dlm.datasets.load_nile()
    res = fit_em(y, dlm.LocalLevel(10.0, 10.0), accelerate=None)
    assert res.n_iter == 100 and not res.converged
    res = fit_em(y, dlm.LocalLevel(10.0, 10.0))
    assert res.converged and res.n_iter < 100


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
    res = fit_em(y, mod, max_iter=1, tol=0.0, estimate=("H", "Q", "a1", "P1"), accelerate=None)
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
    groups = variance_groups(mod, ("H", "Q"), covariance)
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
    """A VAR(1) whose two disturbances (diagonal Q) both feed both stationary states: P1
    follows Q through the Lyapunov equation, but not block by block, so the M-step leaves
    that share out (module notes); EM settles where its steps are tiny and the score is
    not zero: converged stays False and the message gives the score."""
    var = dlm.StateSpaceModel(Z=[[1.0, 0.5]], T=[[0.8, -0.5], [0.5, 0.3]], Q=np.diag([1.0, 0.5]),
                              H=[[0.5]], diffuse=[False, False], stationary=[True, True])
    y, _ = dlm.simulate(var, 100, rng=np.random.default_rng(2))
    for accelerate in (None, "squarem"):
        res = fit_em(y, var, max_iter=300, accelerate=accelerate)
        assert not res.converged
        assert res.max_score > 100 * 1e-6 * abs(res.log_likelihood)  # 850 x gtol (SQUAREM)
        assert "scaled score" in res.message
        h = res.log_likelihood_history
        assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


def test_summary_shows_a_variance_at_zero_as_at_the_boundary():
    """White noise fitted by a local level: the level variance's maximum is at zero, where
    EM ends tiny (below 1e-7 times the data's scale, fit_mle's rule); the summary prints
    "0 (at boundary)".  The observation variance there is the closed form of a constant
    level with a diffuse prior, sum (y - mean)^2 / (n - 1)."""
    y = np.random.default_rng(5).normal(size=100)
    res = fit_em(y, dlm.LocalLevel(1.0, 1.0), max_iter=2000)
    assert res.converged and res.boundary == ("sigma2.level",)
    assert res.params["sigma2.obs"] == pytest.approx(np.var(y, ddof=1), rel=1e-8)
    lines = res.summary().splitlines()
    assert any(line.split()[:1] == ["sigma2.level"] and line.endswith("0 (at boundary)")
               for line in lines)
    assert not any("at boundary" in line for line in lines if line.startswith("sigma2.obs"))


# ------------------------------------------------- P1 following Q: the exact M-step (issue 23)
def _ar1_noise():
    """AR(1) (phi = 0.7 fixed) plus noise, n = 60, simulated at sigma2 = 1, 1."""
    y, _ = dlm.simulate(dlm.Autoregressive([0.7], 1.0, sigma_obs=1.0), 60,
                        rng=np.random.default_rng(0))
    return dlm.Autoregressive([0.7], 0.5, sigma_obs=0.5), y


def _sarimax_noise():
    """SARIMAX(1, 1, 1) (phi = 0.6, theta = 0.4 fixed) plus noise, n = 80: a diffuse lag
    state and a two-state stationary ARMA block fed by one disturbance."""
    sim = dlm.SARIMAX((1, 1, 1), ar=[0.6], ma=[0.4], sigma=1.0, sigma_obs=0.8)
    y, _ = dlm.simulate(sim, 80, rng=np.random.default_rng(1))
    return dlm.SARIMAX((1, 1, 1), ar=[0.6], ma=[0.4], sigma=0.3, sigma_obs=2.0), y


@pytest.mark.parametrize("make", [_ar1_noise, _sarimax_noise], ids=["ar1", "sarimax"])
def test_em_with_a_stationary_block_reaches_the_mle(make):
    """The stationary block's P1 solves P = TPT' + RQR', and the M-step takes its share in
    closed form, so EM ends at fit_mle's maximum (1e-4 in log-likelihood) with
    converged=True and a zero score.  Before, it stopped at -110.79847 on the AR(1) data
    (the maximum is -110.79523) with converged=False."""
    start, y = make()
    mle = fit_mle(start, y)
    assert mle.converged
    for accelerate in (None, "squarem"):
        res = fit_em(y, start, max_iter=2000, accelerate=accelerate)
        assert res.converged, res.message
        assert res.log_likelihood == pytest.approx(mle.log_likelihood, abs=1e-4)
        h = res.log_likelihood_history
        assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))
        assert res.max_score <= 1e-6 * abs(res.log_likelihood)


def test_m_step_with_a_stationary_block_maximises_the_q_function():
    """One M-step on the SARIMAX + noise model equals a brute-force maximisation (scipy) of
    the expected complete-data log-likelihood built from the smoother's moments, with the
    stationary block's P1(sigma2) from the Lyapunov solver (not from its decomposition):
    1e-8 relative (the optimiser's stationarity tolerance on central differences).  The
    M-step without the initial term (S / k) misses it by far more."""
    from scipy.optimize import minimize

    from pymc_dlm.numeric.assemble import with_stationary
    from pymc_dlm.numeric.filter import filter_arrays
    from pymc_dlm.numeric.smoother import smooth_arrays

    start, y = _sarimax_noise()
    s = system_arrays(start)
    sm_ = smooth_arrays(s, filter_arrays(s, y))
    n = y.shape[0]
    obs = ~np.isnan(y[:, 0])
    S_H, k_H = float(np.sum(sm_.eps_hat[obs, 0] ** 2 + sm_.eps_var[obs, 0, 0])), obs.sum()
    S_Q, k_Q = float(np.sum(sm_.eta_hat[:n - 1, 0] ** 2 + sm_.eta_var[:n - 1, 0, 0])), n - 1
    st = np.flatnonzero(start.stationary)
    d = sm_.a_smooth[0][st] - s.a1[st]
    M = sm_.V[0][np.ix_(st, st)] + np.outer(d, d)

    def q_function(theta):
        h, q = np.exp(theta)
        P = with_stationary(s.P1, s.T, s.R, np.array([[[q]]]), start.stationary)[np.ix_(st, st)]
        return -0.5 * (k_H * np.log(h) + S_H / h + k_Q * np.log(q) + S_Q / q
                       + np.linalg.slogdet(P)[1] + np.trace(np.linalg.solve(P, M)))

    def grad(theta, eps=1e-5):
        return np.array([(q_function(theta + eps * e) - q_function(theta - eps * e)) / (2 * eps)
                         for e in np.eye(2)])

    theta0 = np.log([s.H[0, 0, 0], s.Q[0, 0, 0]])
    opt = minimize(lambda t: -q_function(t), theta0, jac=lambda t: -grad(t), method="BFGS",
                   options={"gtol": 1e-11})
    res = fit_em(y, start, max_iter=1, tol=0.0, gtol=0.0, accelerate=None)
    got = [res.params["sigma2.obs"], res.params["sigma2.arima"]]
    np.testing.assert_allclose(got, np.exp(opt.x), rtol=1e-8)
    assert abs(S_Q / k_Q / np.exp(opt.x[1]) - 1.0) > 1e-4


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
    assert a.n_diffuse_obs == b.n_diffuse_obs == 1 and b.convention == "kfas"


# ------------------------------------------------------- a0/P0 and full blocks (issue 23, req. 5-6)
def before_system(n=25, seed=7):
    """m = 3, p = 2, full H and Q, missing entries, alpha_0 ~ N(a0, P0) one step before y_1;
    the start is diagonal (positive definite)."""
    rng = np.random.default_rng(seed)
    Z = np.array([[1.0, 0.0, 0.5], [0.3, 1.0, 0.0]])
    T = np.array([[0.9, 0.1, 0.0], [0.0, 0.7, 0.2], [0.0, 0.0, 0.5]])
    c = np.array([0.1, -0.2, 0.0]); d = np.array([0.5, -1.0])
    Htrue = np.array([[0.5, 0.2], [0.2, 0.4]])
    Qtrue = np.array([[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.1]])
    sim = dlm.StateSpaceModel(Z=Z, T=T, c=c, d=d, H=Htrue, Q=Qtrue, a0=[1.0, 0.0, -1.0],
                              P0=0.5 * np.eye(3))
    y, _ = dlm.simulate(sim, n, rng=rng)
    y[3, 0] = np.nan; y[10, :] = np.nan; y[17, 1] = np.nan
    start = sim.replace(H=np.diag([1.0, 1.0]), Q=np.diag([0.5, 0.5, 0.5]), a0=[0.0, 0.0, 0.0],
                        P0=np.eye(3))
    return start, y

def dense_em(model, y, n_iter):
    """EM for full H, Q, a0, P0 by dense Gaussian conditioning: (alpha_0, eta_0..eta_{n-1},
    eps_1..eps_n) stacked into one Gaussian vector, conditioned on the observed entries of y;
    the M-step from its moments (Shumway and Stoffer 1982).  Returns the log-likelihood
    trace and the final estimates."""
    n, p = y.shape
    Z, T, c, d, R = (np.asarray(getattr(model, k), float) for k in ("Z", "T", "c", "d", "R"))
    m, r = R.shape
    H, Q = np.array(model.H, float), np.array(model.Q, float)
    a0, P0 = np.array(model.a0, float), np.array(model.P0, float)
    Rp = np.linalg.pinv(R)
    obs = ~np.isnan(y.ravel())
    trace = []
    for it in range(n_iter + 1):
        # xi = (alpha_0, eta_0..eta_{n-1}, eps_1..eps_n) ~ N(mu_xi, S_xi);
        # x = (alpha_0..alpha_n, eps) = A xi + b
        k = m + n * r + n * p
        S_xi = np.zeros((k, k)); mu_xi = np.zeros(k)
        S_xi[:m, :m] = P0; mu_xi[:m] = a0
        for t in range(n):
            i = m + t * r; S_xi[i:i + r, i:i + r] = Q
            j = m + n * r + t * p; S_xi[j:j + p, j:j + p] = H
        A = np.zeros(((n + 1) * m + n * p, k)); b = np.zeros((n + 1) * m + n * p)
        A[:m, :m] = np.eye(m)
        for t in range(1, n + 1):
            A[t * m:(t + 1) * m] = T @ A[(t - 1) * m:t * m]
            A[t * m:(t + 1) * m, m + (t - 1) * r:m + t * r] += R
            b[t * m:(t + 1) * m] = T @ b[(t - 1) * m:t * m] + c
        e0 = (n + 1) * m
        A[e0:, m + n * r:] = np.eye(n * p)
        mu = A @ mu_xi + b; S = A @ S_xi @ A.T
        G = np.zeros((n * p, len(mu))); dd = np.zeros(n * p)
        for t in range(n):
            G[t * p:(t + 1) * p, (t + 1) * m:(t + 2) * m] = Z
            G[t * p:(t + 1) * p, e0 + t * p:e0 + (t + 1) * p] = np.eye(p)
            dd[t * p:(t + 1) * p] = d
        Go = G[obs]; yo = y.ravel()[obs]
        Syy = Go @ S @ Go.T; my = Go @ mu + dd[obs]
        trace.append(multivariate_normal(my, Syy).logpdf(yo))
        if it == n_iter:
            break
        K = np.linalg.solve(Syy, Go @ S).T
        mean = mu + K @ (yo - my); cov = S - K @ Go @ S
        SQ = np.zeros((r, r))
        for t in range(1, n + 1):
            cur, prev = slice(t * m, (t + 1) * m), slice((t - 1) * m, t * m)
            e = mean[cur] - T @ mean[prev] - c
            M = (np.outer(e, e) + cov[cur, cur] - T @ cov[prev, cur] - cov[cur, prev] @ T.T
                 + T @ cov[prev, prev] @ T.T)
            SQ += Rp @ M @ Rp.T
        SH = np.zeros((p, p))
        for t in range(n):
            j = slice(e0 + t * p, e0 + (t + 1) * p)
            SH += np.outer(mean[j], mean[j]) + cov[j, j]
        Q, H = 0.5 * (SQ + SQ.T) / n, 0.5 * (SH + SH.T) / n
        a0, P0 = mean[:m].copy(), cov[:m, :m].copy()
        P0 = 0.5 * (P0 + P0.T)
    return np.array(trace), H, Q, a0, P0



def test_em_with_a0_p0_and_full_blocks_equals_dense_gaussian_em():
    """20 iterations of EM for full H (2 x 2), full Q (3 x 3), a0 and P0 from a diagonal
    start: the log-likelihood trace to 1e-8 and the estimates to 1e-10 against the dense EM
    (no jump step happens: n_em_steps == n_iter)."""
    start, y = before_system()
    ref, H, Q, a0, P0 = dense_em(start, y, 20)
    res = fit_em(y, start, max_iter=20, tol=0.0, gtol=0.0, covariance="full",
                 estimate=("H", "Q", "a0", "P0"), accelerate=None)
    assert res.n_iter == res.n_em_steps == 20
    np.testing.assert_allclose(res.log_likelihood_history, ref, rtol=0, atol=1e-8)
    assert ref[-1] - ref[0] > 10.0
    for got, want in ((res.model.H, H), (res.model.Q, Q), (res.model.a0, a0), (res.model.P0, P0)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert abs(res.model.H[0, 1]) > 1e-3 and abs(res.model.Q[0, 1]) > 1e-3  # off-diagonals move
    np.testing.assert_allclose(res.model.P1, np.asarray(res.model.T) @ P0 @ np.asarray(
        res.model.T).T + Q, rtol=1e-12)  # P1 moves with Q
    assert set(res.params) == {"cov(obs[0], obs[1])", "cov(state_0, state_1, state_2)"}


def test_full_blocks_are_named_as_variance_groups_names_them():
    """covariance="full" from a diagonal start names each block as variance_groups (and so
    fit_mle) names the same block in a model whose start is already full:
    cov(level.a, level.b), not cov(Q[0, 1])."""
    from pymc_dlm.estimation.structure import variance_groups

    start = dlm.LocalLevel(1.0, 0.5, name="a") + dlm.LocalLevel(0.8, 0.0, name="b")
    full = start.replace(Q=[[0.25, 0.1], [0.1, 0.49]])
    y = np.cumsum(np.random.default_rng(2).normal(size=(30, 2)), axis=0) @ [[1.0], [1.0]]
    res = fit_em(y, start, max_iter=2, covariance="full")
    assert list(res.params) == [g.name for g in variance_groups(full, ("H", "Q"))] \
        == ["sigma2.obs", "cov(a, b)"]


def test_em_and_mle_agree_with_the_initial_state_before_y1():
    """Nile local level with alpha_0 ~ N(1000, 1e4) one step before 1871 (so P1 = 1e4 + Q
    moves with the level variance): EM (SQUAREM, converged by the score) and fit_mle (the
    graph propagates P1 from Q) reach the same maximum."""
    y = dlm.datasets.load_nile()
    start = dlm.LocalLevel(10.0, 10.0).replace(a0=[1000.0], P0=[[1e4]])
    em = fit_em(y, start, max_iter=3000, accelerate="squarem")
    assert em.converged, em.message
    mle = fit_mle(start, y)
    assert mle.converged
    assert em.log_likelihood == pytest.approx(mle.log_likelihood, abs=1e-6)
    np.testing.assert_allclose([em.model.H[0, 0], em.model.Q[0, 0]],
                               [mle.model.H[0, 0], mle.model.Q[0, 0]], rtol=1e-3)
    assert em.model.P1[0, 0] == pytest.approx(1e4 + em.model.Q[0, 0], rel=1e-14)
    # a different maximum from the diffuse model's: the prior on alpha_0 is informative
    assert abs(em.log_likelihood - dlm.loglike(em.model.replace(a1=[0.0], P1=[[0.0]],
                                                                diffuse=[True]), y)) > 1.0


def test_full_covariance_needs_a_positive_definite_start():
    start, y = before_system()
    with pytest.raises(ValueError, match="positive-definite start"):
        fit_em(y, start.replace(Q=np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
               covariance="full")
    with pytest.raises(ValueError, match="estimate a0/P0, not a1/P1"):
        fit_em(y, start, estimate=("H", "a1"))
    with pytest.raises(ValueError, match="one step before y_1"):
        fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(1.0, 1.0), estimate=("H", "a0"))
