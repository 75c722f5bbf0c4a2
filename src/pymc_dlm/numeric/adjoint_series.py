r"""The whole series in one call each way: the planned exact diffuse steps, then the filter.

Forward: :func:`~pymc_dlm.numeric.adjoint_diffuse.diffuse_forward` over the ``nd`` planned
diffuse steps (D&K 2012, sections 5.2 and 6.4), then
:func:`~pymc_dlm.numeric.adjoint.loglike_forward` from :math:`a_{d+1}, P_{*,d+1}`
(eqs. 4.21-4.26).  Backward: :func:`~pymc_dlm.numeric.adjoint.loglike_backward` over the
regular steps gives :math:`\bar a_{d+1}, \bar P_{d+1}`, from which
:func:`~pymc_dlm.numeric.adjoint_diffuse.diffuse_backward` goes back through the diffuse
steps.  These are the kernels of the fused Op (:class:`pymc_dlm.fused.KalmanLoglike`): two
calls per log-likelihood and gradient instead of four.

One state, one series and one disturbance (m = p = r = 1: a local level, say) take a path on
scalars throughout (:func:`~pymc_dlm.numeric.adjoint_diffuse.scalar_forward` and
:func:`~pymc_dlm.numeric.adjoint._forward_scalar`, their adjoints back): the same operations
in the same order, with no array allocated per call but the backward pass's small tape.

Arguments: y (n, p); the system matrices with a leading time axis of n or 1; a1, P1 the
proper part of the start (zero in the diffuse directions), P1inf the diffuse part; ``rows``,
``flags`` (nd, p) the plan (:func:`pymc_dlm.fused.plan_arrays`); nd = 0: no diffuse steps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .adjoint import (
    STEADY_TOL,
    _backward_scalar,
    _forward_scalar,
    any_nan,
    gradients_into,
    head,
    loglike_forward,
    tail,
    zero_all,
)
from .adjoint_diffuse import diffuse_backward, diffuse_forward, scalar_backward, scalar_forward

__all__ = ["scalar_series_backward", "scalar_series_forward", "series_backward", "series_forward"]


@njit(cache=True, inline="always")
def _one_state(y, R, a1):  # pragma: no cover - compiled
    """m = p = r = 1: the scalar path (:func:`scalar_series_forward`/``_backward``) serves."""
    return a1.shape[0] == 1 and y.shape[1] == 1 and R.shape[2] == 1


@njit(cache=True)
def series_forward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol, tol_diffuse,
                   llf_t, a_pred, P_pred):  # pragma: no cover - compiled
    """Per-step log-likelihood into ``llf_t`` (n,) and the predicted moments of the regular
    steps into ``a_pred`` (n - nd, m), ``P_pred`` (n - nd, m, m).

    Returns -1, or the first step whose :math:`F_t` is not positive definite (``llf_t`` NaN
    from there on)."""
    if _one_state(y, R, a1):
        return scalar_series_forward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags,
                                     tol_diffuse, llf_t, a_pred, P_pred)
    nd = rows.shape[0]
    if nd == 0:
        return loglike_forward(y, Z, d, H, T, c, R, Q, a1, P1, tol, STEADY_TOL, a_pred, P_pred,
                               llf_t)
    ll, a, P = diffuse_forward(y[:nd], head(Z, nd), head(d, nd), head(H, nd), head(T, nd),
                               head(c, nd), head(R, nd), head(Q, nd), a1, P1, P1inf, rows,
                               flags, tol_diffuse)
    llf_t[:nd] = ll
    bad = loglike_forward(np.ascontiguousarray(y[nd:]), tail(Z, nd), tail(d, nd),
                          tail(H, nd), tail(T, nd), tail(c, nd), tail(R, nd), tail(Q, nd),
                          a, P, tol, STEADY_TOL, a_pred, P_pred,
                          np.ascontiguousarray(llf_t[nd:]))
    return bad if bad < 0 else nd + bad


# inline: the one-state callbacks (fused/native.py) then compile one level of calls fewer
# (measured: first-ever compile of the pair 13.9 s -> 12.0 s)
@njit(cache=True, inline="always")
def scalar_series_forward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol_diffuse,
                          llf_t, a_pred, P_pred):  # pragma: no cover - compiled
    """:func:`series_forward` for m = p = r = 1 (no Cholesky pivot tolerance: F is a number,
    positive or not)."""
    nd = rows.shape[0]
    a, P = scalar_forward(y, Z, d, H, T, c, R, Q, a1[0], P1[0, 0], P1inf[0, 0], rows, flags,
                          tol_diffuse, llf_t, np.empty((0, 2, 4)))
    bad = _forward_scalar(y[nd:], tail(Z, nd), tail(d, nd), tail(H, nd), tail(T, nd),
                          tail(c, nd), tail(R, nd), tail(Q, nd), a, P, STEADY_TOL, a_pred,
                          P_pred, llf_t[nd:])
    return bad if bad < 0 else nd + bad


@njit(cache=True, inline="always")
def scalar_series_backward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol_diffuse,
                           llf_t, a_pred, P_pred, llbar,
                           gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1):  # pragma: no cover
    """:func:`series_backward` for m = p = r = 1: the regular steps' adjoint on scalars
    (:func:`~pymc_dlm.numeric.adjoint._backward_scalar`), then the diffuse steps'
    (:func:`~pymc_dlm.numeric.adjoint_diffuse.scalar_backward`, from a tape of their forward
    pass), both adding into the output arrays."""
    zero_all(gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1)
    if any_nan(llf_t):
        return
    nd = rows.shape[0]
    abar, Pbar = _backward_scalar(y[nd:], tail(Z, nd), tail(d, nd), tail(H, nd), tail(T, nd),
                                  tail(c, nd), tail(R, nd), tail(Q, nd), a_pred, P_pred,
                                  llbar[nd:], gy[nd:], tail(gZ, nd), tail(gd, nd),
                                  tail(gH, nd), tail(gT, nd), tail(gc, nd), tail(gR, nd),
                                  tail(gQ, nd))
    if nd > 0:
        tape = np.empty((nd, 2, 4))
        scalar_forward(y, Z, d, H, T, c, R, Q, a1[0], P1[0, 0], P1inf[0, 0], rows, flags,
                       tol_diffuse, np.empty(nd), tape)
        abar, Pbar = scalar_backward(y, Z, d, H, T, c, R, Q, rows, flags, tol_diffuse, llbar,
                                     tape, abar, Pbar, gy, gZ, gd, gH, gT, gc, gR, gQ)
    ga1[0] = abar
    gP1[0, 0] = Pbar


@njit(cache=True)
def _zero_head(G, nd):  # pragma: no cover - compiled
    """Zero the first nd steps of a time-varying gradient (a constant one is shared)."""
    if G.shape[0] > 1:
        G[:nd] = 0.0


@njit(cache=True)
def _add(G, g, nd):  # pragma: no cover - compiled
    """Add the gradient g of the diffuse steps (shape of the head of G's matrix) into G."""
    if G.shape[0] == 1:
        G += g
    else:
        G[:nd] += g


@njit(cache=True)
def series_backward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol, tol_diffuse,
                    llf_t, a_pred, P_pred, llbar, grad_T, grad_Z,
                    gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1):  # pragma: no cover - compiled
    r"""Gradients of :math:`\sum_t\bar\ell_t\ell_t` with respect to y, Z, d, H, T, c, R, Q, a1,
    P1, written into the ``g*`` arrays (their matrices' shapes); all zero when some
    ``llf_t`` is NaN.  ``grad_T``/``grad_Z`` as in
    :func:`~pymc_dlm.numeric.adjoint.gradients`.  In the diffuse steps
    :math:`\partial\ell/\partial y = -\partial\ell/\partial d` row by row (both enter only
    through :math:`v = y - d - z'a`), so d is passed per step to get y's gradient."""
    if _one_state(y, R, a1):
        scalar_series_backward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol_diffuse,
                               llf_t, a_pred, P_pred, llbar,
                               gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1)
        return
    nd = rows.shape[0]
    gradients_into(np.ascontiguousarray(y[nd:]), tail(Z, nd), tail(d, nd), tail(H, nd),
                   tail(T, nd), tail(c, nd), tail(R, nd), tail(Q, nd), llf_t, a_pred,
                   P_pred, np.ascontiguousarray(llbar[nd:]), tol, grad_T, grad_Z,
                   np.ascontiguousarray(gy[nd:]), tail(gZ, nd), tail(gd, nd), tail(gH, nd),
                   tail(gT, nd), tail(gc, nd), tail(gR, nd), tail(gQ, nd), ga1, gP1)
    if nd == 0:
        return
    gy[:nd] = 0.0  # gradients_into zeroed only the regular steps' part
    _zero_head(gZ, nd)
    _zero_head(gd, nd)
    _zero_head(gH, nd)
    _zero_head(gT, nd)
    _zero_head(gc, nd)
    _zero_head(gR, nd)
    _zero_head(gQ, nd)
    if any_nan(llf_t):
        ga1[:] = 0.0
        gP1[:, :] = 0.0
        return
    p = y.shape[1]
    d_steps = np.empty((nd, p))
    for t in range(nd):
        d_steps[t] = d[t if d.shape[0] > 1 else 0]
    g = diffuse_backward(np.ascontiguousarray(y[:nd]), head(Z, nd), d_steps, head(H, nd),
                         head(T, nd), head(c, nd), head(R, nd), head(Q, nd), a1, P1, P1inf,
                         rows, flags, tol_diffuse, np.ascontiguousarray(llbar[:nd]),
                         ga1.copy(), gP1.copy(), grad_T)
    if grad_Z:
        _add(gZ, g[0], nd)
    gy[:nd] = -g[1]
    if gd.shape[0] == 1:
        for t in range(nd):
            gd[0] += g[1][t]
    else:
        gd[:nd] += g[1]
    _add(gH, g[2], nd)
    if grad_T:
        _add(gT, g[3], nd)
    _add(gc, g[4], nd)
    _add(gR, g[5], nd)
    _add(gQ, g[6], nd)
    ga1[:] = g[7]
    gP1[:, :] = g[8]
