r"""Log-likelihood and its exact gradient: the filter forward, its adjoint (reverse) pass back.

The forward pass is the Kalman filter of :mod:`pymc_dlm.numeric.filter` from a proper
initial state (D&K 2012, eqs. 4.21-4.26; missing rows dropped as in section 4.10), storing
the predicted moments :math:`a_t, P_t`.  The reverse pass goes back in time with the
adjoints :math:`\bar a_t = \partial\ell/\partial a_t` and
:math:`\bar P_t = \partial\ell/\partial P_t` (reverse-mode differentiation of the
recursions, as in the adjoint of the filter; cf. D&K section 7.3.3 for the score).  With
:math:`F = LL'`, :math:`G = F^{-1}`, :math:`x = Gv`, :math:`N = GM'` (:math:`M = PZ'`) and the
weight :math:`\bar\ell_t` of the step's log-likelihood:

* prediction :math:`a_{t+1} = Ta_{t|t} + c`, :math:`P_{t+1} = TP_{t|t}T' + RQR'`:
  :math:`\bar T \mathrel{+}= \bar a_{t+1}a_{t|t}' + 2\bar P_{t+1}TP_{t|t}`,
  :math:`\bar c \mathrel{+}= \bar a_{t+1}`, :math:`\bar R \mathrel{+}= 2\bar P_{t+1}RQ`,
  :math:`\bar Q \mathrel{+}= R'\bar P_{t+1}R`, :math:`\bar a_{t|t} = T'\bar a_{t+1}`,
  :math:`\bar P_{t|t} = T'\bar P_{t+1}T`;
* update :math:`a_{t|t} = a + Mx`, :math:`P_{t|t} = P - MGM'`,
  :math:`\ell_t = -\tfrac12(k\log 2\pi + \log|F| + v'x)`: with :math:`g = N\bar a_{t|t}`,
  :math:`\bar v = g - \bar\ell_t x`,
  :math:`\bar F = \mathrm{sym}(-\tfrac12\bar\ell_t(G - xx') - gx' + N\bar P_{t|t}N')`,
  :math:`\bar M = \bar a_{t|t}x' - 2\bar P_{t|t}N'`, then through :math:`v = y - Za - d`,
  :math:`M = PZ'`, :math:`F = ZPZ' + H`:
  :math:`\bar a = \bar a_{t|t} - Z'\bar v`,
  :math:`\bar P = \bar P_{t|t} + \mathrm{sym}(\bar MZ) + Z'\bar FZ`,
  :math:`\bar Z \mathrel{+}= \bar M'P + 2\bar FZP - \bar v a'`, :math:`\bar H \mathrel{+}= \bar F`,
  :math:`\bar d \mathrel{+}= -\bar v`, :math:`\bar y \mathrel{+}= \bar v`.

H, Q and P1 enter as their symmetric parts :math:`(X + X')/2`, so the gradient with respect
to them is symmetric and exact in every direction.  Matrices carry a leading time axis of
length n (time-varying) or 1 (constant); the gradient has the shape of its matrix.

Exact diffuse steps are not handled here: :mod:`pymc_dlm.numeric.adjoint_diffuse` runs the
(few) diffuse steps and their adjoint and hands the first non-diffuse state to this pass (see
:mod:`pymc_dlm.fused`).  A step whose :math:`F_t` is not positive definite stops the pass:
its log-likelihood and all later ones are NaN and the gradient is zero.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels import (
    LOG2PI,
    forecast_mean,
    forecast_moments,
    observed_rows,
    predict,
    predict_downdate,
    predict_mean,
    rqr,
    update_cholesky,
    update_mean,
)

__all__ = [
    "STEADY_TOL", "filter_moments", "steady_sources", "gradients", "gradients_into",
    "loglike_and_grad", "loglike_backward", "loglike_forward", "symmetrized",
]

#: Relative change of P below which the fast loop treats the filter as steady (8 ulps).
STEADY_TOL = 8.0 * np.finfo(np.float64).eps


@njit(cache=True)
def head(A, t):  # pragma: no cover - compiled
    """A system array over the first t steps (constant arrays, time axis 1, unchanged)."""
    return A if A.shape[0] == 1 else np.ascontiguousarray(A[:t])


@njit(cache=True)
def tail(A, t):  # pragma: no cover - compiled
    """A system array from step t on (constant arrays unchanged), C-contiguous."""
    return A if A.shape[0] == 1 else np.ascontiguousarray(A[t:])


@njit(cache=True)
def symmetrized(X):  # pragma: no cover - compiled
    """(X + X')/2 over the last two axes of a (k, m, m) array (a new array)."""
    out = np.empty_like(X)
    for t in range(X.shape[0]):
        for i in range(X.shape[1]):
            for j in range(X.shape[2]):
                out[t, i, j] = 0.5 * (X[t, i, j] + X[t, j, i])
    return out


@njit(cache=True)
def loglike_forward(y, Z, d, H, T, c, R, Q, a1, P1, tol, steady_tol, a_pred, P_pred, llf_t):  # pragma: no cover
    r"""Filter forward from :math:`a_1 \sim N(a_1, P_1)`; fills ``a_pred``, ``P_pred``, ``llf_t``.

    Parameters
    ----------
    y : (n, p) float64, NaN where missing
    Z, d, H, T, c, R, Q : (n or 1, ...) float64
        Time-varying matrices have a leading axis of length n, constant ones of length 1.
    a1 : (m,) ; P1 : (m, m)
    tol : float
        Relative pivot tolerance of the Cholesky factor of :math:`F_t` (the engine's ``TOL``).
    steady_tol : float
        Steady state (see :func:`_forward_loop`) once
        :math:`\max|P_{t+1} - P_t| \le` ``steady_tol`` :math:`\max_i (P_{t+1})_{ii}`; 0 asks for
        exact equality, a negative value switches it off.  :data:`STEADY_TOL` is 8 ulps.
    a_pred : (n, m), P_pred : (n, m, m), llf_t : (n,)
        Outputs: predicted moments :math:`a_t, P_t` and :math:`\log p(y_t | y_{1:t-1})`.
        ``a_pred``/``P_pred`` with a leading axis of length 0 are not written (log-likelihood
        only).

    Returns
    -------
    int
        -1 when every :math:`F_t` was positive definite, else the first failing t (``llf_t``
        is NaN from there on).
    """
    n, p = y.shape
    m = a1.shape[0]
    r = R.shape[2]
    if m == 1 and p == 1 and r == 1:
        return _forward_scalar(y, Z, d, H, T, c, R, Q, a1[0], P1[0, 0], steady_tol, a_pred,
                               P_pred, llf_t)
    return _forward_loop(
        y, Z, d, symmetrized(H), T, c, R, symmetrized(Q), a1.copy(), 0.5 * (P1 + P1.T), tol,
        steady_tol, a_pred, P_pred, llf_t, np.empty(m), np.empty((m, m)), np.empty((m, m)),
        np.empty((m, m)), np.empty((m, r)), np.empty((m, p)), np.empty((p, p)),
        np.empty((p, m)), np.empty(p), np.empty(p), np.empty((p, p)),
        np.empty(p, dtype=np.int64), np.empty((0, 0)), np.empty((m, m)), np.empty(m),
    )


@njit(cache=True, _nrt=False)
def _forward_loop(y, Z, d, Hs, T, c, R, Qs, a, P, tol, steady_tol, a_pred, P_pred, llf_t,
                  af, Pf, work, RQR, wr, M, L, W, u, v, F, idx, nofinv, Pold,
                  K):  # pragma: no cover
    """The time loop of :func:`loglike_forward` on caller-owned arrays.

    Steady state: when Z, H, T, R, Q are constant and every row of y_t is observed, the
    Riccati recursion for :math:`P_t` converges; once a prediction changes :math:`P` by no
    more than ``steady_tol`` times its largest variance (:func:`settled`), later steps reuse
    that step's :math:`P, F, L, W` until a row is missing, and only update the mean
    (:func:`~.kernels.forecast_mean`, :func:`~.kernels.update_mean`,
    :func:`~.kernels.predict_mean`: the arithmetic of the full step).  With the default 8
    ulps this is the point where the recursion only moves P by rounding (it typically
    oscillates by 1-2 ulps forever rather than stopping exactly); the log-likelihood then
    differs from the full recursion's by rounding-level amounts (tested to 1e-13).
    statsmodels does the same with an absolute threshold (1e-19 on the squared change).
    """
    n = y.shape[0]
    m = a.shape[0]
    store = a_pred.shape[0] > 0
    const_rqr = R.shape[0] == 1 and Qs.shape[0] == 1
    if const_rqr:
        rqr(R[0], Qs[0], RQR, wr)
    # views of constant matrices taken once (a view per step costs as much as an m = 1 step)
    Z0, d0, H0, T0, c0 = Z[0], d[0], Hs[0], T[0], c[0]
    p = y.shape[1]
    can_steady = const_rqr and Z.shape[0] == 1 and Hs.shape[0] == 1 and T.shape[0] == 1
    steady = False
    logdet = 0.0
    for t in range(n):
        Zt = Z0 if Z.shape[0] == 1 else Z[t]
        Tt = T0 if T.shape[0] == 1 else T[t]
        dt = d0 if d.shape[0] == 1 else d[t]
        Ht = H0 if Hs.shape[0] == 1 else Hs[t]
        ct = c0 if c.shape[0] == 1 else c[t]
        if store:
            for i in range(m):
                a_pred[t, i] = a[i]
                for j in range(m):
                    P_pred[t, i, j] = P[i, j]
        yt = y[t]
        k = observed_rows(yt, idx)
        if steady and k == p:  # P, F, M, L, W, logdet as in the last full step
            forecast_mean(a, Zt, dt, yt, v)
            ss = update_mean(a, v, F, M, idx, k, L, W, u, af)
            llf_t[t] = -0.5 * (k * LOG2PI + logdet + ss)
            predict_mean(af, Tt, ct, a)
            continue
        forecast_moments(a, P, Zt, dt, Ht, v, F, M, yt)
        if k == 0:
            for i in range(m):
                af[i] = a[i]
                for j in range(m):
                    Pf[i, j] = P[i, j]
            llf_t[t] = 0.0
        else:  # one observed row: P_{t|t} is not formed (predict_downdate)
            ok, logdet, ss = update_cholesky(a, P, v, F, M, idx, k, tol, af,
                                             nofinv if k == 1 else Pf, nofinv, L, W, u)
            if not ok:
                for t2 in range(t, n):
                    llf_t[t2] = np.nan
                return t
            llf_t[t] = -0.5 * (k * LOG2PI + logdet + ss)
        if not const_rqr:
            rqr(R[t if R.shape[0] > 1 else 0], Qs[t if Qs.shape[0] > 1 else 0], RQR, wr)
        P, Pold = Pold, P  # the new P into the other buffer: P_t stays, for the rule below
        if k == 1:
            predict_downdate(af, Pold, Tt, ct, RQR, Zt[idx[0]], F[idx[0], idx[0]], a, P, work, K)
        else:
            predict(af, Pf, Tt, ct, RQR, a, P, work)
        steady = False
        if can_steady and k == p and steady_tol >= 0.0:
            steady = settled(P, Pold, steady_tol)
    return -1


@njit(cache=True, _nrt=False, inline="always")
def settled(P, Pold, steady_tol):  # pragma: no cover - compiled
    r"""The steady-state rule: :math:`\max_{ij}|P_{ij} - P_{old,ij}| \le` ``steady_tol``
    :math:`\max_i P_{ii}` (:func:`_forward_loop` applies it, :func:`steady_sources` replays it).

    The scale is the largest variance (for a covariance matrix, its largest entry in absolute
    value), and the first entry that moved more ends the test: while P still moves, that is
    the first entry, so the test costs O(m) per step instead of O(m^2)."""
    m = P.shape[0]
    big = 0.0
    for i in range(m):
        big = max(big, P[i, i])
    bound = steady_tol * big
    for i in range(m):
        for j in range(m):
            if not abs(P[i, j] - Pold[i, j]) <= bound:
                return False
    return True


@njit(cache=True, _nrt=False)
def _forward_scalar(y, Z, d, H, T, c, R, Q, a, P, steady_tol, a_pred, P_pred,
                    llf_t):  # pragma: no cover - compiled
    r""":func:`_forward_loop` for one state, one series and one disturbance (m = p = r = 1).

    The same operations in the same order on scalars (so the same numbers, bit for bit):
    :math:`v = y - (d + za)`, :math:`M = Pz`, :math:`F = H + zM`,
    :math:`a_{t|t} = a + M(v/F)`, :math:`P_{t|t} = P - (M/F)M`, :math:`\ell_t =
    -\tfrac12(\log 2\pi + \log F + v^2/F)`, :math:`a_{t+1} = c + Ta_{t|t}`,
    :math:`P_{t+1} = RQR + (TP_{t|t})T`, and the same steady-state rule.  Without arrays in
    the loop a step costs a few nanoseconds instead of tens.
    """
    n = y.shape[0]
    store = a_pred.shape[0] > 0
    nZ, nd, nH, nT, nc, nR, nQ = (Z.shape[0], d.shape[0], H.shape[0], T.shape[0], c.shape[0],
                                  R.shape[0], Q.shape[0])
    can_steady = nZ == 1 and nH == 1 and nT == 1 and nR == 1 and nQ == 1 and steady_tol >= 0.0
    rqr = (R[0, 0, 0] * Q[0, 0, 0]) * R[0, 0, 0]
    steady = False
    logdet = 0.0
    F = 1.0
    M = 0.0
    for t in range(n):
        z = Z[t if nZ > 1 else 0, 0, 0]
        tt = T[t if nT > 1 else 0, 0, 0]
        ct = c[t if nc > 1 else 0, 0]
        if store:
            a_pred[t, 0] = a
            P_pred[t, 0, 0] = P
        yt = y[t, 0]
        if math.isnan(yt):
            llf_t[t] = 0.0
            af = a
            Pf = P
        else:
            s = d[t if nd > 1 else 0, 0]
            if z != 0.0:
                s += z * a
            v = yt - s
            if steady:
                g = v / F
                llf_t[t] = -0.5 * (LOG2PI + logdet + v * g)
                a = ct + tt * (a + M * g) if tt != 0.0 else ct
                continue
            M = P * z if z != 0.0 else 0.0
            F = H[t if nH > 1 else 0, 0, 0]
            if z != 0.0:
                F += z * M
            if not F > 0.0:
                for t2 in range(t, n):
                    llf_t[t2] = np.nan
                return t
            g = v / F
            af = a + M * g
            Pf = P - (M / F) * M
            logdet = math.log(F)
            llf_t[t] = -0.5 * (LOG2PI + logdet + v * g)
        if not (nR == 1 and nQ == 1):
            rr = R[t if nR > 1 else 0, 0, 0]
            rqr = (rr * Q[t if nQ > 1 else 0, 0, 0]) * rr
        Pold = P
        a = ct + tt * af if tt != 0.0 else ct
        P = rqr + (tt * Pf) * tt if tt != 0.0 else rqr
        steady = False
        if can_steady and not math.isnan(yt):
            steady = abs(P - Pold) <= steady_tol * abs(P)
    return -1


@njit(cache=True, _nrt=False)
def _backward_scalar(y, Z, d, H, T, c, R, Q, a_pred, P_pred, llbar,
                     gy, gZ, gd, gH, gT, gc, gR, gQ):  # pragma: no cover - compiled
    r""":func:`_backward_loop` for m = p = r = 1 on scalars (the module's formulas with
    :math:`G = 1/F`, :math:`x = vG`, :math:`N = MG`: one division per step); returns
    :math:`(\bar a_1, \bar P_1)`.  The gradients of constant matrices are summed in local
    variables and added to their arrays at the end."""
    n = y.shape[0]
    nZ, nd, nH, nT, nc, nR, nQ = (Z.shape[0], d.shape[0], H.shape[0], T.shape[0], c.shape[0],
                                  R.shape[0], Q.shape[0])
    abar = 0.0
    Pbar = 0.0
    # gradients of constant matrices summed in registers (a += through memory each step is a
    # loop-carried store/load chain), added to the arrays at the end
    sZ = sd = sH = sT = sc = sR = sQ = 0.0
    for t in range(n - 1, -1, -1):
        iZ, iT, iR, iQ = (t if nZ > 1 else 0, t if nT > 1 else 0, t if nR > 1 else 0,
                          t if nQ > 1 else 0)
        iH, idd, ic = t if nH > 1 else 0, t if nd > 1 else 0, t if nc > 1 else 0
        z, tt, rr, qq = Z[iZ, 0, 0], T[iT, 0, 0], R[iR, 0, 0], Q[iQ, 0, 0]
        a = a_pred[t, 0]
        P = P_pred[t, 0, 0]
        yt = y[t, 0]
        observed = not math.isnan(yt)
        if observed:  # recompute the update (as the forward pass)
            s = d[idd, 0]
            if z != 0.0:
                s += z * a
            v = yt - s
            M = P * z if z != 0.0 else 0.0
            F = H[iH, 0, 0]
            if z != 0.0:
                F += z * M
            G = 1.0 / F
            x = v * G
            N = M * G
            af = a + M * x
            Pf = P - N * M
        else:
            af = a
            Pf = P
        # prediction adjoint (Pbar, abar: of a_{t+1}, P_{t+1})
        work = Pbar * tt
        dT = abar * af + 2.0 * work * Pf
        dR = 2.0 * (Pbar * (rr * qq))
        dQ = rr * (Pbar * rr)
        if nT > 1:
            gT[t, 0, 0] += dT
        else:
            sT += dT
        if nc > 1:
            gc[t, 0] += abar
        else:
            sc += abar
        if nR > 1:
            gR[t, 0, 0] += dR
        else:
            sR += dR
        if nQ > 1:
            gQ[t, 0, 0] += dQ
        else:
            sQ += dQ
        afbar = tt * abar
        Pfbar = tt * work
        if not observed:
            abar = afbar
            Pbar = Pfbar
            continue
        lb = llbar[t]
        g = N * afbar
        vbar = g - lb * x
        w2 = Pfbar * N
        Fbar = -0.5 * lb * (G - x * x) - 0.5 * (g * x + g * x) + N * w2
        Mbar = afbar * x - 2.0 * w2
        gy[t, 0] += vbar
        FZ = Fbar * z if z != 0.0 else 0.0
        dZ = -vbar * a + (Mbar + 2.0 * FZ) * P
        if nd > 1:
            gd[t, 0] -= vbar
        else:
            sd -= vbar
        if nH > 1:
            gH[t, 0, 0] += Fbar
        else:
            sH += Fbar
        if nZ > 1:
            gZ[t, 0, 0] += dZ
        else:
            sZ += dZ
        abar = afbar - z * vbar
        work = Mbar * z + z * FZ
        Pbar = Pfbar + 0.5 * (work + work)
    if nZ == 1:
        gZ[0, 0, 0] += sZ
    if nd == 1:
        gd[0, 0] += sd
    if nH == 1:
        gH[0, 0, 0] += sH
    if nT == 1:
        gT[0, 0, 0] += sT
    if nc == 1:
        gc[0, 0] += sc
    if nR == 1:
        gR[0, 0, 0] += sR
    if nQ == 1:
        gQ[0, 0, 0] += sQ
    return abar, Pbar


@njit(cache=True)
def loglike_backward(y, Z, d, H, T, c, R, Q, a_pred, P_pred, tol, llbar,
                     gy, gZ, gd, gH, gT, gc, gR, gQ, grad_T, grad_Z,
                     steady_tol=STEADY_TOL):  # pragma: no cover - compiled
    r"""Adjoint pass: accumulate :math:`\sum_t \bar\ell_t\,\partial\ell_t/\partial\theta`.

    Inputs as :func:`loglike_forward` (``a_pred``, ``P_pred`` from it) and ``llbar`` (n,),
    the weight of each step.  The gradient arrays ``g*`` (shapes of their matrices, zeroed
    by the caller) are accumulated into; ``gT`` only when ``grad_T`` is True (the
    :math:`O(m^3)` term :math:`\bar a_{t+1}a_{t|t}' + 2\bar P_{t+1}TP_{t|t}` of each step is
    skipped when T is a constant of the model and nobody asks for its gradient); ``gZ`` only
    when ``grad_Z`` is True (likewise, its :math:`O(pm^2)` term per step).  ``steady_tol``
    must be the forward pass's: its steady-state steps are differentiated as it ran them
    (P frozen; :func:`steady_sources`), so value and gradient belong to the same function.

    Returns
    -------
    ga1 : (m,), gP1 : (m, m)
        The adjoints of the initial moments (gP1 symmetric).
    """
    n, p = y.shape
    m = a_pred.shape[1]
    r = R.shape[2]
    abar = np.zeros(m)
    Pbar = np.zeros((m, m))
    if m == 1 and p == 1 and r == 1:
        abar[0], Pbar[0, 0] = _backward_scalar(y, Z, d, H, T, c, R, Q, a_pred, P_pred, llbar,
                                               gy, gZ, gd, gH, gT, gc, gR, gQ)
        return abar, Pbar
    _backward_loop(
        y, Z, d, symmetrized(H), T, c, R, symmetrized(Q), a_pred, P_pred, tol, llbar,
        gy, gZ, gd, gH, gT, gc, gR, gQ, abar, Pbar, grad_T, grad_Z,
        np.empty(m), np.empty((m, m)), np.empty(m), np.empty((m, m)), np.empty((m, m)),
        np.empty((m, max(m, r))), np.empty((m, p)), np.empty((p, p)),
        np.empty((p, m)), np.empty((p, m)), np.empty((p, p)), np.empty((p, p)),
        np.empty((p, p)), np.empty((m, p)), np.empty(p), np.empty(p), np.empty(p),
        np.empty(p), np.empty(p), np.empty((p, p)), np.empty(p, dtype=np.int64), np.empty((0, 0)),
        np.empty((m, m)), steady_sources(y, Z, H, T, R, Q, P_pred, steady_tol),
        np.empty((p, p)), np.empty((m, p)), np.empty(m),
    )
    return abar, Pbar


@njit(cache=True, _nrt=False, inline="always")
def _solve_x(k, idx, v, F, L, u, x):  # pragma: no cover - compiled
    """x = F^-1 v over the k observed rows: v/f when k = 1, else back substitution with L'
    from u = L^-1 v (as :func:`~.kernels.update_cholesky`/``update_mean`` left them)."""
    if k == 1:
        x[0] = v[idx[0]] / F[idx[0], idx[0]]
        return
    for q in range(k - 1, -1, -1):
        s = u[q]
        for q2 in range(q + 1, k):
            s -= L[q2, q] * x[q2]
        x[q] = s / L[q, q]


@njit(cache=True, _nrt=False, inline="always")
def _inverse_terms(k, idx, v, F, M, L, W, u, x, N, G, Linv):  # pragma: no cover - compiled
    """x = G v, N = G M' and G = F^-1 over the k observed rows, from the factors
    :func:`~.kernels.update_cholesky` left (L, W = L^-1 M', u = L^-1 v; F and M when k = 1)."""
    m = M.shape[0]
    _solve_x(k, idx, v, F, L, u, x)
    if k == 1:  # scalar F: G = 1/f, x = v/f, N = M'/f
        i0 = idx[0]
        f = F[i0, i0]
        G[0, 0] = 1.0 / f
        for j in range(m):
            N[0, j] = M[j, i0] / f
    elif k > 1:
        for q in range(k - 1, -1, -1):  # back substitution with L'
            for j in range(m):
                s = W[q, j]
                for q2 in range(q + 1, k):
                    s -= L[q2, q] * N[q2, j]
                N[q, j] = s / L[q, q]
        for col in range(k):  # L^-1, then G = L^-T L^-1
            for q in range(k):
                s = 1.0 if q == col else 0.0
                for q2 in range(col, q):
                    s -= L[q, q2] * Linv[q2, col]
                Linv[q, col] = s / L[q, q] if q >= col else 0.0
        for q1 in range(k):
            for q2 in range(q1, k):
                s = 0.0
                for q in range(max(q1, q2), k):
                    s += Linv[q, q1] * Linv[q, q2]
                G[q1, q2] = s
                G[q2, q1] = s


@njit(cache=True, _nrt=False, inline="always")
def _v_adjoint(k, N, afbar, lb, x, g, vbar):  # pragma: no cover - compiled
    r"""g = N \bar a_{t|t} and :math:`\bar v = g - \bar\ell_t x` over the k observed rows (the
    adjoint of :math:`a_{t|t} = a + Mx` and of the log-likelihood's :math:`v'x`, x = G v)."""
    m = N.shape[1]
    for q in range(k):
        s = 0.0
        for j in range(m):
            s += N[q, j] * afbar[j]
        g[q] = s
        vbar[q] = s - lb * x[q]


@njit(cache=True, _nrt=False, inline="always")
def _a_adjoint(k, idx, Z, afbar, vbar, abar):  # pragma: no cover - compiled
    r""":math:`\bar a_t = \bar a_{t|t} - Z_o'\bar v` over the k observed rows (v = y - d - Za)."""
    for i in range(abar.shape[0]):
        s = afbar[i]
        for q in range(k):
            s -= Z[idx[q], i] * vbar[q]
        abar[i] = s


@njit(cache=True, _nrt=False)
def _steady_source(s0, y, Z, d, H, a_pred, P_pred, tol, af, M, L, W, N, G, Linv, u, x, v, F,
                   idx, nofinv, Facc, Macc):  # pragma: no cover - compiled
    """Step s0's F, M, Cholesky factors L, W and G, N, for the steady steps that reused them
    (:func:`_backward_loop`); the sums Facc, Macc zeroed."""
    forecast_moments(a_pred[s0], P_pred[s0], Z, d[s0 if d.shape[0] > 1 else 0], H, v, F, M,
                     y[s0])
    k = observed_rows(y[s0], idx)
    update_cholesky(a_pred[s0], P_pred[s0], v, F, M, idx, k, tol, af, nofinv, nofinv, L, W, u)
    _inverse_terms(k, idx, v, F, M, L, W, u, x, N, G, Linv)
    for q1 in range(Facc.shape[0]):
        for q2 in range(Facc.shape[0]):
            Facc[q1, q2] = 0.0
        for i in range(Macc.shape[0]):
            Macc[i, q1] = 0.0


@njit(cache=True)
def steady_sources(y, Z, H, T, R, Q, P_pred, steady_tol):  # pragma: no cover - compiled
    r"""Which steps the forward pass (:func:`_forward_loop`, same ``steady_tol``) ran in steady
    state: ``src[t]`` the step whose F, M it reused, -1 for a full step.  Its rule, replayed
    on the stored :math:`P_t`: after a full step t with every row observed and
    ``settled(P_{t+1}, P_t)`` (constant Z, H, T, R, Q), the following steps with every row
    observed are steady."""
    n, p = y.shape
    src = np.full(n, -1, dtype=np.int64)
    const = Z.shape[0] == 1 and H.shape[0] == 1 and T.shape[0] == 1 and R.shape[0] == 1 \
        and Q.shape[0] == 1
    if steady_tol < 0.0 or not const or P_pred.shape[0] < n:
        return src
    idx = np.empty(p, dtype=np.int64)
    steady = False
    last = -1
    for t in range(n):
        k = observed_rows(y[t], idx)
        if steady and k == p:
            src[t] = last
            continue
        last = t
        steady = False
        if k == p and t + 1 < n:
            steady = settled(P_pred[t + 1], P_pred[t], steady_tol)
    return src


@njit(cache=True, _nrt=False)
def _backward_loop(y, Z, d, Hs, T, c, R, Qs, a_pred, P_pred, tol, llbar,
                   gy, gZ, gd, gH, gT, gc, gR, gQ, abar, Pbar, grad_T, grad_Z,
                   af, Pf, afbar, Pfbar, work, work2, M, L, W, N, Linv, G, Fbar, Mbar,
                   u, x, g, vbar, v, F, idx, nofinv, Psum, src, Facc, Macc,
                   uq):  # pragma: no cover
    r"""The time loop of :func:`loglike_backward` (NRT-free, as :func:`_forward_loop`).

    Steady-state steps (``src[t] = s >= 0``: the forward pass reused step s's
    :math:`F, M` and the Cholesky factors, and left :math:`P` alone; :func:`steady_sources`)
    are differentiated as computed: :math:`\bar P` passes through unchanged, and the adjoints
    of step s's :math:`F_s, M_s` that they produce, :math:`\sum_t -\tfrac12\bar\ell_t(G -
    x_tx_t') - \tfrac12(g_tx_t' + x_tg_t')` and :math:`\sum_t \bar a_{t|t}x_t'`, are summed
    (``Facc``, ``Macc``) and added to step s's own: :math:`O(mp)` per step (plus
    :math:`O(m^2)` for T's gradient) instead of :math:`O(m^3)`.

    With constant R and Q the gradients :math:`\bar R = 2\sum_t\bar P_{t+1}RQ` and
    :math:`\bar Q = R'(\sum_t\bar P_{t+1})R` are linear in :math:`\bar P_{t+1}`: the loop
    sums :math:`\bar P_{t+1}` into ``Psum`` and multiplies once at the end
    (:math:`O(m^2)` per step instead of :math:`O(m^2r)`)."""
    n = y.shape[0]
    m = a_pred.shape[1]
    r = R.shape[2]
    const_rq = R.shape[0] == 1 and Qs.shape[0] == 1
    for i in range(m):
        for j in range(m):
            Psum[i, j] = 0.0
    acc_for = -1  # the step whose F, M the sums Facc, Macc belong to
    flipped = False  # Pbar and Pfbar swap buffers at each step (no copy)
    for t in range(n - 1, -1, -1):
        iZ = t if Z.shape[0] > 1 else 0
        iT = t if T.shape[0] > 1 else 0
        iR = t if R.shape[0] > 1 else 0
        iQ = t if Qs.shape[0] > 1 else 0
        Zt, Tt, Rt, Qt = Z[iZ], T[iT], R[iR], Qs[iQ]
        a = a_pred[t]
        P = P_pred[t]
        if src[t] >= 0:  # steady step: step src[t]'s F, M, L, W, G, N; P left alone
            if acc_for != src[t]:  # the last step of a steady run
                acc_for = src[t]
                _steady_source(acc_for, y, Zt, d, Hs[0], a_pred, P_pred, tol, af, M, L, W, N, G,
                               Linv, u, x, v, F, idx, nofinv, Facc, Macc)
            k = observed_rows(y[t], idx)  # = p
            forecast_mean(a, Zt, d[t if d.shape[0] > 1 else 0], y[t], v)
            update_mean(a, v, F, M, idx, k, L, W, u, af)  # the forward pass's a_{t|t}
            _solve_x(k, idx, v, F, L, u, x)
            if grad_T:  # prediction a_{t+1} = T a_{t|t} + c
                gt = gT[0]
                for i in range(m):
                    for j in range(m):
                        gt[i, j] += abar[i] * af[j]
            gcv = gc[t if gc.shape[0] > 1 else 0]
            for i in range(m):
                gcv[i] += abar[i]
                afbar[i] = 0.0
            for q in range(m):
                for i in range(m):
                    tqi = Tt[q, i]
                    if tqi != 0.0:
                        afbar[i] += tqi * abar[q]
            lb = llbar[t]  # update a_{t|t} = a + M x, x = G v, with step src[t]'s F and M
            _v_adjoint(k, N, afbar, lb, x, g, vbar)
            for q1 in range(k):
                for q2 in range(k):
                    Facc[q1, q2] += -0.5 * lb * (G[q1, q2] - x[q1] * x[q2]) \
                        - 0.5 * (g[q1] * x[q2] + g[q2] * x[q1])
                for i in range(m):
                    Macc[i, q1] += afbar[i] * x[q1]
            gdv = gd[t if gd.shape[0] > 1 else 0]
            gz = gZ[0]
            for q in range(k):
                i1 = idx[q]
                gy[t, i1] += vbar[q]
                gdv[i1] -= vbar[q]
                if grad_Z:
                    for j in range(m):
                        gz[i1, j] -= vbar[q] * a[j]
            _a_adjoint(k, idx, Zt, afbar, vbar, abar)
            continue
        k = observed_rows(y[t], idx)
        forecast_moments(a, P, Zt, d[t if d.shape[0] > 1 else 0], Hs[t if Hs.shape[0] > 1 else 0],
                         v, F, M, y[t])
        # --- recompute the update with the forward pass's kernel: a_{t|t}, P_{t|t} (and
        # L, W, u = L^-1 v when k > 1), then x = G v, N = G M', G = F^-1
        if k == 0:
            for i in range(m):
                af[i] = a[i]
                for j in range(m):
                    Pf[i, j] = P[i, j]
        else:
            update_cholesky(a, P, v, F, M, idx, k, tol, af, Pf if grad_T else nofinv, nofinv,
                            L, W, u)
        _inverse_terms(k, idx, v, F, M, L, W, u, x, N, G, Linv)
        # --- prediction adjoint (Pbar holds P_{t+1}bar, abar a_{t+1}bar)
        for j in range(m):  # work = Pbar T (zeros of T skipped, as in the forward pass)
            first = True
            for q in range(m):
                tqj = Tt[q, j]
                if tqj != 0.0:
                    if first:
                        for i in range(m):
                            work[i, j] = Pbar[i, q] * tqj
                        first = False
                    else:
                        for i in range(m):
                            work[i, j] += Pbar[i, q] * tqj
            if first:
                for i in range(m):
                    work[i, j] = 0.0
        if grad_T:
            gt = gT[iT]
            for i in range(m):
                for j in range(m):
                    s = abar[i] * af[j]
                    for q in range(m):
                        s += 2.0 * work[i, q] * Pf[q, j]
                    gt[i, j] += s
        gcv = gc[t if gc.shape[0] > 1 else 0]
        for i in range(m):
            gcv[i] += abar[i]
        if const_rq:
            for i in range(m):
                for j in range(m):
                    Psum[i, j] += Pbar[i, j]
        else:
            _rq_grads(Pbar, Rt, Qt, gR[iR], gQ[iQ], work2)
        for i in range(m):  # afbar = T' abar, Pfbar = T' (Pbar T) = T' work (zeros of T skipped)
            sa = 0.0
            first = True
            for q in range(m):
                tqi = Tt[q, i]
                if tqi != 0.0:
                    sa += tqi * abar[q]
                    if first:
                        for j in range(m):
                            Pfbar[i, j] = tqi * work[q, j]
                        first = False
                    else:
                        for j in range(m):
                            Pfbar[i, j] += tqi * work[q, j]
            afbar[i] = sa
            if first:
                for j in range(m):
                    Pfbar[i, j] = 0.0
            for q in range(k):  # work2[:, :k] = Pfbar N', row i while it is at hand
                s = 0.0
                for j in range(m):
                    s += Pfbar[i, j] * N[q, j]
                work2[i, q] = s
        # --- update adjoint
        if k == 0:
            for i in range(m):
                abar[i] = afbar[i]
            Pbar, Pfbar = Pfbar, Pbar
            flipped = not flipped
            continue
        lb = llbar[t]
        _v_adjoint(k, N, afbar, lb, x, g, vbar)
        for q1 in range(k):
            for q2 in range(k):
                s = -0.5 * lb * (G[q1, q2] - x[q1] * x[q2]) - 0.5 * (g[q1] * x[q2] + g[q2] * x[q1])
                for j in range(m):
                    s += N[q1, j] * work2[j, q2]
                Fbar[q1, q2] = s
        for q1 in range(k):
            for q2 in range(q1 + 1, k):
                s = 0.5 * (Fbar[q1, q2] + Fbar[q2, q1])
                Fbar[q1, q2] = s
                Fbar[q2, q1] = s
        for i in range(m):
            for q in range(k):
                Mbar[i, q] = afbar[i] * x[q] - 2.0 * work2[i, q]
        if acc_for == t:  # the steady steps that reused this step's F and M
            for q1 in range(k):
                for q2 in range(k):
                    Fbar[q1, q2] += Facc[q1, q2]
                for i in range(m):
                    Mbar[i, q1] += Macc[i, q1]
            acc_for = -1
        gz = gZ[iZ]
        gdv = gd[t if gd.shape[0] > 1 else 0]
        gh = gH[t if gH.shape[0] > 1 else 0]
        for q1 in range(k):
            i1 = idx[q1]
            gy[t, i1] += vbar[q1]
            gdv[i1] -= vbar[q1]
            for q2 in range(k):
                gh[i1, idx[q2]] += Fbar[q1, q2]
        # FZ[q, :] = (Fbar Z_o)[q, :] in N (no longer needed)
        for q1 in range(k):
            for j in range(m):
                s = 0.0
                for q2 in range(k):
                    z = Zt[idx[q2], j]
                    if z != 0.0:
                        s += Fbar[q1, q2] * z
                N[q1, j] = s
        for q in range(k if grad_Z else 0):
            i1 = idx[q]
            for j in range(m):
                s = -vbar[q] * a[j]
                for i in range(m):
                    s += (Mbar[i, q] + 2.0 * N[q, i]) * P[i, j]
                gz[i1, j] += s
        _a_adjoint(k, idx, Zt, afbar, vbar, abar)
        # Pbar_t = Pfbar + sym(Mbar Z_o + Z_o' (Fbar Z_o)) = Pfbar + sum_q (u_q z_q' + z_q u_q')
        # with u_q = (Mbar[:, q] + (Fbar Z_o)[q, :]')/2: a rank-2k update of Pfbar in place at
        # the rows and columns where Z_o is nonzero; then Pfbar's buffer becomes Pbar's
        for q in range(k):
            zrow = Zt[idx[q]]
            for i in range(m):
                uq[i] = 0.5 * (Mbar[i, q] + N[q, i])
            for j in range(m):
                z = zrow[j]
                if z != 0.0:
                    for i in range(m):
                        Pfbar[i, j] += uq[i] * z
                    for i in range(m):
                        Pfbar[j, i] += z * uq[i]
        Pbar, Pfbar = Pfbar, Pbar
        flipped = not flipped
    if flipped:  # the caller's Pbar array holds the result
        for i in range(m):
            for j in range(m):
                Pfbar[i, j] = Pbar[i, j]
    if const_rq:
        _rq_grads(Psum, R[0], Qs[0], gR[0], gQ[0], work2)


@njit(cache=True, _nrt=False, inline="always")
def _rq_grads(Pbar, R, Q, gR, gQ, work2):  # pragma: no cover - compiled
    """gR += 2 (Pbar R) Q and gQ += R' (Pbar R), with Pbar R in work2[:, :r] (scratch)."""
    m, r = R.shape
    for i in range(m):
        for j in range(r):
            s = 0.0
            for q in range(m):
                s += Pbar[i, q] * R[q, j]
            work2[i, j] = s
    for i in range(m):
        for j in range(r):
            s = 0.0
            for q in range(r):
                s += work2[i, q] * Q[q, j]
            gR[i, j] += 2.0 * s
    for i in range(r):
        for j in range(r):
            s = 0.0
            for q in range(m):
                s += R[q, i] * work2[q, j]
            gQ[i, j] += s


@njit(cache=True)
def filter_moments(y, Z, d, H, T, c, R, Q, a1, P1, tol):  # pragma: no cover - compiled
    """:func:`loglike_forward` with its outputs allocated (steady state at :data:`STEADY_TOL`).

    Returns
    -------
    llf_t : (n,), a_pred : (n, m), P_pred : (n, m, m)
    """
    n, m = y.shape[0], a1.shape[0]
    a_pred = np.empty((n, m))
    P_pred = np.empty((n, m, m))
    llf_t = np.empty(n)
    loglike_forward(y, Z, d, H, T, c, R, Q, a1, P1, tol, STEADY_TOL, a_pred, P_pred, llf_t)
    return llf_t, a_pred, P_pred


@njit(cache=True)
def gradients(y, Z, d, H, T, c, R, Q, a1, P1, llf_t, a_pred, P_pred, llbar, tol,
              grad_T, grad_Z):  # pragma: no cover - compiled
    """:func:`loglike_backward` with the gradients allocated, one per input of
    :func:`filter_moments` (y, Z, d, H, T, c, R, Q, a1, P1), each of its input's shape; all
    zero when some ``llf_t`` is NaN (an :math:`F_t` was not positive definite); the one of T
    (of Z) not computed when ``grad_T`` (``grad_Z``) is False: zero, except in the
    one-state loop, which computes it anyway (on scalars it costs nothing)."""
    gy, gZ, gd, gH = np.empty(y.shape), np.empty(Z.shape), np.empty(d.shape), np.empty(H.shape)
    gT, gc, gR, gQ = np.empty(T.shape), np.empty(c.shape), np.empty(R.shape), np.empty(Q.shape)
    ga1, gP1 = np.empty(a1.shape), np.empty(P1.shape)
    gradients_into(y, Z, d, H, T, c, R, Q, llf_t, a_pred, P_pred, llbar, tol, grad_T, grad_Z,
                   gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1)
    return gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1


@njit(cache=True)
def any_nan(x):  # pragma: no cover - compiled
    """Whether the vector x holds a NaN (a loop: ``np.isnan(x).any()`` allocates)."""
    for v in x:
        if math.isnan(v):
            return True
    return False


@njit(cache=True, inline="always")
def zero_all(gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1):  # pragma: no cover - compiled
    """Zero the ten gradient arrays (before a backward pass adds into them)."""
    gy.fill(0.0)
    gZ.fill(0.0)
    gd.fill(0.0)
    gH.fill(0.0)
    gT.fill(0.0)
    gc.fill(0.0)
    gR.fill(0.0)
    gQ.fill(0.0)
    ga1.fill(0.0)
    gP1.fill(0.0)


@njit(cache=True)
def gradients_into(y, Z, d, H, T, c, R, Q, llf_t, a_pred, P_pred, llbar, tol, grad_T, grad_Z,
                   gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1):  # pragma: no cover - compiled
    """:func:`gradients` written into the given arrays (the fused Op's outputs)."""
    zero_all(gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1)
    if not any_nan(llf_t):
        ga, gP = loglike_backward(y, Z, d, H, T, c, R, Q, a_pred, P_pred, tol, llbar,
                                  gy, gZ, gd, gH, gT, gc, gR, gQ, grad_T, grad_Z)
        ga1[:] = ga
        gP1[:, :] = gP


def loglike_and_grad(y, Z, d, H, T, c, R, Q, a1, P1, tol, llbar=None):
    """Convenience wrapper (NumPy in, NumPy out): total log-likelihood and gradient dict.

    Parameters as :func:`loglike_forward`; ``llbar`` (n,) defaults to ones (the gradient of
    the total).  Returns ``(llf_t, grads)`` with ``grads`` keyed by y, Z, d, H, T, c, R, Q,
    a1, P1; the gradient is zero when some :math:`F_t` is not positive definite.

    Examples
    --------
    Local level, F_1 = P1 + H = 2, v_1 = 1: d ll / d H = -(1/F - v^2/F^2)/2 = -1/8.

    >>> import numpy as np
    >>> one = np.ones((1, 1, 1))
    >>> ll, g = loglike_and_grad(np.array([[1.0]]), one, np.zeros((1, 1)), one, one,
    ...                          np.zeros((1, 1)), one, one, np.zeros(1), np.eye(1), 1e-12)
    >>> round(float(g["H"][0, 0, 0]), 12)
    -0.125
    """
    args = [np.array(x, dtype=np.float64, order="C") for x in (y, Z, d, H, T, c, R, Q, a1, P1)]
    llf_t, a_pred, P_pred = filter_moments(*args, tol)
    llbar = np.ones(llf_t.shape[0]) if llbar is None else np.array(llbar, dtype=np.float64)
    grads = gradients(*args, llf_t, a_pred, P_pred, llbar, tol, True, True)
    return llf_t, dict(zip(("y", "Z", "d", "H", "T", "c", "R", "Q", "a1", "P1"), grads, strict=True))
