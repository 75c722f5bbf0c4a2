r"""The stepwise Kalman procedure: one stage at a time, unknown scale sigma^2.

The classic ``KALMAN`` routine of IMSL / PV-WAVE (Sallas and Harville 1981; Harvey 1981,
section 4.2), driven by the user one stage at a time.  Stage :math:`k` of the model is

.. math::

    y_k = Z_k b_k + e_k, \qquad b_{k+1} = T_{k+1} b_k + w_{k+1}, \qquad
    \operatorname{Var}(e_k) = \sigma^2 R_k, \quad \operatorname{Var}(w_k) = \sigma^2 Q_k,

with :math:`\sigma^2 > 0` unknown; ``covb`` is the MSE matrix of ``b`` divided by
:math:`\sigma^2`.  Because every covariance carries the same factor :math:`\sigma^2`, the
recursion for ``b`` and ``covb`` is the ordinary Kalman filter with :math:`\sigma^2 = 1`
(Durbin and Koopman 2012, eqs. 4.24-4.26 for the update, 4.21 for the prediction) and runs
on the same numba kernels as :func:`pymc_dlm.kalman_filter`.  Three accumulators carry the
likelihood: ``n`` (the rank of the observations' covariance so far), ``ss`` (the generalized
sum of squares :math:`\sum_k v_k' \mathrm{covv}_k^{-} v_k`) and ``alndet`` (the log of the
product of the non-zero eigenvalues of the ``covv_k``, i.e. :math:`\sum_k \log|\mathrm{covv}_k|`
when every one is non-singular).  A singular ``covv`` is handled with the Moore-Penrose inverse
as Rao (1973, pp. 527-528) describes.

With these, :math:`-2 \log L(\theta, \sigma^2) = n \log(2\pi\sigma^2) + \mathrm{alndet} +
\mathrm{ss}/\sigma^2`, maximised over :math:`\sigma^2` at :math:`\hat\sigma^2 = \mathrm{ss}/n`,
which leaves the concentrated :math:`-2L_c = n \log(\mathrm{ss}/n) + \mathrm{alndet}` (Harvey
1981, eq. 2.21, without the constant :math:`n(1 + \log 2\pi)`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ..spec.validate import check_covariance, check_finite
from .filter import TOL
from .kernels import LOG2PI, forecast_moments, observed_rows, predict, update

__all__ = [
    "KalmanState",
    "SequenceResult",
    "StepResult",
    "concentrated_neg2_loglik",
    "kalman",
    "kalman_sequence",
    "neg2_loglik",
    "predict_ahead",
]


@njit(cache=True)
def _update_stage(b, covb, y, z, r, tol):  # pragma: no cover - compiled
    q = b.shape[0]
    p = y.shape[0]
    v = np.empty(p)
    covv = np.empty((p, p))
    M = np.empty((q, p))
    idx = np.empty(p, dtype=np.int64)
    k = observed_rows(y, idx)
    forecast_moments(b, covb, z, np.zeros(p), r, v, covv, M, y)
    b_out = np.empty(q)
    covb_out = np.empty((q, q))
    status, rank, logdet, ss = update(
        b, covb, v, covv, M, idx, k, tol, b_out, covb_out, np.empty((0, 0)),
        np.empty((p, p)), np.empty((p, q)), np.empty(p),
    )
    return b_out, covb_out, v, covv, rank, logdet, ss


@njit(cache=True)
def _predict_stage(b, covb, t, q):  # pragma: no cover - compiled
    m = b.shape[0]
    b_out = np.empty(m)
    covb_out = np.empty((m, m))
    predict(b, covb, t, np.zeros(m), q, b_out, covb_out, np.empty((m, m)))
    return b_out, covb_out


def _as_matrix(name: str, x: Any, shape: tuple[int | None, int | None]) -> np.ndarray:
    """A float (rows, cols) copy of x; scalars and 1-element arrays become (1, 1)."""
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric; could not convert: {err}") from err
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim == 1 and shape[1] == 1:
        arr = arr[:, None]
    elif arr.ndim == 1 and shape[0] == 1:
        arr = arr[None, :]
    want = tuple("?" if s is None else s for s in shape)
    if arr.ndim != 2 or any(w is not None and g != w for g, w in zip(arr.shape, shape, strict=True)):
        raise ValueError(f"{name} must have shape ({want[0]}, {want[1]}); got {arr.shape}")
    return arr


@dataclass(frozen=True)
class KalmanState:
    r"""The carried state of the stepwise procedure.

    Parameters
    ----------
    b : (q,) array_like
        Estimate of the state vector.
    covb : (q, q) array_like
        Its mean squared error matrix divided by :math:`\sigma^2` (symmetric PSD).
    n : int, default 0
        Rank of the observations' covariance accumulated so far.
    ss : float, default 0
        Generalized sum of squares :math:`\sum_k v_k' \mathrm{covv}_k^{-} v_k`.
    alndet : float, default 0
        Log of the product of the non-zero eigenvalues of the ``covv_k`` so far.

    Attributes
    ----------
    sigma2_hat : float
        :math:`\mathrm{ss}/n`, the maximum likelihood estimate of :math:`\sigma^2` (NaN while n = 0).

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> s = dlm.KalmanState(b=[4.0], covb=[[16.0]])
    >>> s.b, s.covb, s.n
    (array([4.]), array([[16.]]), 0)
    """

    b: np.ndarray
    covb: np.ndarray
    n: int = 0
    ss: float = 0.0
    alndet: float = 0.0

    def __post_init__(self) -> None:
        b = np.array(self.b, dtype=np.float64)
        if b.ndim == 0:
            b = b.reshape(1)
        if b.ndim != 1:
            raise ValueError(f"b must be a vector (q,); got shape {b.shape}")
        covb = _as_matrix("covb", self.covb, (b.shape[0], b.shape[0]))
        check_finite("b", b)
        check_covariance("covb", covb)
        if int(self.n) != self.n or self.n < 0:
            raise ValueError(f"n must be a non-negative integer; got {self.n!r}")
        if not (np.isfinite(self.ss) and self.ss >= 0):
            raise ValueError(f"ss must be a finite number >= 0; got {self.ss!r}")
        if not np.isfinite(self.alndet):
            raise ValueError(f"alndet must be finite; got {self.alndet!r}")
        b.flags.writeable = False
        covb.flags.writeable = False
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "covb", covb)
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "ss", float(self.ss))
        object.__setattr__(self, "alndet", float(self.alndet))

    @property
    def q(self) -> int:
        """Number of states."""
        return self.b.shape[0]

    @property
    def sigma2_hat(self) -> float:
        """ss / n, the maximum likelihood estimate of sigma^2 (NaN while n = 0)."""
        return self.ss / self.n if self.n > 0 else math.nan


@dataclass(frozen=True)
class StepResult:
    """What one call of :func:`kalman` returns.

    Attributes
    ----------
    state : KalmanState
        The new state: after the update, or after the prediction when one was asked for.
    v : (n_k,) ndarray or None
        The update's one-step prediction error :math:`y_k - Z_k b_{k|k-1}` (None without update).
    covv : (n_k, n_k) ndarray or None
        Its covariance divided by :math:`\\sigma^2`: :math:`Z_k C_{k|k-1} Z_k' + R_k`.
    filtered : KalmanState or None
        The state right after the update (before any prediction), None without update.
    rank : int
        Rank of ``covv`` used by the update (0 without update).
    """

    state: KalmanState
    v: np.ndarray | None = None
    covv: np.ndarray | None = None
    filtered: KalmanState | None = None
    rank: int = 0


def kalman(
    state: KalmanState,
    *,
    y: Any = None,
    z: Any = None,
    r: Any = None,
    t: Any = None,
    q: Any = None,
    tol: float | None = None,
) -> StepResult:
    r"""One stage of the Kalman procedure: an update, a prediction, or the update then the prediction.

    Update (``y``, ``z`` and ``r`` together; D&K 2012 eqs. 4.24-4.26 with :math:`\sigma^2` factored out):

    .. math::

        v = y_k - Z_k b, \quad \mathrm{covv} = Z_k C Z_k' + R_k, \quad
        b \leftarrow b + C Z_k' \mathrm{covv}^{-} v, \quad
        C \leftarrow C - C Z_k' \mathrm{covv}^{-} Z_k C,

    and ``n += rank(covv)``, ``ss += v' covv^- v``, ``alndet += log pdet(covv)``, where
    :math:`\mathrm{covv}^{-}` is the inverse, or the Moore-Penrose inverse when ``covv`` is
    singular (rank and pseudo-determinant from the eigenvalues above ``tol`` times the
    largest; Rao 1973, pp. 527-528).  NaN entries of ``y`` are missing: only the observed rows
    enter the update.

    Prediction (``t`` and/or ``q``; D&K eq. 4.21): :math:`b \leftarrow T b`,
    :math:`C \leftarrow T C T' + Q`; T defaults to the identity and Q to zero.

    Parameters
    ----------
    state : KalmanState
        The state before this stage; never modified.
    y : (n_k,) array_like, optional
        Observations of the stage (n_k may change from stage to stage).
    z : (n_k, q) array_like, optional
        Design matrix Z_k.
    r : (n_k, n_k) array_like, optional
        :math:`\operatorname{Var}(e_k)/\sigma^2`, symmetric PSD.
    t : (q, q) array_like, optional
        Transition matrix T_{k+1}.
    q : (q, q) array_like, optional
        :math:`\operatorname{Var}(w_{k+1})/\sigma^2`, symmetric PSD.
    tol : float, optional
        Eigenvalues of ``covv`` at or below ``tol`` times the largest count as zero; default
        100 machine epsilons.  (A Cholesky factorisation is tried first; its failure, a pivot
        at or below ``tol`` times the largest diagonal entry, sends the step to the
        eigendecomposition.)

    Returns
    -------
    StepResult

    Raises
    ------
    ValueError
        Neither an update nor a prediction asked for; ``y`` without ``z`` and ``r`` (or the
        reverse); shapes that disagree (the message names the argument and both shapes); a
        non-symmetric or indefinite ``r`` or ``q``; inf in ``y``.

    Examples
    --------
    Harvey (1981, pp. 116-117), first stage:

    >>> import pymc_dlm as dlm
    >>> s = dlm.KalmanState(b=4.0, covb=16.0)
    >>> step = dlm.kalman(s, y=4.4, z=1.0, r=1.0, t=1.0, q=4.0)
    >>> step.filtered.b.round(3), step.filtered.covb.round(3), step.v.round(3), step.covv
    (array([4.376]), array([[0.941]]), array([0.4]), array([[17.]]))
    >>> step.state.covb.round(3), step.state.n, round(step.state.alndet, 3)
    (array([[4.941]]), 1, 2.833)
    """
    tol = TOL if tol is None else float(tol)
    if not (tol >= 0):
        raise ValueError(f"tol must be a number >= 0; got {tol!r}")
    upd = [a is not None for a in (y, z, r)]
    if any(upd) and not all(upd):
        missing = [nm for nm, given in zip(("y", "z", "r"), upd, strict=True) if not given]
        raise ValueError(f"an update needs y, z and r together; missing {', '.join(missing)}")
    do_update, do_predict = all(upd), (t is not None or q is not None)
    if not (do_update or do_predict):
        raise ValueError("nothing to do: give y, z and r for an update and/or t, q for a prediction")
    nq = state.q
    result: dict[str, Any] = {}
    cur = state
    if do_update:
        if np.ndim(y) > 1:
            raise ValueError(f"y must be a vector (n_k,); got shape {np.shape(y)}")
        y_arr = np.array(y, dtype=np.float64).reshape(-1)
        if np.any(np.isinf(y_arr)):
            raise ValueError(f"y must not contain inf (NaN marks a missing value); got {y_arr}")
        nk = y_arr.shape[0]
        z_arr = _as_matrix("z", z, (nk, nq))
        r_arr = _as_matrix("r", r, (nk, nk))
        check_finite("z", z_arr)
        check_covariance("r", r_arr)
        b, covb, v, covv, rank, logdet, ss = _update_stage(cur.b, cur.covb, y_arr, z_arr, r_arr, tol)
        cur = KalmanState(b, covb, cur.n + rank, cur.ss + ss, cur.alndet + logdet)
        result.update(v=v, covv=covv, filtered=cur, rank=int(rank))
    if do_predict:
        t_arr = np.eye(nq) if t is None else _as_matrix("t", t, (nq, nq))
        q_arr = np.zeros((nq, nq)) if q is None else _as_matrix("q", q, (nq, nq))
        check_finite("t", t_arr)
        check_covariance("q", q_arr)
        b, covb = _predict_stage(cur.b, cur.covb, t_arr, q_arr)
        cur = KalmanState(b, covb, cur.n, cur.ss, cur.alndet)
    return StepResult(state=cur, **result)


def concentrated_neg2_loglik(state: KalmanState) -> float:
    r"""The concentrated :math:`-2L_c = n \log(\mathrm{ss}/n) + \mathrm{alndet}` (Harvey 1981, eq. 2.21).

    This is :math:`-2 \log L` at :math:`\hat\sigma^2 = \mathrm{ss}/n` without the constant
    :math:`n (1 + \log 2\pi)`; minimise it over the parameters of the per-stage matrices.

    Parameters
    ----------
    state : KalmanState
        The state after the last stage.

    Returns
    -------
    float

    Examples
    --------
    Harvey's (1981) four stages: n = 4, ss = 0.2604, alndet = 8.1412:

    >>> import pymc_dlm as dlm
    >>> res = dlm.kalman_sequence(dlm.KalmanState(4.0, 16.0), [4.4, 4.0, 3.5, 4.6],
    ...                           z=1.0, r=1.0, t=1.0, q=4.0)
    >>> round(dlm.concentrated_neg2_loglik(res.state), 3)
    -2.786
    """
    if state.n <= 0:
        raise ValueError(f"the concentrated likelihood needs n > 0 observations; got n = {state.n}")
    if state.ss <= 0:
        raise ValueError("the concentrated likelihood needs ss > 0 (a perfect fit has no finite -2Lc)")
    return state.n * math.log(state.ss / state.n) + state.alndet


def neg2_loglik(state: KalmanState, sigma2: float) -> float:
    r"""The full :math:`-2\log L(\theta, \sigma^2) = n \log(2\pi\sigma^2) + \mathrm{alndet} + \mathrm{ss}/\sigma^2`.

    Parameters
    ----------
    state : KalmanState
        The state after the last stage.
    sigma2 : float
        The scale :math:`\sigma^2 > 0`.

    Returns
    -------
    float

    Examples
    --------
    With :math:`\sigma^2 = \hat\sigma^2` it is :math:`-2L_c + n(1 + \log 2\pi)`:

    >>> import math, pymc_dlm as dlm
    >>> s = dlm.KalmanState(b=0.0, covb=1.0, n=4, ss=0.26, alndet=8.141)
    >>> a = dlm.neg2_loglik(s, s.sigma2_hat)
    >>> round(a - dlm.concentrated_neg2_loglik(s) - 4 * (1 + math.log(2 * math.pi)), 12)
    0.0
    """
    sigma2 = float(sigma2)
    if not (sigma2 > 0 and math.isfinite(sigma2)):
        raise ValueError(f"sigma2 must be a finite number > 0; got {sigma2!r}")
    return state.n * (LOG2PI + math.log(sigma2)) + state.alndet + state.ss / sigma2


@dataclass(frozen=True)
class SequenceResult:
    """Every stage of :func:`kalman_sequence`.

    Attributes
    ----------
    filtered : list of KalmanState
        State after the update of stage k (b_{k|k}, C_{k|k} and the accumulators).
    predicted : list of KalmanState
        State after the prediction of stage k (b_{k+1|k}, C_{k+1|k}); the last one is the
        input of the next stage.
    v, covv : list of ndarray
        The one-step prediction errors and their covariances (divided by sigma^2), per stage
        (ragged: n_k may change).
    state : KalmanState
        The final state (``predicted[-1]``).
    """

    filtered: list[KalmanState]
    predicted: list[KalmanState]
    v: list[np.ndarray]
    covv: list[np.ndarray]

    @property
    def state(self) -> KalmanState:
        """The state after the last stage."""
        return self.predicted[-1]

    @property
    def b_filtered(self) -> np.ndarray:
        """(K, q) filtered estimates b_{k|k}."""
        return np.stack([s.b for s in self.filtered])

    @property
    def b_predicted(self) -> np.ndarray:
        """(K, q) one-step-ahead estimates b_{k+1|k}."""
        return np.stack([s.b for s in self.predicted])


def _per_stage(name: str, x: Any, n_stages: int) -> list[Any]:
    """A per-stage list from a sequence of length n_stages, or the same matrix for every stage."""
    if x is None:
        return [None] * n_stages
    if isinstance(x, np.ndarray) and x.ndim == 3:
        x = list(x)
    if isinstance(x, Sequence) and len(x) > 0 and np.ndim(x[0]) == 2:
        if len(x) != n_stages:
            raise ValueError(f"{name} has {len(x)} stages but y has {n_stages}")
        return list(x)
    return [x] * n_stages


def kalman_sequence(
    state: KalmanState,
    y: Sequence[Any],
    z: Any,
    r: Any,
    t: Any = None,
    q: Any = None,
    *,
    tol: float | None = None,
) -> SequenceResult:
    r"""Run the whole stepwise sequence: at each stage k an update with (y_k, Z_k, R_k), then a prediction with (T, Q).

    Parameters
    ----------
    state : KalmanState
        The state before the first stage.
    y : sequence of K arrays (n_k,) (or a (K, n_k) array, or K scalars)
        Observations per stage; n_k may change from stage to stage.
    z, r : (n_k, q) and (n_k, n_k) per stage
        Either one matrix used at every stage or a sequence of K matrices (one per stage).
    t, q : (q, q), optional
        The prediction after stage k uses ``t[k]`` and ``q[k]`` (i.e. :math:`T_{k+1}`,
        :math:`Q_{k+1}`): one matrix for every stage or a sequence of K.  T defaults to the
        identity and Q to zero; with both None no prediction is made and the next stage
        starts from the filtered state.
    tol : float, optional
        As in :func:`kalman`.

    Returns
    -------
    SequenceResult

    Examples
    --------
    Harvey (1981, pp. 116-117):

    >>> import pymc_dlm as dlm
    >>> res = dlm.kalman_sequence(dlm.KalmanState(4.0, 16.0), [4.4, 4.0, 3.5, 4.6],
    ...                           z=1.0, r=1.0, t=1.0, q=4.0)
    >>> res.b_filtered.ravel().round(3)
    array([4.376, 4.063, 3.597, 4.428])
    >>> res.state.n, round(res.state.ss, 3), round(res.state.alndet, 3)
    (4, 0.26, 8.141)
    """
    ys = list(y)
    K = len(ys)
    if K == 0:
        raise ValueError("y must hold at least one stage; got none")
    zs, rs = _per_stage("z", z, K), _per_stage("r", r, K)
    ts, qs = _per_stage("t", t, K), _per_stage("q", q, K)
    filtered, predicted, vs, covvs = [], [], [], []
    cur = state
    for k in range(K):
        step = kalman(cur, y=ys[k], z=zs[k], r=rs[k], tol=tol)
        filtered.append(step.state)
        vs.append(step.v)
        covvs.append(step.covv)
        cur = step.state
        if ts[k] is not None or qs[k] is not None:
            cur = kalman(cur, t=ts[k], q=qs[k]).state
        predicted.append(cur)
    return SequenceResult(filtered=filtered, predicted=predicted, v=vs, covv=covvs)


def predict_ahead(state: KalmanState, steps: int, t: Any = None, q: Any = None) -> list[KalmanState]:
    r"""Multi-step-ahead prediction by repeated prediction steps.

    Parameters
    ----------
    state : KalmanState
        The state to predict from (e.g. ``b_{k|k}`` after an update).
    steps : int
        Number of prediction steps h >= 1.
    t, q : (q, q) or sequence of h (q, q), optional
        Transition and disturbance matrices of each step (identity / zero by default).

    Returns
    -------
    list of KalmanState
        ``[b_{k+1|k}, ..., b_{k+h|k}]`` with their covariances (divided by sigma^2).

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> out = dlm.predict_ahead(dlm.KalmanState(4.428, 0.828), 3, t=1.0, q=4.0)
    >>> [float(s.covb[0, 0]) for s in out]
    [4.828, 8.828, 12.828]
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    ts, qs = _per_stage("t", t, int(steps)), _per_stage("q", q, int(steps))
    out = []
    cur = state
    for h in range(int(steps)):
        cur = kalman(cur, t=np.eye(cur.q) if ts[h] is None else ts[h], q=qs[h]).state
        out.append(cur)
    return out
