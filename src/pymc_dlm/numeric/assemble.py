"""Turn a :class:`~pymc_dlm.spec.StateSpaceModel` into the float arrays the kernels use."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from ..spec import matrix as mx
from ..spec.model import StateSpaceModel
from ..spec.validate import check_covariance, check_finite

__all__ = ["SystemArrays", "at_time", "model_arrays", "system_arrays", "with_stationary"]


class SystemArrays(NamedTuple):
    """System matrices with a leading time axis of length 1 (constant) or n (time-varying).

    Shapes: ``Z (nt, p, m)``, ``d (nt, p)``, ``H (nt, p, p)``, ``T (nt, m, m)``, ``c (nt, m)``,
    ``R (nt, m, r)``, ``Q (nt, r, r)``, ``a1 (m,)``, ``P1 (m, m)`` (the :math:`P_*` part, with
    stationary blocks filled in) and ``P1inf (m, m)`` (:math:`P_\\infty` = diag(diffuse)).
    """

    Z: np.ndarray
    d: np.ndarray
    H: np.ndarray
    T: np.ndarray
    c: np.ndarray
    R: np.ndarray
    Q: np.ndarray
    a1: np.ndarray
    P1: np.ndarray
    P1inf: np.ndarray


def at_time(A: np.ndarray, t: int) -> np.ndarray:
    """Slice ``t`` of a system array with a leading time axis of length 1 (constant) or n."""
    return A[t if A.shape[0] > 1 else 0]


def _numeric(model: StateSpaceModel, name: str) -> np.ndarray:
    return np.asarray(mx.evaluate(getattr(model, name), mx.NUMPY_OPS, name), dtype=np.float64)


def _with_time(x: np.ndarray, base_ndim: int) -> np.ndarray:
    x = x if x.ndim == base_ndim + 1 else x[None]
    return np.ascontiguousarray(x)


def stationary_cov(T: np.ndarray, RQR: np.ndarray, name: str = "stationary block") -> np.ndarray:
    r"""Solve :math:`P = T P T' + RQR'` (the unconditional covariance of a stationary block).

    Raises ``ValueError`` when ``T`` has an eigenvalue on or outside the unit circle.
    """
    if T.size == 0:
        return np.zeros_like(T)
    rad = np.max(np.abs(np.linalg.eigvals(T)))
    if rad >= 1.0:
        raise ValueError(
            f"the {name} must be stationary for a stationary initialisation; T has spectral "
            f"radius {rad:.6g} >= 1"
        )
    P = scipy.linalg.solve_discrete_lyapunov(T, RQR)
    return (P + P.T) / 2


def with_stationary(P1: np.ndarray, T: np.ndarray, R: np.ndarray, Q: np.ndarray,
                    stationary: tuple) -> np.ndarray:
    """P1 with the block of the stationary states set to their unconditional covariance
    (from the first time step's T, R, Q, which have a leading time axis)."""
    P1 = np.array(P1, dtype=np.float64)
    st = np.flatnonzero(stationary)
    if st.size:
        Ts = T[0][np.ix_(st, st)]
        other = np.setdiff1d(np.arange(P1.shape[0]), st)
        if other.size and np.any(T[0][np.ix_(st, other)] != 0):
            raise ValueError("stationary states must not depend on other states through T")
        RQR = R[0] @ Q[0] @ R[0].T
        P1[np.ix_(st, st)] = stationary_cov(Ts, RQR[np.ix_(st, st)])
    return np.ascontiguousarray(P1)


def system_arrays(model: StateSpaceModel) -> SystemArrays:
    """Evaluate every entry as float64 arrays (``TypeError`` if an entry is symbolic)."""
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    vals = {name: _numeric(model, name) for name in StateSpaceModel.matrix_names}
    if not model.is_numeric:  # symbolic-free lazy nodes: validate the evaluated numbers
        for name in ("Z", "T", "R", "d", "c", "a1"):
            check_finite(name, vals[name])
        for name in ("Q", "H", "P1"):
            check_covariance(name, vals[name])
    Z = _with_time(vals["Z"], 2)
    T = _with_time(vals["T"], 2)
    R = _with_time(vals["R"], 2)
    Q = _with_time(vals["Q"], 2)
    P1 = with_stationary(vals["P1"], T, R, Q, model.stationary)
    return SystemArrays(
        Z=Z,
        d=_with_time(vals["d"], 1),
        H=_with_time(vals["H"], 2),
        T=T,
        c=_with_time(vals["c"], 1),
        R=R,
        Q=Q,
        a1=np.ascontiguousarray(vals["a1"]),
        P1=P1,
        P1inf=np.diag(np.asarray(model.diffuse, dtype=np.float64)),
    )


def model_arrays(model: StateSpaceModel) -> SystemArrays:
    """:func:`system_arrays` of a model, evaluated once and kept on the (immutable) model.

    For the engine's entry points, which call it on every evaluation (a local level's
    log-likelihood at n = 100 costs less than evaluating its matrices).  The arrays are
    shared: callers must not write into them (nothing in the engine does).
    """
    sys = model.__dict__.get("_system_arrays")
    if sys is None:
        sys = system_arrays(model)
        object.__setattr__(model, "_system_arrays", sys)
    return sys
