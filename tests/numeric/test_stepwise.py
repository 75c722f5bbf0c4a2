"""The stepwise Kalman procedure against Harvey's printed table, dense Gaussian conditioning,
the filter of the NumPy engine, Rao's generalised inverse and the Nile MLE."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

import pymc_dlm as dlm

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Harvey (1981, pp. 116-117) as printed in the PV-WAVE manual (v4 corrected to 1.003).
HARVEY = """\
0 0 4.376 0.941 1 0.009 2.833  0.400 17.000
1 0 4.376 4.941 1 0.009 2.833  0.400 17.000
1 1 4.063 0.832 2 0.033 4.615 -0.376  5.941
2 1 4.063 4.832 2 0.033 4.615 -0.376  5.941
2 2 3.597 0.829 3 0.088 6.378 -0.563  5.832
3 2 3.597 4.829 3 0.088 6.378 -0.563  5.832
3 3 4.428 0.828 4 0.260 8.141  1.003  5.829
4 3 4.428 4.828 4 0.260 8.141  1.003  5.829"""


def test_harvey_table_to_every_printed_digit():
    text, final = runpy.run_path(str(EXAMPLES / "harvey_stepwise.py"))["run"]()
    got = [line.split() for line in text.splitlines()[1:]]
    want = [line.split() for line in HARVEY.splitlines()]
    assert got == want
    assert final.n == 4


def dense_stages(b0, C0, zs, rs, ts, qs):
    """Joint Gaussian of the stacked y_1..y_K (states propagated exactly), sigma2 = 1.

    Returns the mean and covariance of the stacked y, the slice of each stage in it, the
    states' stacked mean and covariance, and G (stacked y = G stacked b + e).
    """
    K, q = len(zs), len(b0)
    mean_b = [np.asarray(b0, float)]
    cov_b = {(0, 0): np.asarray(C0, float)}
    for k in range(K - 1):
        mean_b.append(ts[k] @ mean_b[k])
        for j in range(k + 1):
            cov_b[(k + 1, j)] = ts[k] @ cov_b[(k, j)]
            cov_b[(j, k + 1)] = cov_b[(k + 1, j)].T
        cov_b[(k + 1, k + 1)] = ts[k] @ cov_b[(k, k)] @ ts[k].T + qs[k]
    Sb = np.block([[cov_b[(i, j)] for j in range(K)] for i in range(K)])
    mb = np.concatenate(mean_b)
    G = block_diag(*zs)
    assert G.shape[1] == K * q
    Sy = G @ Sb @ G.T + block_diag(*rs)
    sizes = np.cumsum([0] + [z.shape[0] for z in zs])
    blocks = [slice(sizes[k], sizes[k + 1]) for k in range(K)]
    return G @ mb, Sy, blocks, mb, Sb, G


@pytest.fixture
def ragged():
    """Three stages with 1, 3 and 2 observations, time-varying T and Q, two states."""
    rng = np.random.default_rng(7)
    zs = [rng.normal(size=(nk, 2)) for nk in (1, 3, 2)]
    rs = []
    for nk in (1, 3, 2):
        A = rng.normal(size=(nk, nk))
        rs.append(A @ A.T + 0.5 * np.eye(nk))
    ts = [np.array([[0.9, 0.2], [0.0, 0.7]]), np.array([[1.0, 1.0], [0.0, 1.0]]), np.eye(2)]
    qs = [np.diag([0.3, 0.1]), np.array([[0.5, 0.1], [0.1, 0.2]]), np.diag([0.2, 0.4])]
    ys = [rng.normal(size=z.shape[0]) for z in zs]
    return dlm.KalmanState(b=[0.5, -1.0], covb=[[2.0, 0.3], [0.3, 1.0]]), ys, zs, rs, ts, qs


def test_ragged_stages_match_dense_conditioning(ragged):
    start, ys, zs, rs, ts, qs = ragged
    res = dlm.kalman_sequence(start, ys, zs, rs, ts, qs)
    my, Sy, blocks, mb, Sb, G = dense_stages(start.b, start.covb, zs, rs, ts, qs)
    yv = np.concatenate(ys)
    s = res.state
    assert s.n == 6
    for sigma2 in (1.0, 3.7):
        ref = -2 * multivariate_normal(my, sigma2 * Sy).logpdf(yv)
        assert dlm.neg2_loglik(s, sigma2) == pytest.approx(ref, rel=1e-12)
    # filtered b_{k|k}, C_{k|k}: conditional moments of b_k given y_1..y_k
    Syb = G @ Sb
    for k in range(3):
        obs = np.r_[blocks[0].start:blocks[k].stop]
        bk = slice(2 * k, 2 * k + 2)
        gain = np.linalg.solve(Sy[np.ix_(obs, obs)], Syb[obs, bk]).T
        np.testing.assert_allclose(res.filtered[k].b, mb[bk] + gain @ (yv[obs] - my[obs]), rtol=1e-11)
        np.testing.assert_allclose(res.filtered[k].covb, Sb[bk, bk] - gain @ Syb[obs, bk], rtol=1e-11)
        assert res.v[k].shape == (zs[k].shape[0],) and res.covv[k].shape == rs[k].shape
    # the concentrated likelihood is -2L at sigma2_hat minus n (1 + log 2 pi)
    s2 = s.ss / s.n
    assert s.sigma2_hat == s2
    assert dlm.concentrated_neg2_loglik(s) == pytest.approx(
        dlm.neg2_loglik(s, s2) - s.n * (1 + math.log(2 * math.pi)), rel=1e-13
    )
    # sigma2_hat maximises the full likelihood
    assert all(dlm.neg2_loglik(s, s2 * f) > dlm.neg2_loglik(s, s2) for f in (0.99, 1.01))


def test_singular_covv_uses_moore_penrose_and_pseudo_determinant():
    # two identical observations of state 1 with perfectly correlated noise: covv has rank 1
    state = dlm.KalmanState(b=[1.0, 2.0], covb=[[2.0, 0.5], [0.5, 1.0]], n=3, ss=1.5, alndet=0.25)
    z = np.array([[1.0, 0.0], [1.0, 0.0]])
    r = np.ones((2, 2))
    y = np.array([1.8, 1.8])
    step = dlm.kalman(state, y=y, z=z, r=r)
    covv = z @ state.covb @ z.T + r
    lam = np.linalg.eigvalsh(covv)
    assert step.rank == 1
    assert step.state.n == 4
    assert step.state.alndet == pytest.approx(0.25 + math.log(lam[-1]), rel=1e-13)
    pinv = np.linalg.pinv(covv)
    v = y - z @ state.b
    assert step.state.ss == pytest.approx(1.5 + v @ pinv @ v, rel=1e-13)
    K = state.covb @ z.T @ pinv
    np.testing.assert_allclose(step.state.b, state.b + K @ v, rtol=1e-13)
    np.testing.assert_allclose(step.state.covb, state.covb - K @ z @ state.covb, rtol=1e-12)
    # ... and it is the same as one observation of state 1 with unit noise
    one = dlm.kalman(state, y=[1.8], z=[[1.0, 0.0]], r=[[1.0]])
    np.testing.assert_allclose(step.state.b, one.state.b, rtol=1e-13)
    # a looser tol treats the nearly singular case the same way
    near = dlm.kalman(state, y=y, z=z, r=r + np.diag([1e-12, 0.0]), tol=1e-8)
    assert near.rank == 1


def test_sequence_equals_kalman_filter_with_sigma2_one():
    rng = np.random.default_rng(3)
    T = np.array([[1.0, 1.0], [0.0, 0.8]])
    Q = np.array([[0.4, 0.1], [0.1, 0.3]])
    Z = np.array([[1.0, 0.0], [0.5, 1.0]])
    H = np.array([[1.0, 0.2], [0.2, 0.5]])
    a1, P1 = np.array([0.3, -0.2]), np.array([[3.0, 0.4], [0.4, 2.0]])
    model = dlm.StateSpaceModel(Z=Z, T=T, Q=Q, H=H, a1=a1, P1=P1)
    y = rng.normal(size=(30, 2))
    y[4, 1] = np.nan
    y[9] = np.nan
    filt = dlm.kalman_filter(model, y)
    res = dlm.kalman_sequence(dlm.KalmanState(a1, P1), list(y), Z, H, T, Q)
    np.testing.assert_allclose(res.b_filtered, filt.a_filt, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.b_predicted, filt.a_pred[1:], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.stack([s.covb for s in res.predicted]), filt.P_pred[1:], rtol=1e-12)
    np.testing.assert_allclose(np.stack(res.v), filt.v, rtol=1e-12)
    np.testing.assert_allclose(np.stack(res.covv), filt.F, rtol=1e-12)
    s = res.state
    assert s.n == filt.nobs == 57
    assert -0.5 * (s.n * math.log(2 * math.pi) + s.alndet + s.ss) == pytest.approx(filt.llf, rel=1e-12)
    assert -0.5 * dlm.neg2_loglik(s, 1.0) == pytest.approx(filt.llf, rel=1e-12)


def test_prediction_defaults_and_multi_step():
    s = dlm.KalmanState(b=[1.0, 2.0], covb=[[1.0, 0.2], [0.2, 0.5]], n=2, ss=0.3, alndet=0.1)
    T = np.array([[1.0, 1.0], [0.0, 1.0]])
    Q = np.diag([0.1, 0.2])
    only_t = dlm.kalman(s, t=T).state
    np.testing.assert_allclose(only_t.covb, T @ s.covb @ T.T)
    only_q = dlm.kalman(s, q=Q).state
    np.testing.assert_allclose(only_q.b, s.b)
    np.testing.assert_allclose(only_q.covb, s.covb + Q)
    assert (only_q.n, only_q.ss, only_q.alndet) == (2, 0.3, 0.1)
    ahead = dlm.predict_ahead(s, 3, t=T, q=Q)
    b, C = s.b, s.covb
    for h in range(3):
        b, C = T @ b, T @ C @ T.T + Q
        np.testing.assert_allclose(ahead[h].b, b)
        np.testing.assert_allclose(ahead[h].covb, C, rtol=1e-14)
    # update then prediction in one call = the two calls
    both = dlm.kalman(s, y=[3.0], z=[[1.0, 0.0]], r=[[0.5]], t=T, q=Q)
    two = dlm.kalman(dlm.kalman(s, y=[3.0], z=[[1.0, 0.0]], r=[[0.5]]).state, t=T, q=Q)
    np.testing.assert_array_equal(both.state.covb, two.state.covb)
    np.testing.assert_array_equal(both.filtered.b, dlm.kalman(s, y=[3.0], z=[[1, 0]], r=[[0.5]]).state.b)


def test_inputs_are_never_modified():
    b, covb = np.array([1.0, 2.0]), np.array([[1.0, 0.2], [0.2, 0.5]])
    y, z, r = np.array([0.5]), np.array([[1.0, 1.0]]), np.array([[0.4]])
    copies = [x.copy() for x in (b, covb, y, z, r)]
    s = dlm.KalmanState(b, covb)
    dlm.kalman(s, y=y, z=z, r=r, t=np.eye(2), q=np.eye(2))
    for x, c in zip((b, covb, y, z, r), copies, strict=True):
        np.testing.assert_array_equal(x, c)
    with pytest.raises(ValueError, match="read-only"):
        s.b[0] = 3.0


def test_nile_concentrated_likelihood_gives_the_mle():
    """Durbin and Koopman (2012, section 2.10.3): sigma2_eps = 15099, sigma2_eta = 1469.1."""
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    fit = runpy.run_path(str(EXAMPLES / "nile_concentrated.py"))["fit"]
    y = dlm.datasets.load_nile().to_numpy()
    est = fit(y)
    assert est["sigma2_obs"] == pytest.approx(15099, rel=5e-4)
    assert est["sigma2_level"] == pytest.approx(1469.1, rel=5e-4)
    # -2Lc at the optimum is the exact diffuse log-likelihood at (sigma2_obs, sigma2_level):
    # log L = -(-2Lc + n (1 + log 2 pi)) / 2 - log(2 pi) / 2 (the diffuse y_1, F_inf = 1)
    llf = -0.5 * (est["neg2lc"] + est["n"] * (1 + math.log(2 * math.pi))) - 0.5 * math.log(2 * math.pi)
    sm = UnobservedComponents(y, "llevel", use_exact_diffuse=True)
    assert llf == pytest.approx(sm.loglike([est["sigma2_obs"], est["sigma2_level"]]), rel=1e-10)
    sm_fit = sm.fit(disp=False)
    assert llf >= sm_fit.llf - 1e-6


class TestBadInput:
    s = dlm.KalmanState(b=[1.0, 2.0], covb=np.eye(2))

    def test_update_needs_y_z_and_r(self):
        with pytest.raises(ValueError, match="missing z, r"):
            dlm.kalman(self.s, y=[1.0])
        with pytest.raises(ValueError, match="missing y"):
            dlm.kalman(self.s, z=[[1.0, 0.0]], r=[[1.0]])

    def test_nothing_to_do(self):
        with pytest.raises(ValueError, match="nothing to do"):
            dlm.kalman(self.s)

    @pytest.mark.parametrize(
        ("kw", "msg"),
        [
            (dict(y=[1.0, 2.0], z=[[1.0, 0.0]], r=np.eye(2)), r"z must have shape \(2, 2\); got \(1, 2\)"),
            (dict(y=[1.0], z=[[1.0, 0.0, 0.0]], r=[[1.0]]), r"z must have shape \(1, 2\); got \(1, 3\)"),
            (dict(y=[1.0], z=[[1.0, 0.0]], r=np.eye(2)), r"r must have shape \(1, 1\); got \(2, 2\)"),
            (dict(t=np.eye(3)), r"t must have shape \(2, 2\); got \(3, 3\)"),
            (dict(q=[[1.0, 0.5], [0.0, 1.0]]), "q must be symmetric"),
            (dict(q=[[1.0, 2.0], [2.0, 1.0]]), "q must be positive semi-definite"),
            (dict(y=[np.inf], z=[[1.0, 0.0]], r=[[1.0]]), "must not contain inf"),
            (dict(y=[[1.0]], z=[[1.0, 0.0]], r=[[1.0]]), "y must be a vector"),
            (dict(y=[1.0], z=[[1.0, 0.0]], r=[[-1.0]]), "r must have non-negative variances"),
            (dict(y=[1.0], z=[[1.0, 0.0]], r=[[1.0]], tol=-1.0), "tol must be"),
        ],
    )
    def test_errors_name_the_argument(self, kw, msg):
        with pytest.raises(ValueError, match=msg):
            dlm.kalman(self.s, **kw)

    def test_state_validation(self):
        with pytest.raises(ValueError, match="covb must be symmetric"):
            dlm.KalmanState(b=[0.0, 0.0], covb=[[1.0, 0.5], [0.0, 1.0]])
        with pytest.raises(ValueError, match=r"covb must have shape \(2, 2\); got \(3, 3\)"):
            dlm.KalmanState(b=[0.0, 0.0], covb=np.eye(3))
        with pytest.raises(ValueError, match="n must be a non-negative integer"):
            dlm.KalmanState(b=0.0, covb=1.0, n=-1)
        with pytest.raises(TypeError, match="covb must be numeric"):
            dlm.KalmanState(b=0.0, covb="big")

    def test_likelihoods_need_data(self):
        with pytest.raises(ValueError, match="needs n > 0"):
            dlm.concentrated_neg2_loglik(self.s)
        with pytest.raises(ValueError, match="sigma2 must be"):
            dlm.neg2_loglik(self.s, 0.0)

    def test_sequence_lengths_must_agree(self):
        with pytest.raises(ValueError, match="z has 2 stages but y has 3"):
            dlm.kalman_sequence(self.s, [[1.0]] * 3, [np.ones((1, 2))] * 2, 1.0)
        with pytest.raises(ValueError, match="steps must be"):
            dlm.predict_ahead(self.s, 0)
