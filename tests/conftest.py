"""Shared independent references: statsmodels at the same matrices, dense Gaussian conditioning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import pymc_dlm as dlm
from pymc_dlm.numeric.assemble import at_time, system_arrays


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    # Many tiny linear-algebra calls: threaded OpenBLAS only spins on this 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def statsmodels_smooth(model: dlm.StateSpaceModel, y: np.ndarray):
    """Filter and smooth with statsmodels' MLEModel holding exactly our matrices.

    Exact diffuse states use statsmodels' exact diffuse initialisation; the others are 'known'
    with (a1, P1) (stationary blocks as our engine computes them).
    """
    from statsmodels.tsa.statespace.initialization import Initialization
    from statsmodels.tsa.statespace.mlemodel import MLEModel

    s = system_arrays(model)
    y = np.asarray(y, float).reshape(len(y), -1)
    m = model.m

    def sm_shape(x, base):  # our (nt, ...) -> statsmodels (..., nt) or (...)
        return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)

    mod = MLEModel(y, k_states=m, k_posdef=model.r)
    mod.ssm["design"] = sm_shape(s.Z, 2)
    mod.ssm["obs_intercept"] = sm_shape(s.d, 1)
    mod.ssm["obs_cov"] = sm_shape(s.H, 2)
    mod.ssm["transition"] = sm_shape(s.T, 2)
    mod.ssm["state_intercept"] = sm_shape(s.c, 1)
    mod.ssm["selection"] = sm_shape(s.R, 2)
    mod.ssm["state_cov"] = sm_shape(s.Q, 2)
    init = Initialization(m)
    diffuse = np.asarray(model.diffuse)
    if diffuse.all():
        init.set(None, "diffuse")
    elif not diffuse.any():
        init.set(None, "known", constant=s.a1, stationary_cov=s.P1)
    else:
        # statsmodels needs blocks: (known block with a1, P1) and diffuse states one by one
        known = np.flatnonzero(~diffuse)
        for i in np.flatnonzero(diffuse):
            init.set((int(i), int(i) + 1), "diffuse")
        lo, hi = known.min(), known.max() + 1
        assert np.array_equal(known, np.arange(lo, hi)), "test helper needs contiguous known states"
        init.set((int(lo), int(hi)), "known", constant=s.a1[lo:hi],
                 stationary_cov=s.P1[lo:hi, lo:hi])
    mod.ssm.initialization = init
    # statsmodels freezes P once it has converged (tolerance 1e-19), which moves late digits;
    # turn that shortcut off so that both codes compute the exact recursion.
    mod.ssm.tolerance = 0.0
    with warnings.catch_warnings():
        # statsmodels warns that with a non-diagonal H its *covariance* of the smoothed
        # observation disturbance is in transformed units; we do not compare that one then.
        warnings.filterwarnings("ignore", message="The univariate filtering approach")
        return mod.ssm.smooth()


def stacked_states(model: dlm.StateSpaceModel, n: int, extra: int = 0):
    """(A, mu, cov_xi) with alpha_{1..n} = mu + A xi, xi = (alpha_1 - a1, eta_1..eta_{n-1},
    then ``extra`` more variables, zero here) ~ N(0, cov_xi) (known initialisation)."""
    s = system_arrays(model)
    m, r = model.m, model.r
    k = m + (n - 1) * r + extra
    A = np.zeros((n * m, k))
    mu = np.zeros(n * m)
    cov_xi = np.zeros((k, k))
    cov_xi[:m, :m] = s.P1
    A[:m, :m] = np.eye(m)
    mu[:m] = s.a1
    for t in range(1, n):
        Tt = at_time(s.T, t - 1)
        A[t * m:(t + 1) * m] = Tt @ A[(t - 1) * m:t * m]
        A[t * m:(t + 1) * m, m + (t - 1) * r:m + t * r] = at_time(s.R, t - 1)
        mu[t * m:(t + 1) * m] = Tt @ mu[(t - 1) * m:t * m] + at_time(s.c, t - 1)
        cov_xi[m + (t - 1) * r:m + t * r, m + (t - 1) * r:m + t * r] = at_time(s.Q, t - 1)
    return A, mu, cov_xi


def dense_reference(model: dlm.StateSpaceModel, y: np.ndarray):
    """Exact moments by stacking the whole model into one Gaussian vector (known init only).

    Returns (llf, smoothed means (n, m), smoothed covs (n, m, m)): the multivariate normal
    log-density of the observed entries of vec(y) and the conditional moments of the states.
    """
    from scipy.stats import multivariate_normal

    s = system_arrays(model)
    y = np.asarray(y, float).reshape(len(y), -1)
    n, p = y.shape
    m = model.m
    A, mu, cov_xi = stacked_states(model, n)
    cov_a = A @ cov_xi @ A.T
    Zb = np.zeros((n * p, n * m))
    Hb = np.zeros((n * p, n * p))
    db = np.zeros(n * p)
    for t in range(n):
        Zb[t * p:(t + 1) * p, t * m:(t + 1) * m] = at_time(s.Z, t)
        Hb[t * p:(t + 1) * p, t * p:(t + 1) * p] = at_time(s.H, t)
        db[t * p:(t + 1) * p] = at_time(s.d, t)
    mu_y = Zb @ mu + db
    cov_y = Zb @ cov_a @ Zb.T + Hb
    cov_ay = cov_a @ Zb.T
    obs = ~np.isnan(y.ravel())
    yo = y.ravel()[obs]
    Syy = cov_y[np.ix_(obs, obs)]
    llf = multivariate_normal(mu_y[obs], Syy).logpdf(yo) if obs.any() else 0.0
    gain = np.linalg.solve(Syy, cov_ay[:, obs].T).T
    mean = mu + gain @ (yo - mu_y[obs])
    cov = cov_a - gain @ cov_ay[:, obs].T
    means = mean.reshape(n, m)
    covs = np.stack([cov[t * m:(t + 1) * m, t * m:(t + 1) * m] for t in range(n)])
    return float(llf), means, covs
