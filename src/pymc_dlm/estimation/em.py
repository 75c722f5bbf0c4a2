r"""The EM algorithm for the variances of a state-space model: ``fit_em``.

E-step: the state and disturbance smoother of the NumPy engine (Durbin and Koopman 2012,
eqs. 4.44 and 4.69, exact diffuse steps of section 5.3).  M-step: closed-form updates of the
observation and state disturbance covariances (Shumway and Stoffer 1982; Koopman 1993; D&K
section 7.3.4), restricted to the model's structure.

With complete data :math:`(\alpha_1, \dots, \alpha_n, y)` the expected complete-data
log-likelihood is maximised by

.. math::

    \hat Q = \frac{1}{n-1}\sum_{t=1}^{n-1} E(\eta_t\eta_t' \mid y), \qquad
    \hat H = \frac{1}{n}\sum_{t=1}^{n} E(\varepsilon_t\varepsilon_t' \mid y),

where :math:`E(\eta_t\eta_t'|y) = \hat\eta_t\hat\eta_t' + Var(\eta_t|y)` comes from the
disturbance smoother (eq. 4.69).  Written with states, :math:`\eta_t = R_t^+(\alpha_{t+1} -
T_t\alpha_t - c_t)` and

.. math::

    E(\eta_t\eta_t'|y) = R_t^+\big[\,e_te_t' + V_{t+1} - T_t C_t - C_t'T_t' + T_tV_tT_t'\,\big]
    R_t^{+\prime}, \quad e_t = \hat\alpha_{t+1} - T_t\hat\alpha_t - c_t,

with the lag-one smoothed cross-covariance :math:`C_t = Cov(\alpha_t, \alpha_{t+1} | y)` (D&K
section 4.7); the disturbance smoother gives this quantity exactly, lag-one term included
(``tests/estimation/test_em.py`` checks it against dense Gaussian conditioning).  Dropping
:math:`C_t` is a common mistake that inflates :math:`\hat Q`.

**The score.**  By Fisher's identity the gradient of the log-likelihood is the expected
complete-data score, so the E-step's moments give it at no extra cost: for a covariance
block :math:`\Sigma` estimated from k terms with :math:`S = \sum E(\cdot\,\cdot' \mid y)`,

.. math::

    \frac{\partial \ell}{\partial \Sigma} = -\tfrac12\left(k\,\Sigma^{-1} -
    \Sigma^{-1} S \Sigma^{-1}\right)

(a scalar variance :math:`\sigma^2` shared by k terms: :math:`(S - k\sigma^2)/(2\sigma^4)`),
and for a known initial state :math:`\partial\ell/\partial a_1 = P_1^{-1}(\hat\alpha_1 - a_1)`,
:math:`\partial\ell/\partial P_1` as for :math:`\Sigma` with k = 1.  A stationary block of
:math:`P_1` depends on Q through :math:`P = TPT' + RQR'`; its share is added through the
adjoint Lyapunov equation :math:`\Lambda = T'\Lambda T + \partial\ell/\partial P`,
:math:`\partial\ell/\partial Q \mathrel{+}= R'\Lambda R`.  ``tests/estimation`` checks this
score against the adjoint pass of the fused engine.

**P1 following Q** (a stationary block, D&K section 5.6).  The stationary states' block of
:math:`P_1` solves :math:`P = TPT' + RQR'` (T, R at t = 1), so it is linear in the variances:
:math:`P_{1,s} = \sum_g \sigma^2_g \bar P_g + \text{rest}`, where :math:`\bar P_g` solves
the same equation with Q replaced by the indicator :math:`E_g` of the entries of the scalar
variance group g.  Let :math:`\mathcal S_g` be the states that g's disturbances reach
through the non-zero pattern of T (the support of :math:`\bar P_g`).  When no other
non-zero entry of Q (free, fixed or a full block) reaches :math:`\mathcal S_g`, the block of
:math:`P_1` there is :math:`\sigma^2_g \bar P_g` with no covariance to the other states,
and the complete-data log-likelihood's initial term for that block is

.. math::

    -\tfrac12\left[\log|\sigma^2_g \bar P_g| + \mathrm{tr}(\bar P_g^{-1}M_g)/\sigma^2_g
    \right], \qquad M_g = E[(\alpha_1 - a_1)(\alpha_1 - a_1)' \mid y]_{\mathcal S_g}
    = V_1 + (\hat\alpha_1 - a_1)(\hat\alpha_1 - a_1)',

so with :math:`S_g` and :math:`k_g` the group's sum of second moments and number of terms
(above) the M-step stays in closed form (a Cholesky solve):

.. math::

    \hat\sigma^2_g = \frac{S_g + \mathrm{tr}(\bar P_g^{-1}M_g)}{k_g + m_g}, \qquad
    m_g = |\mathcal S_g|.

This is exact, so the EM step is monotone and its fixed points are stationary points (AR
and ARMA components with fixed coefficients, SARIMAX, an AR(1) plus noise).  Where the
condition fails (two disturbances feeding the same stationary states, e.g. a VAR with a
diagonal Q; a full Q block or a fixed variance feeding them; :math:`\bar P_g` numerically
singular on :math:`\mathcal S_g`) the M-step of that group ignores the initial term: the
step is then guarded by the monotone line search, EM can stall short of the maximum, and
the score (which includes the Lyapunov share) keeps ``converged`` False and is quoted in
the message.

**Initial state one step before the first observation** (a model with ``a0``/``P0``,
Shumway and Stoffer; R's dlm ``m0``/``C0``): :math:`\alpha_0 \sim N(a_0, P_0)`,
:math:`\alpha_1 = T\alpha_0 + c + R\eta_0`.  Then :math:`\eta_0` is part of the complete data,
:math:`E(\eta_0|y) = QR'r_0`, :math:`Var(\eta_0|y) = Q - QR'N_0RQ` (the disturbance smoother
at t = 0), Q is estimated from n terms, and ``estimate`` may name ``a0``/``P0``:
:math:`\hat a_0 = a_0 + P_0T'r_0`, :math:`\hat P_0 = P_0 - P_0T'N_0TP_0` (+ the outer product
of the shift of the mean when a0 stays fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..numeric.assemble import at_time, stationary_cov, system_arrays, with_stationary
from ..numeric.filter import CONVENTIONS, filter_arrays, prepare_y
from ..numeric.kernels import LOG2PI
from ..numeric.smoother import smooth_arrays
from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from .checks import SMALL_VARIANCE, check_data, data_scale
from .report import FitStatistics
from .structure import _Group, variance_groups

__all__ = ["EMResult", "fit_em"]

_ESTIMABLE = ("H", "Q", "a1", "P1", "a0", "P0")
_COVARIANCE = ("structure", "full")
_ACCELERATE = (None, "squarem")
#: Plain EM tries the escape steps every this many iterations (and at every candidate stop).
_PROBE_EVERY = 10
#: A jump step tries sigma^2 * 10^j (or / 10^j), j = 1, 2, ..., at most this many.
_PROBE_STEPS = 40
#: No jump step makes a variance smaller than this.
_SMALLEST = 1e-250


@dataclass(frozen=True, eq=False, repr=False)
class EMResult(FitStatistics):
    """Result of :func:`fit_em`.

    Attributes
    ----------
    model : StateSpaceModel
        The model at the last E-step (where the score was checked).
    params : dict
        Estimated variances (and covariance blocks) by name, e.g. ``{"sigma2.obs": ...}``
        (fixed ones included).
    log_likelihood : float
        Log-likelihood of ``model`` (in ``convention``).
    log_likelihood_history : (n_iter + 1,) ndarray
        Log-likelihood of the initial model and after each iteration; non-decreasing.
    converged : bool
        True only at a stationary point: the last step moved no estimate by more than
        ``tol`` (relative), the scaled score is at most ``gtol`` (see :func:`fit_em`), and no
        escape step from a variance near zero increased the likelihood.
    n_iter : int
        Iterations: M-steps and accepted escape steps (plain EM), extrapolation cycles
        (``accelerate="squarem"``).
    nobs : int
        Number of observed entries of y.
    df_model : int
        Free variance parameters plus diffuse initial states (D&K section 7.4).
    aic, bic : float
    data : array_like, Series or DataFrame
        The observations (for :meth:`filter`, :meth:`smooth`, :meth:`forecast`, :meth:`plot`).
    max_score : float
        The largest scaled score at ``model`` (:func:`fit_em`, ``gtol``).
    message : str
        Why the iterations stopped.
    convention : str
        Log-likelihood convention.
    n_em_steps : int
        Evaluations of the EM map (E-step + M-step), all kinds of iteration included.
    n_diffuse_obs : int
        Diffuse observation elements (:attr:`pymc_dlm.numeric.results.FilterResult.n_diffuse_obs`;
        the two conventions differ by half their number times log 2 pi).
    boundary : tuple of str
        The free scalar variances that ended at (numerically) zero: below
        :data:`~pymc_dlm.estimation.checks.SMALL_VARIANCE` times the data's scale
        (:func:`~pymc_dlm.estimation.checks.data_scale`), the rule of :func:`fit_mle`.
        EM never sets a variance to zero, so a maximum on the boundary ends tiny; the
        summary prints these as "0 (at boundary)".
    """

    model: StateSpaceModel
    params: dict
    log_likelihood: float
    log_likelihood_history: np.ndarray
    converged: bool
    n_iter: int
    nobs: int
    df_model: int
    data: Any = None
    max_score: float = np.nan
    message: str = ""
    convention: str = "statsmodels"
    n_em_steps: int = 0
    n_diffuse_obs: int = 0
    boundary: tuple = ()

    def summary(self) -> str:
        """The estimates in a table like :meth:`MLEResult.summary` (EM gives no standard
        errors): "0 (at boundary)" for a variance in :attr:`boundary`."""
        lines = self._header("EM (pymc-dlm fit_em)")
        lines.append(f"{'parameter':<24}{'estimate':>16}")
        for name, val in self.params.items():
            arr = np.atleast_1d(val)
            if name in self.boundary:
                lines.append(f"{name:<24}{'0 (at boundary)':>16}")
            elif arr.ndim == 1 and arr.size == 1:
                lines.append(f"{name:<24}{arr[0]:>16.6g}")
            else:
                lines.append(f"{name:<24}" + np.array2string(arr, precision=6))
        lines.append(f"converged: {self.converged} ({self.message})")
        return "\n".join(lines + self._coefficient_lines())


# ------------------------------------------------------------------------------- structure
class _Setup:
    """What stays fixed during the iterations: the groups, masks, the initial-state mode and
    the stationary blocks with a closed-form M-step (read from ``sys``, the start with the
    fixed values in place; ``model``'s values when None)."""

    def __init__(self, model: StateSpaceModel, y: np.ndarray, groups: list[_Group],
                 fixed: set, estimate: tuple[str, ...], sys=None):
        self.groups = groups
        self.free = [g for g in groups if g.name not in fixed]
        self.y = y
        self.obs = ~np.isnan(y)
        self.estimate = estimate
        self.stationary = tuple(model.stationary)
        self.known = np.array([not (d or st) for d, st in zip(model.diffuse, model.stationary,
                                                              strict=True)])
        self.before = getattr(model, "a0", None) is not None  # initial state before y_1
        if self.before:
            self.a0 = np.array(model.a0, dtype=np.float64)
            self.P0 = np.array(model.P0, dtype=np.float64)
        self.init = tuple(e for e in estimate if e in ("a1", "P1", "a0", "P0"))
        self.initial_blocks = {} if self.before else _stationary_blocks(
            system_arrays(model) if sys is None else sys, self.stationary, self.free)

    def with_initial(self, sys):
        """sys with P1 (stationary block, or a1/P1 from a0/P0) following T, R, Q."""
        if self.before:
            T0, c0, R0, Q0 = (at_time(getattr(sys, k), 0) for k in ("T", "c", "R", "Q"))
            P1 = T0 @ self.P0 @ T0.T + R0 @ Q0 @ R0.T
            return sys._replace(a1=T0 @ self.a0 + c0, P1=np.ascontiguousarray(0.5 * (P1 + P1.T)))
        if any(self.stationary):
            return sys._replace(P1=with_stationary(sys.P1, sys.T, sys.R, sys.Q, self.stationary))
        return sys


def _reach(T: np.ndarray, R: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The states that the disturbances ``cols`` reach through the non-zero pattern of T
    (a superset of the states whose variance they feed: only an exact cancellation differs)."""
    hit = np.any(R[:, cols] != 0.0, axis=1)
    frontier = hit
    while frontier.any():
        frontier = np.any(T[:, frontier] != 0.0, axis=1) & ~hit
        hit = hit | frontier
    return hit


def _stationary_blocks(sys, stationary: tuple, free: list[_Group]) -> dict:
    r"""The free scalar variance groups of Q whose share of the stationary block of P1 has
    a closed-form M-step (module notes, "P1 following Q"): ``{group name: (states, L)}``
    with the states of its support :math:`\mathcal S_g` (indices into the state vector)
    and the Cholesky factor L of :math:`\bar P_g` there.

    :math:`\bar P_g` solves :math:`\bar P = T\bar PT' + RE_gR'` (T, R at t = 1, stationary
    states), :math:`E_g` the indicator of the group's entries of Q.  A group qualifies when
    no other non-zero entry of Q (free or fixed) reaches its support and :math:`\bar P_g`
    is numerically non-singular there (smallest eigenvalue above size x machine epsilon x
    largest, as ``numpy.linalg.matrix_rank``); the others keep the M-step without the
    initial term."""
    s = np.flatnonzero(stationary)
    q_groups = [g for g in free if g.matrix == "Q" and not g.full]
    if not s.size or not q_groups:
        return {}
    Ts = sys.T[0][np.ix_(s, s)]
    Rs = sys.R[0][s]
    live = np.flatnonzero(np.diag(sys.Q[0]) != 0.0)  # a full block's diagonal is non-zero
    out = {}
    for g in q_groups:
        idx = np.asarray(g.index)
        support = _reach(Ts, Rs, idx)
        if not support.any():
            continue
        if _reach(Ts, Rs, np.setdiff1d(live, idx))[support].any():
            continue  # another part of Q feeds these states: no closed form
        Pbar = stationary_cov(Ts, Rs[:, idx] @ Rs[:, idx].T)[np.ix_(support, support)]
        ev = np.linalg.eigvalsh(Pbar)
        if ev[0] <= Pbar.shape[0] * np.finfo(float).eps * ev[-1]:
            continue  # singular on its support: no closed form
        out[g.name] = (s[support], np.linalg.cholesky(Pbar))
    return out


# ------------------------------------------------------------------------ E- and M-steps
def _moments(st: _Setup, sys, sm, g: _Group) -> tuple[np.ndarray, float]:
    """Sufficient statistics of a group: S (k x k for a block, else (1, 1)) and the count."""
    n = st.y.shape[0]
    idx = np.asarray(g.index)
    if g.matrix == "Q":
        # eta_t, t = 1..n-1, links alpha_t and alpha_{t+1}, both in the complete data
        hat, var = sm.eta_hat[: n - 1], sm.eta_var[: n - 1]
        if st.before:  # eta_0 links alpha_0 and alpha_1: the disturbance smoother at t = 0
            QR = at_time(sys.Q, 0) @ at_time(sys.R, 0).T
            h0 = QR @ sm.r[0]
            v0 = at_time(sys.Q, 0) - QR @ sm.N[0] @ QR.T
            hat = np.vstack([h0[None], hat])
            var = np.concatenate([v0[None], var])
    else:
        hat, var = sm.eps_hat, sm.eps_var
    if g.full:
        # complete data (alpha, y): E(eps eps'|y) of missing rows is conditional on the
        # observed ones (the smoother fills them in)
        S = np.einsum("ti,tj->ij", hat[:, idx], hat[:, idx]) + var[:, idx][:, :, idx].sum(0)
        return 0.5 * (S + S.T), float(hat.shape[0])
    second = hat[:, idx] ** 2 + var[:, idx, idx]
    if g.matrix == "H":  # complete data (alpha, observed y): only the observed entries count
        mask = st.obs[:, idx]
        return np.array([[second[mask].sum()]]), float(mask.sum())
    return np.array([[second.sum()]]), float(second.size)


def _initial_term(st: _Setup, sys, sm, name: str) -> float:
    r""":math:`\mathrm{tr}(\bar P_g^{-1}M_g)`, :math:`M_g = E[(\alpha_1 - a_1)(\alpha_1 -
    a_1)' \mid y]` on the group's support (module notes), by a Cholesky solve."""
    states, L = st.initial_blocks[name]
    d = sm.a_smooth[0][states] - sys.a1[states]
    M = sm.V[0][np.ix_(states, states)] + np.outer(d, d)
    return float(np.trace(scipy.linalg.cho_solve((L, True), M)))


def _initial_moments(st: _Setup, sys, sm):
    """E and Var of the first complete-data state given y: alpha_0 (a0/P0) or alpha_1."""
    if st.before:
        T0 = at_time(sys.T, 0)
        PT = st.P0 @ T0.T
        return st.a0 + PT @ sm.r[0], st.P0 - PT @ sm.N[0] @ PT.T, st.a0, st.P0
    return sm.a_smooth[0], sm.V[0], sys.a1, sys.P1


def _m_step(st: _Setup, sys, sm):
    """Closed-form M-step for the free groups of H and Q and the initial state."""
    mats = {"H": sys.H.copy(), "Q": sys.Q.copy()}
    for g in st.free:
        S, k = _moments(st, sys, sm, g)
        idx = np.asarray(g.index)
        if g.full:
            try:  # rounding can make S indefinite when a block is tiny next to the rest
                np.linalg.cholesky(S)
            except np.linalg.LinAlgError:
                continue
            mats[g.matrix][0][np.ix_(idx, idx)] = S / k
        else:
            S0 = S[0, 0]
            if g.name in st.initial_blocks:  # its share of P1 (module notes)
                S0 += _initial_term(st, sys, sm, g.name)
                k += st.initial_blocks[g.name][0].size
            if S0 > 0.0:  # (a sum of second moments; <= 0 only by rounding: kept)
                mats[g.matrix][0, idx, idx] = S0 / k
    new = sys._replace(**mats)
    if st.init:
        mean, var, a_old, P_old = _initial_moments(st, sys, sm)
        k = st.known if not st.before else np.ones(mean.size, bool)
        shift = np.where(k, mean - a_old, 0.0)
        a_name, P_name = ("a0", "P0") if st.before else ("a1", "P1")
        a_new, P_new = a_old.copy(), P_old.copy()
        if a_name in st.init:
            a_new = np.where(k, mean, a_old)
        if P_name in st.init:
            block = var[np.ix_(k, k)]
            if a_name not in st.init:
                block = block + np.outer(shift[k], shift[k])
            P_new[np.ix_(k, k)] = 0.5 * (block + block.T)
        if st.before:
            return new, (a_new, P_new)
        new = new._replace(a1=a_new, P1=P_new)
    return new, None


def _gradients(st: _Setup, sys, sm) -> dict:
    r"""The gradient of the log-likelihood at the smoothed point (Fisher's identity, module
    notes): ``{group name: dl/dsigma^2 (float) or dl/dSigma (k x k, symmetric convention
    dl = tr(G dSigma))}``, plus ``"a"``/``"P"`` (the known block) for an estimated initial
    state."""
    grads: dict = {}
    for g in st.free:
        S, k = _moments(st, sys, sm, g)
        idx = np.asarray(g.index)
        A = getattr(sys, g.matrix)[0]
        if g.full:
            grads[g.name] = _cov_grad(A[np.ix_(idx, idx)], S, k)
        else:
            s2 = A[idx[0], idx[0]]
            grads[g.name] = (S[0, 0] - k * s2) / (2.0 * s2 * s2)
    if any(st.stationary) and any(g.matrix == "Q" for g in st.free):
        GQ = _stationary_share(st, sys, sm)
        for g in st.free:
            if g.matrix == "Q":
                idx = np.asarray(g.index)
                share = GQ[np.ix_(idx, idx)] if g.full else np.trace(GQ[np.ix_(idx, idx)])
                grads[g.name] = grads[g.name] + share
    if st.init:
        mean, var, a_old, P_old = _initial_moments(st, sys, sm)
        k = st.known if not st.before else np.ones(mean.size, bool)
        Pk = P_old[np.ix_(k, k)]
        d = (mean - a_old)[k]
        if any(e in st.init for e in ("a1", "a0")):
            grads["a"] = np.linalg.solve(Pk, d)
        if any(e in st.init for e in ("P1", "P0")):
            grads["P"] = _cov_grad(Pk, var[np.ix_(k, k)] + np.outer(d, d), 1.0)
    return grads


def _cov_grad(B: np.ndarray, S: np.ndarray, k: float) -> np.ndarray:
    """-(k B^-1 - B^-1 S B^-1) / 2, the gradient of -(k log|B| + tr(B^-1 S)) / 2."""
    Binv_S = np.linalg.solve(B, S)
    G = -0.5 * np.linalg.solve(B, (k * np.eye(B.shape[0]) - Binv_S).T).T
    return 0.5 * (G + G.T)


def _score(st: _Setup, sys, sm) -> float:
    r"""The largest scaled score at the smoothed point (:func:`_gradients`).

    Scalar variance: :math:`|\sigma^2\,\partial\ell/\partial\sigma^2|`; block
    :math:`\Sigma = LL'`: the largest entry of :math:`|L'(\partial\ell/\partial\Sigma)L|`;
    initial mean: :math:`|\partial\ell/\partial a_i|\sqrt{P_{ii}}`.  Each is the change of
    the log-likelihood per unit relative change of the parameter.
    """
    grads = _gradients(st, sys, sm)
    out = 0.0
    for g in st.free:
        A = getattr(sys, g.matrix)[0]
        idx = np.asarray(g.index)
        if g.full:
            L = np.linalg.cholesky(A[np.ix_(idx, idx)])
            out = max(out, float(np.abs(L.T @ grads[g.name] @ L).max()))
        else:
            out = max(out, abs(float(grads[g.name]) * A[idx[0], idx[0]]))
    if st.init:
        _, _, _, P_old = _initial_moments(st, sys, sm)
        k = st.known if not st.before else np.ones(P_old.shape[0], bool)
        Pk = P_old[np.ix_(k, k)]
        if "a" in grads:
            out = max(out, float(np.max(np.abs(grads["a"]) * np.sqrt(np.diag(Pk)))))
        if "P" in grads:
            L = np.linalg.cholesky(Pk)
            out = max(out, float(np.abs(L.T @ grads["P"] @ L).max()))
    return out


def _stationary_share(st: _Setup, sys, sm) -> np.ndarray:
    """The part of dl/dQ that flows through the stationary block of P1 (module notes)."""
    s = np.flatnonzero(st.stationary)
    P = sys.P1[np.ix_(s, s)]
    d = sm.a_smooth[0][s] - sys.a1[s]
    E = sm.V[0][np.ix_(s, s)] + np.outer(d, d)
    G = -0.5 * np.linalg.solve(P, (np.eye(s.size) - np.linalg.solve(P, E)).T).T
    Ts = sys.T[0][np.ix_(s, s)]
    Lam = scipy.linalg.solve_discrete_lyapunov(Ts.T, 0.5 * (G + G.T))
    Rs = sys.R[0][s]
    return Rs.T @ Lam @ Rs


# ------------------------------------------------------------------ parameter vector (SQUAREM)
def _pack(st: _Setup, sys, init) -> tuple[np.ndarray, np.ndarray]:
    r"""The free parameters as an unconstrained vector (log variances, log-Cholesky blocks,
    initial means; SQUAREM extrapolates here, so every point it proposes is feasible) and
    the scale of each for the step test: 1 for a log (a relative change), the diagonal of
    L for an entry below it, :math:`|a_i| + \sqrt{P_{ii}}` for an initial mean."""
    parts, scales = [], []

    def chol(B):
        x = _logchol(B)
        k = B.shape[0]
        rows, _ = np.tril_indices(k, -1)
        parts.append(x)
        scales.append(np.concatenate([np.ones(k), np.exp(x[:k])[rows]]))

    for g in st.free:
        A = getattr(sys, g.matrix)[0]
        idx = np.asarray(g.index)
        if g.full:
            chol(A[np.ix_(idx, idx)])
        else:
            parts.append([np.log(A[idx[0], idx[0]])])
            scales.append([1.0])
    if st.init:
        a, P = init if st.before else (sys.a1, sys.P1)
        k = st.known if not st.before else np.ones(a.size, bool)
        if any(e in st.init for e in ("a1", "a0")):
            parts.append(a[k])
            scales.append(np.abs(a[k]) + np.sqrt(np.diag(P)[k]))
        if any(e in st.init for e in ("P1", "P0")):
            chol(P[np.ix_(k, k)])
    if not parts:
        return np.zeros(0), np.zeros(0)
    return (np.concatenate([np.ravel(p) for p in parts]),
            np.concatenate([np.ravel(p) for p in scales]))


def _unpack(st: _Setup, sys, init, theta: np.ndarray):
    mats = {"H": sys.H.copy(), "Q": sys.Q.copy()}
    j = 0
    for g in st.free:
        idx = np.asarray(g.index)
        if g.full:
            q = len(idx) * (len(idx) + 1) // 2
            mats[g.matrix][0][np.ix_(idx, idx)] = _from_logchol(theta[j:j + q], len(idx))
            j += q
        else:
            mats[g.matrix][0, idx, idx] = np.exp(theta[j])
            j += 1
    new = sys._replace(**mats)
    if st.init:
        a, P = (init if st.before else (sys.a1, sys.P1))
        a, P = a.copy(), P.copy()
        k = st.known if not st.before else np.ones(a.size, bool)
        if any(e in st.init for e in ("a1", "a0")):
            a[k] = theta[j:j + k.sum()]
            j += int(k.sum())
        if any(e in st.init for e in ("P1", "P0")):
            q = int(k.sum() * (k.sum() + 1) // 2)
            P[np.ix_(k, k)] = _from_logchol(theta[j:j + q], int(k.sum()))
        if st.before:
            return new, (a, P)
        new = new._replace(a1=a, P1=P)
    return new, init


def _logchol(B: np.ndarray) -> np.ndarray:
    L = np.linalg.cholesky(B)
    rows, cols = np.tril_indices(B.shape[0], -1)
    return np.concatenate([np.log(np.diag(L)), L[rows, cols]])


def _from_logchol(x: np.ndarray, k: int) -> np.ndarray:
    L = np.diag(np.exp(x[:k]))
    rows, cols = np.tril_indices(k, -1)
    L[rows, cols] = x[k:]
    B = L @ L.T
    return 0.5 * (B + B.T)


def _params(sys, groups: list[_Group]) -> dict:
    out = {}
    for g in groups:
        A = getattr(sys, g.matrix)[0]
        idx = np.asarray(g.index)
        out[g.name] = A[np.ix_(idx, idx)].copy() if g.full else float(A[idx[0], idx[0]])
    return out


# -------------------------------------------------------------------------------- driver
class _Runner:
    """The EM map and the likelihood at a point, with a count of EM-map evaluations."""

    def __init__(self, st: _Setup):
        self.st = st
        self.n_em = 0

    def point(self, sys, init):
        """(sys, init, filter, smoother) at a point; the initial state follows T, R, Q."""
        if self.st.before:
            self.st.a0, self.st.P0 = init
        sys = self.st.with_initial(sys)
        f = filter_arrays(sys, self.st.y)
        return sys, init, f, smooth_arrays(sys, f)

    def loglike(self, sys, init) -> float:
        """Log-likelihood only (-inf where the filter fails)."""
        if self.st.before:
            a0, P0 = self.st.a0, self.st.P0
            self.st.a0, self.st.P0 = init
        try:
            s = self.st.with_initial(sys)
            return float(filter_arrays(s, self.st.y).llf)
        except (ValueError, np.linalg.LinAlgError):
            return -np.inf
        finally:
            if self.st.before:
                self.st.a0, self.st.P0 = a0, P0

    def em_map(self, sys, init, sm):
        self.n_em += 1
        new, new_init = _m_step(self.st, sys, sm)
        return new, (new_init if new_init is not None else init)


def _escape(run: _Runner, sys, init, sm, ll: float):
    """Jump steps for the variances EM moves slowly, near zero: each free variance (block)
    whose score says it should grow is multiplied by 10, 100, 1000, ... and the best point
    kept (the scan crosses the flat stretch where the variance is negligible and stops once
    the likelihood has fallen 1 below its best), and each that should shrink is divided by
    10, 100, ... while the likelihood increases (a maximum at the boundary, which EM
    approaches sublinearly).  Returns the best point and whether
    one was accepted.  Monotone by construction; an exact (structural) zero is not a free
    parameter and stays zero, and no variance is set to zero."""
    st = run.st
    moved = False
    for g in st.free:
        S, k = _moments(st, sys, sm, g)
        idx = np.asarray(g.index)
        A = getattr(sys, g.matrix)[0]
        if g.full:
            B = A[np.ix_(idx, idx)]
            direction = np.trace(np.linalg.solve(B, S)) - k * len(idx)  # 2 tr(G B)
        else:
            B = A[idx[0], idx[0]]
            direction = S[0, 0] / B - k  # 2 sigma^2 dl/dsigma^2
        if direction == 0.0 or not np.isfinite(direction):
            continue
        best, best_ll = None, ll
        thr = 1e-12 * max(1.0, abs(ll))
        for j in range(1, _PROBE_STEPS + 1):
            scaled = B * 10.0 ** j if direction > 0 else B / 10.0 ** j
            diag = np.diag(np.atleast_2d(scaled))
            if diag.min() < _SMALLEST or diag.max() > 1.0 / _SMALLEST:
                break
            mats = {g.matrix: getattr(sys, g.matrix).copy()}
            if g.full:
                mats[g.matrix][0][np.ix_(idx, idx)] = scaled
            else:
                mats[g.matrix][0, idx, idx] = scaled
            cand = sys._replace(**mats)
            c_ll = run.loglike(cand, init)
            if c_ll > best_ll + thr:
                best, best_ll = cand, c_ll
            elif direction < 0 or c_ll < best_ll - 1.0:
                # shrinking: no gain any more; growing: past the best (a flat stretch, where
                # the variance is negligible, is crossed: that is the trap)
                break
        if best is not None:
            sys, ll, moved = best, best_ll, True
            sys, init, _, sm = run.point(sys, init)
    return sys, init, moved


def _monotone(run: _Runner, sys0, init0, ll0: float, sys1, init1, ll1: float):
    """The safeguard of every step: a point whose log-likelihood is below ``ll0`` (beyond
    rounding, 1e-10 relative) is pulled back towards the start (halving the step in the
    packed parameters, 5 times); returns the accepted ``(sys, init)`` or None.  (The
    M-step is exact for H and Q, so an EM step is monotone; it need not be when P1 follows
    Q through a stationary block whose share the M-step cannot take in closed form, module
    notes.)"""
    if ll1 >= ll0 - 1e-10 * max(1.0, abs(ll0)):
        return sys1, init1
    st = run.st
    theta0, theta1 = _pack(st, sys0, init0)[0], _pack(st, sys1, init1)[0]
    lam = 0.5
    for _ in range(5):
        cand, cinit = _unpack(st, sys0, init0, theta0 + lam * (theta1 - theta0))
        if run.loglike(cand, cinit) >= ll0:
            return cand, cinit
        lam /= 2.0
    return None


def fit_em(
    y: Any,
    initial_model: StateSpaceModel,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    gtol: float = 1e-6,
    estimate: tuple[str, ...] | list[str] = ("H", "Q"),
    fixed: dict | None = None,
    covariance: str = "structure",
    accelerate: str | None = "squarem",
    convention: str = "statsmodels",
    callback: Any = None,
) -> EMResult:
    r"""Estimate the variances of a model by the EM algorithm (NumPy engine).

    Each iteration runs the Kalman filter and the state and disturbance smoother (E-step) and
    sets every free variance to its closed-form maximiser (M-step; formulas in the module
    docstring).  The model's structure is kept: zero variances stay zero, entries linked by a
    non-zero covariance are estimated as one full block, disturbances tied by a component
    (e.g. all of a trigonometric seasonal's) share one variance.  A diagonal H is updated from
    the observed entries only; a full H block treats missing entries as part of the complete
    data.  A scalar variance of Q that alone feeds a block of stationary states (whose
    :math:`P_1` solves :math:`P = TPT' + RQR'`) is updated with that block's share,
    :math:`\hat\sigma^2_g = (S_g + \mathrm{tr}(\bar P_g^{-1}M_g))/(k_g + m_g)` with
    :math:`\bar P_g` the solution for :math:`\sigma^2_g = 1` on the block's :math:`m_g`
    states and :math:`M_g` the smoothed second moment of :math:`\alpha_1 - a_1` there
    (module notes); where other parts of Q feed the same stationary states the share is
    left out of the M-step and EM may stop short (``converged`` False, with the score).
    The log-likelihood never decreases.  Z and T are not estimated.  When rounding
    makes the update of a variance that is already negligible (about 1e-16 of the rest)
    non-positive, or of a block indefinite, that parameter keeps its value for the step.

    **Convergence is checked, not assumed.**  EM steps near a variance of zero are tiny
    (the update of :math:`\sigma^2` is about :math:`\sigma^2 + \sigma^4\,\partial\ell/
    \partial\sigma^2`), so a small change of the parameters does not mean a maximum.  The
    result is ``converged`` only when (i) the last step moved every estimate by at most
    ``tol`` relative, (ii) the scaled score (the change of the log-likelihood per relative
    change of each parameter, from Fisher's identity, module notes) is at most
    ``gtol * max(1, |loglik|)``, and (iii) no *jump step* increases the likelihood: each
    free variance whose score is positive is multiplied by 10, 100, 1000, ... (the scan
    crosses the flat stretch where the variance is negligible, the trap of a small start,
    and keeps the best point), each whose score is negative is divided by 10, 100, ...
    while the likelihood increases (a maximum on the boundary, which EM approaches
    sublinearly).  Jump steps are tried at each candidate stop and every 10 iterations;
    each accepted one is an iteration of its own and never decreases the likelihood.  Only
    an exact zero is a structural zero: it stays zero, and no step sets a variance to zero
    (a variance on the boundary ends tiny, as in :func:`fit_mle`).

    Parameters
    ----------
    y : (n,) or (n, p) array_like, Series or DataFrame
        Observations, NaN for missing.
    initial_model : StateSpaceModel
        A numeric model: the starting values and the structure to keep.
    max_iter : int, default 100
        Maximum number of iterations.
    tol : float, default 1e-6
        Largest relative change of an estimate in the last iteration at convergence.
    gtol : float, default 1e-6
        Largest scaled score at convergence, relative to ``max(1, |loglik|)``.
    estimate : sequence of {"H", "Q", "a1", "P1", "a0", "P0"}, default ("H", "Q")
        Which matrices to update.  ``a1``/``P1`` only on states with a known (neither diffuse
        nor stationary) initial distribution; ``a0``/``P0`` for a model whose initial state
        sits one step before the first observation (``StateSpaceModel(a0=..., P0=...)``).
    fixed : dict, optional
        Parameters held at given values, by the names of :attr:`EMResult.params`, e.g.
        ``{"sigma2.obs": 15099.0}`` (a matrix for a covariance block).
    covariance : {"structure", "full"}, default "structure"
        "structure" keeps the start's pattern of zeros and ties; "full" estimates one full
        covariance block for each of H and Q over its non-zero diagonal entries, from any
        positive-definite start (a diagonal one included).
    accelerate : {"squarem", None}, default "squarem"
        None: plain EM, one M-step per iteration; it converges linearly and needed 157 to
        1022 iterations to the default ``tol`` on the Nile local level and trend +
        seasonal(12) of the airline and UK drivers data (docs/estimation.md has the table),
        so the default ``max_iter`` stops it short.  "squarem" (13 to 31 cycles, 26 to 60 EM
        steps there): the squared extrapolation of Varadhan and Roland (2008, scheme SqS3), on
        log variances and log-Cholesky factors (so every proposed point is feasible).  Its
        monotonicity safeguard: a cycle makes two EM steps :math:`\theta_1, \theta_2` from
        :math:`\theta_0` and proposes :math:`\theta_0 - 2\alpha r + \alpha^2 v`
        (:math:`r = \theta_1 - \theta_0`, :math:`v = \theta_2 - 2\theta_1 + \theta_0`,
        :math:`\alpha = -\|r\|/\|v\|`, at most -1); the proposal is accepted only when its
        log-likelihood is at least that of :math:`\theta_2`, else :math:`\alpha \leftarrow
        (\alpha - 1)/2` (towards -1, where the proposal is :math:`\theta_2`) up to 5 times,
        then :math:`\theta_2` itself.  So each cycle ends no lower than two EM steps.
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        Log-likelihood convention of the reported values (:func:`pymc_dlm.kalman_filter`).
    callback : callable, optional
        Called as ``callback(iteration, log_likelihood)`` after every iteration (progress
        display, e.g. the command line's).

    Returns
    -------
    EMResult

    Raises
    ------
    ValueError
        Unknown entries in ``estimate`` or ``fixed``, unknown options, time-varying H or Q,
        no free variance to estimate; data that cannot identify the model
        (:func:`~pymc_dlm.estimation.checks.check_data`).
    TypeError
        A model with symbolic entries.

    References
    ----------
    Varadhan, R. and Roland, C. (2008). Simple and globally convergent methods for
    accelerating the convergence of any EM algorithm. *Scand. J. Statist.* 35, 335-353.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.estimation import fit_em
    >>> res = fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(10.0, 10.0), max_iter=2000,
    ...              tol=1e-10)
    >>> round(res.params["sigma2.obs"]), round(res.params["sigma2.level"]), res.converged
    (15099, 1469, True)
    """
    if not isinstance(initial_model, StateSpaceModel):
        raise TypeError(f"initial_model must be a StateSpaceModel; got {type(initial_model).__name__}")
    if not initial_model.is_numeric:
        raise TypeError("fit_em needs a numeric initial_model (no PyTensor/PyMC entries); "
                        "use fit_mle or pm.find_MAP for symbolic parameterisations")
    estimate = (estimate,) if isinstance(estimate, str) else tuple(estimate)
    for e in estimate:
        check_option("estimate", e, _ESTIMABLE)
    check_option("covariance", covariance, _COVARIANCE)
    check_option("accelerate", accelerate, _ACCELERATE)
    check_option("convention", convention, CONVENTIONS)
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0; got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0; got {tol!r}")
    if not gtol >= 0:
        raise ValueError(f"gtol must be >= 0; got {gtol!r}")
    model = initial_model
    before = getattr(model, "a0", None) is not None
    if before and {"a1", "P1"} & set(estimate):
        raise ValueError("the model's initial state is given one step before y_1 (a0, P0): "
                         "estimate a0/P0, not a1/P1")
    if not before and {"a0", "P0"} & set(estimate):
        raise ValueError("a0/P0 can only be estimated for a model with an initial state one "
                         "step before y_1 (StateSpaceModel(a0=..., P0=...))")
    groups = variance_groups(model, estimate, covariance)
    init_est = {"a1", "P1", "a0", "P0"} & set(estimate)
    fixed = dict(fixed or {})
    names = [g.name for g in groups]
    for name in fixed:
        if name not in names:
            raise ValueError(f"fixed names an unknown parameter {name!r}; the parameters are "
                             f"{names}")
    if not [g for g in groups if g.name not in fixed] and not init_est:
        raise ValueError(
            f"the model has no free variance in {estimate}: every variance there is zero "
            "(zeros are kept as structural) or fixed"
        )
    y_arr, _ = prepare_y(model, y)
    check_data(y_arr, n_params=sum(g.n_free for g in groups if g.name not in fixed),
               n_diffuse=int(np.sum(model.diffuse)))
    known = np.array([not (d or s) for d, s in zip(model.diffuse, model.stationary, strict=True)])
    if {"a1", "P1"} & init_est and not known.any():
        raise ValueError("a1/P1 can only be estimated for states with a known initial "
                         "distribution; every state is diffuse or stationary")
    sys = system_arrays(model)
    sys = sys._replace(H=sys.H.copy(), Q=sys.Q.copy())
    for name, value in fixed.items():
        g = groups[names.index(name)]
        idx = np.asarray(g.index)
        val = np.asarray(value, dtype=np.float64)
        A = getattr(sys, g.matrix)
        if g.full:
            if val.shape != (len(idx), len(idx)):
                raise ValueError(f"fixed[{name!r}] must be a ({len(idx)}, {len(idx)}) matrix; "
                                 f"got shape {val.shape}")
            A[0][np.ix_(idx, idx)] = val
        else:
            if val.ndim != 0 or not np.isfinite(val) or val < 0:
                raise ValueError(f"fixed[{name!r}] must be a variance >= 0; got {value!r}")
            A[0, idx, idx] = float(val)
    st = _Setup(model, y_arr, groups, set(fixed), estimate, sys)
    run = _Runner(st)
    init = (st.a0, st.P0) if before else None
    with threadpool_limits(1):
        sys, init, f, sm = run.point(sys, init)
        shift = 0.5 * LOG2PI * f.n_diffuse_obs if convention == "kfas" else 0.0
        history = [f.llf]
        it, converged, message = 0, False, f"stopped at max_iter = {max_iter}"
        step_small = False
        cycle_max = 1.0
        while True:
            ll = history[-1]
            score = _score(st, sys, sm)
            bound = gtol * max(1.0, abs(ll))
            candidate = step_small and score <= bound  # a candidate stop
            jump = None
            if candidate or (it < max_iter and it % _PROBE_EVERY == _PROBE_EVERY - 1):
                sys_e, init_e, moved = _escape(run, sys, init, sm, ll)
                if moved:
                    jump = (sys_e, init_e)
                elif candidate:
                    converged, message = True, (f"stationary point: relative step <= {tol:g}, "
                                                f"scaled score {score:.3g} <= {bound:.3g}")
                    break
            if it >= max_iter:
                message += f" (scaled score {score:.3g} {'>' if score > bound else '<='} " \
                           f"{bound:.3g})"
                break
            if jump is not None:  # an accepted jump step is an iteration of its own
                point = run.point(*jump)
                step_small = False
            else:
                theta0, scale = _pack(st, sys, init)
                if accelerate == "squarem":
                    sys_new, init_new, cycle_max = _squarem_cycle(run, sys, init, sm, ll,
                                                                  cycle_max)
                else:
                    sys_new, init_new = run.em_map(sys, init, sm)
                point = run.point(sys_new, init_new)
                ok = _monotone(run, sys, init, ll, point[0], point[1], point[2].llf)
                if ok is None:
                    message = ("stopped: no step along the EM direction increases the "
                               f"log-likelihood (scaled score {score:.3g}, bound {bound:.3g})")
                    break
                if ok[0] is not point[0]:
                    point = run.point(*ok)
                step_small = bool(np.all(np.abs(_pack(st, point[0], point[1])[0] - theta0)
                                         <= tol * scale))
            sys, init, f, sm = point
            history.append(f.llf)
            it += 1
            if callback is not None:
                callback(it, f.llf + shift)
    w = int(np.sum(model.diffuse))
    k = sum(g.n_free for g in groups if g.name not in fixed)
    fields = {m: sys_m[0] for m, sys_m in (("H", sys.H), ("Q", sys.Q)) if m in estimate}
    if before:
        if init_est:
            fields.update(a0=init[0], P0=init[1])
    else:
        fields.update({m: getattr(sys, m) for m in ("a1", "P1") if m in estimate})
        if "P1" in fields:  # the stationary block is recomputed by the engine, not stored
            fields["P1"] = np.where(np.outer(known, known), fields["P1"], 0.0)
    hist = np.asarray(history) + shift
    params = _params(sys, groups)
    return EMResult(
        model=model.replace(**fields), params=params,
        log_likelihood=float(hist[-1]), log_likelihood_history=hist,
        converged=converged, n_iter=it, nobs=int(f.nobs), df_model=k + w, data=y,
        max_score=float(_score(st, sys, sm)), message=message, convention=convention,
        n_em_steps=run.n_em, n_diffuse_obs=int(f.n_diffuse_obs),
        boundary=tuple(g.name for g in st.free if not g.full
                       and params[g.name] < SMALL_VARIANCE * data_scale(y_arr)),
    )


def _squarem_cycle(run: _Runner, sys0, init0, sm0, ll0: float, step_max: float):
    """One SQUAREM cycle (SqS3 with the monotonicity safeguard of :func:`fit_em`); returns
    the accepted point and the updated largest step length (Varadhan and Roland's
    ``step.max``, multiplied by 4 each time it is reached)."""
    st = run.st
    theta0 = _pack(st, sys0, init0)[0]
    sys1, init1 = run.em_map(sys0, init0, sm0)
    sys1, init1, _, sm1 = run.point(sys1, init1)
    sys2, init2 = run.em_map(sys1, init1, sm1)
    ll2 = run.loglike(sys2, init2)
    theta1, theta2 = _pack(st, sys1, init1)[0], _pack(st, sys2, init2)[0]
    r = theta1 - theta0
    v = theta2 - 2.0 * theta1 + theta0
    nv = np.linalg.norm(v)
    if nv == 0.0 or not np.isfinite(ll2):
        return sys2, init2, step_max
    alpha = max(-np.linalg.norm(r) / nv, -step_max)
    if alpha > -1.0:
        return sys2, init2, step_max
    if alpha == -step_max:
        step_max *= 4.0
    for _ in range(5):
        cand, cinit = _unpack(st, sys0, init0, theta0 - 2.0 * alpha * r + alpha * alpha * v)
        if run.loglike(cand, cinit) >= ll2:
            return cand, cinit, step_max
        alpha = (alpha - 1.0) / 2.0
        if alpha > -1.0:
            break
    return sys2, init2, step_max
