r"""The exact diffuse steps and their adjoint (reverse) pass, for a planned diffuse period.

Forward (D&K 2012, sections 5.2 and 6.4, univariate form; diagonal H): for each planned
observed row i of step t, with :math:`z = Z_{t,i}`, :math:`v = y_{t,i} - d_{t,i} - z'a`,
:math:`M_* = P_*z`, :math:`F_* = z'M_* + H_{t,ii}`, :math:`M_\infty = P_\infty z`,
:math:`F_\infty = z'M_\infty`:

* diffuse row (:math:`F_\infty > 0` in the plan):
  :math:`a \leftarrow a + M_\infty v/F_\infty`,
  :math:`P_* \leftarrow P_* - (M_*M_\infty' + M_\infty M_*')/F_\infty + M_\infty M_\infty' F_*/F_\infty^2`,
  :math:`P_\infty \leftarrow P_\infty - M_\infty M_\infty'/F_\infty`,
  :math:`\ell_t \mathrel{+}= -\tfrac12(\log 2\pi + \log F_\infty)` (eqs. 5.12-5.14 and 7.4);
* ordinary row, when :math:`F_* > tol`: :math:`a \leftarrow a + M_*v/F_*`,
  :math:`P_* \leftarrow P_* - M_*M_*'/F_*`,
  :math:`\ell_t \mathrel{+}= -\tfrac12(\log 2\pi + \log F_* + v^2/F_*)`;

then :math:`a \leftarrow Ta + c`, :math:`P_* \leftarrow TP_*T' + RQR'`,
:math:`P_\infty \leftarrow TP_\infty T'`.  Which rows are diffuse depends on Z, T and the
missing-value pattern only (the plan of :func:`pymc_dlm.symbolic.diffuse_plan`), so it is
an input here, as arrays: ``rows[t, q]`` the q-th planned row of step t (-1 pads) and
``flags[t, q]`` 1 for a diffuse update.

Backward: reverse-mode differentiation of exactly these operations, step by step and row by
row from the stored states before each row (formulas in :func:`_row_backward`).  H, Q and
P1 enter as their symmetric parts, so their gradients are symmetric, as in
:mod:`pymc_dlm.numeric.adjoint`, whose regular pass starts from this one's
:math:`a_{d+1}, P_{*,d+1}`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels import LOG2PI, predict, predict_cov, rqr

__all__ = ["diffuse_backward", "diffuse_forward", "scalar_backward", "scalar_forward"]

# Small loops instead of ``@``/``np.outer``: numba compiles them in a fraction of the time
# (matmul dispatch is costly to type and to generate), and the matrices here are small.


@njit(cache=True)
def _at(A, t):  # pragma: no cover - compiled
    return A[t] if A.shape[0] > 1 else A[0]


@njit(cache=True)
def _dot(x, y):  # pragma: no cover - compiled
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i]
    return s


@njit(cache=True)
def _mv_into(A, x, out):  # pragma: no cover - compiled
    """out = A x (zeros of x skipped)."""
    for i in range(A.shape[0]):
        s = 0.0
        for j in range(A.shape[1]):
            if x[j] != 0.0:
                s += A[i, j] * x[j]
        out[i] = s


@njit(cache=True)
def _mm(A, B):  # pragma: no cover - compiled
    """A B, the zeros of A skipped (T on the left: O(nnz(T) m), not O(m^3))."""
    out = np.zeros((A.shape[0], B.shape[1]))
    for i in range(A.shape[0]):
        for k in range(A.shape[1]):
            aik = A[i, k]
            if aik != 0.0:
                for j in range(B.shape[1]):
                    out[i, j] += aik * B[k, j]
    return out


@njit(cache=True)
def _tr(A):  # pragma: no cover - compiled
    """A' (a C-contiguous copy)."""
    out = np.empty((A.shape[1], A.shape[0]))
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            out[j, i] = A[i, j]
    return out


@njit(cache=True)
def _outer(x, y):  # pragma: no cover - compiled
    out = np.empty((x.shape[0], y.shape[0]))
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = x[i] * y[j]
    return out


@njit(cache=True)
def _row_forward(z, v, h, diffuse, tol, a, Ps, Pi, Ms, Mi):  # pragma: no cover - compiled
    """One planned row: (a, Ps, Pi) updated in place; returns the row's log-likelihood.
    Ms, Mi: (m,) scratch."""
    m = z.shape[0]
    _mv_into(Ps, z, Ms)
    fs = _dot(z, Ms) + h
    if diffuse:
        _mv_into(Pi, z, Mi)
        fi = _dot(z, Mi)
        g = v / fi
        for i in range(m):  # Mi <- K_inf = M_inf / F_inf
            a[i] += Mi[i] * g
            Mi[i] = Mi[i] / fi
        for i in range(m):  # P_* - (M_* K' + K M_*') + KK' F_*, P_inf - KK' F_inf: symmetric
            ki = Mi[i]
            mi = Ms[i]
            for j in range(m):
                kk = ki * Mi[j]
                Ps[i, j] = Ps[i, j] - (mi * Mi[j] + ki * Ms[j]) + kk * fs
                Pi[i, j] = Pi[i, j] - kk * fi
        return -0.5 * (LOG2PI + np.log(fi))
    if fs > tol:
        g = v / fs
        for i in range(m):  # Ms <- K = M_* / F_*, then P_* - KK' F_*
            a[i] += Ms[i] * g
            Ms[i] = Ms[i] / fs
        for i in range(m):
            ki = Ms[i]
            for j in range(m):
                Ps[i, j] = Ps[i, j] - (ki * Ms[j]) * fs
        return -0.5 * (LOG2PI + np.log(fs) + v * v / fs)
    return 0.0


@njit(cache=True)
def _run(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol, tape_a, tape_Ps, tape_Pi,
         tape_v, store):  # pragma: no cover - compiled
    r"""The forward pass; with ``store`` the states before each row and before each prediction
    go to the tapes (slot ``rows.shape[1]`` of step t holds the state before its prediction).
    The prediction is :func:`~pymc_dlm.numeric.kernels.predict` (and ``predict_cov`` for
    :math:`P_\infty`) into a second set of buffers, then the two sets swap."""
    nd, np_ = rows.shape
    m, r = a1.shape[0], R.shape[2]
    a = a1.copy()
    Ps = 0.5 * (P1 + _tr(P1))
    Pi = P1inf.copy()
    a2, Ps2, Pi2 = np.empty(m), np.empty((m, m)), np.empty((m, m))
    work, RQR, wr, Qs = np.empty((m, m)), np.empty((m, m)), np.empty((m, r)), np.empty((r, r))
    Ms, Mi = np.empty(m), np.empty(m)
    ll = np.zeros(nd)
    for t in range(nd):
        Zt, dt, Ht = _at(Z, t), _at(d, t), _at(H, t)
        for q in range(np_):
            i = rows[t, q]
            if i < 0:
                break
            z = Zt[i]
            v = y[t, i] - dt[i] - _dot(z, a)
            if store:
                tape_a[t, q] = a
                tape_Ps[t, q] = Ps
                tape_Pi[t, q] = Pi
                tape_v[t, q] = v
            ll[t] += _row_forward(z, v, Ht[i, i], flags[t, q] != 0, tol, a, Ps, Pi, Ms, Mi)
        if store:
            tape_a[t, np_] = a
            tape_Ps[t, np_] = Ps
            tape_Pi[t, np_] = Pi
        Tt, Qt = _at(T, t), _at(Q, t)
        for i in range(r):
            for j in range(r):
                Qs[i, j] = 0.5 * (Qt[i, j] + Qt[j, i])
        rqr(_at(R, t), Qs, RQR, wr)
        predict(a, Ps, Tt, _at(c, t), RQR, a2, Ps2, work)
        predict_cov(Pi, Tt, Pi2, work)
        a, a2 = a2, a
        Ps, Ps2 = Ps2, Ps
        Pi, Pi2 = Pi2, Pi
    return ll, a, Ps


@njit(cache=True, _nrt=False)
def scalar_forward(y, Z, d, H, T, c, R, Q, a, Ps, Pi, rows, flags, tol, ll,
                   tape):  # pragma: no cover - compiled
    """The planned diffuse steps for one state, one series and one disturbance, on scalars:
    the operations of :func:`_run` in the same order, without arrays.

    Reads the first nd = ``rows.shape[0]`` steps of y and of the system arrays (full-length
    arrays may be passed); writes each step's log-likelihood into ``ll[:nd]``; returns
    :math:`(a_{d+1}, P_{*,d+1})`.  With a ``tape`` of shape (nd, 2, 4) the state
    (a, P_*, P_inf, v) before the row (slot 0) and (a, P_*, P_inf) before the prediction
    (slot 1) of each step are stored (for :func:`scalar_backward`); a tape of length 0 is
    not written."""
    nd = rows.shape[0]
    store = tape.shape[0] > 0
    for t in range(nd):
        ll[t] = 0.0
        if store:
            tape[t, 0, 0], tape[t, 0, 1], tape[t, 0, 2] = a, Ps, Pi
        if rows[t, 0] >= 0:
            z = Z[t if Z.shape[0] > 1 else 0, 0, 0]
            v = y[t, 0] - d[t if d.shape[0] > 1 else 0, 0] - z * a
            if store:
                tape[t, 0, 3] = v
            Ms = Ps * z
            fs = z * Ms + H[t if H.shape[0] > 1 else 0, 0, 0]
            if flags[t, 0] != 0:
                Mi = Pi * z
                fi = z * Mi
                a = a + Mi * (v / fi)
                Ps = Ps - (Ms * Mi + Mi * Ms) / fi + (Mi * Mi) * (fs / fi**2)
                Pi = Pi - (Mi * Mi) / fi
                ll[t] += -0.5 * (LOG2PI + math.log(fi))
            elif fs > tol:
                a = a + Ms * (v / fs)
                Ps = Ps - (Ms * Ms) / fs
                ll[t] += -0.5 * (LOG2PI + math.log(fs) + v * v / fs)
        if store:
            tape[t, 1, 0], tape[t, 1, 1], tape[t, 1, 2] = a, Ps, Pi
        tt = T[t if T.shape[0] > 1 else 0, 0, 0]
        rr = R[t if R.shape[0] > 1 else 0, 0, 0]
        qq = Q[t if Q.shape[0] > 1 else 0, 0, 0]
        a = tt * a + c[t if c.shape[0] > 1 else 0, 0]
        Ps = (tt * Ps) * tt + (rr * qq) * rr
        Pi = (tt * Pi) * tt
    return a, Ps


@njit(cache=True, _nrt=False)
def scalar_backward(y, Z, d, H, T, c, R, Q, rows, flags, tol, llbar, tape, abar, Gs,
                    gy, gZ, gd, gH, gT, gc, gR, gQ):  # pragma: no cover - compiled
    """:func:`diffuse_backward` for m = p = r = 1: :func:`_row_backward` and the prediction's
    adjoint written out on scalars, from the ``tape`` of :func:`scalar_forward`.

    ``abar``, ``Gs``: the adjoints of :math:`a_{d+1}, P_{*,d+1}`.  The gradients are *added*
    into ``gy``, ``gZ``, ... (full-length arrays: step t < nd of a time-varying one is its
    row t); returns the adjoints :math:`(\bar a_1, \bar P_1)` of the start."""
    nd = rows.shape[0]
    Gi = 0.0
    for t in range(nd - 1, -1, -1):
        tt = t if T.shape[0] > 1 else 0
        tr = t if R.shape[0] > 1 else 0
        tq = t if Q.shape[0] > 1 else 0
        Tt, Rt, Qt = T[tt, 0, 0], R[tr, 0, 0], Q[tq, 0, 0]
        af, Psf, Pif = tape[t, 1, 0], tape[t, 1, 1], tape[t, 1, 2]
        GT = Gs * Tt
        GiT = Gi * Tt
        gT[tt, 0, 0] += abar * af + GT * Psf + Gs * (Tt * Psf) + GiT * Pif + Gi * (Tt * Pif)
        gc[t if c.shape[0] > 1 else 0, 0] += abar
        gR[tr, 0, 0] += ((Gs + Gs) * Rt) * Qt
        gQ[tq, 0, 0] += Rt * (Gs * Rt)
        abar = Tt * abar
        Gs = Tt * GT
        Gi = Tt * GiT
        if rows[t, 0] < 0:
            continue
        tz = t if Z.shape[0] > 1 else 0
        th = t if H.shape[0] > 1 else 0
        a, Ps, Pi, v = tape[t, 0, 0], tape[t, 0, 1], tape[t, 0, 2], tape[t, 0, 3]
        z = Z[tz, 0, 0]
        h = H[th, 0, 0]
        Ms = Ps * z
        fs = z * Ms + h
        lbar = llbar[t]
        S = Gs + Gs
        if flags[t, 0] != 0:
            Mi = Pi * z
            fi = z * Mi
            Si = Gi + Gi
            aM = abar * Mi
            vbar = aM / fi
            SMi = S * Mi
            MiGMi = Mi * (Gs * Mi)
            fsbar = MiGMi / fi**2
            fibar = (Ms * SMi) / fi**2 - 2.0 * MiGMi * fs / fi**3 \
                + (Mi * (Gi * Mi)) / fi**2 - aM * v / fi**2 - 0.5 * lbar / fi
            Msbar = -SMi / fi + z * fsbar
            Mibar = abar * (v / fi) - (S * Ms) / fi + SMi * (fs / fi**2) - (Si * Mi) / fi \
                + z * fibar
            Gi = Gi + Mibar * z
            zbar = Mi * fibar + Pi * Mibar
        elif fs > tol:
            aM = abar * Ms
            vbar = aM / fs - lbar * v / fs
            fsbar = -aM * v / fs**2 + (Ms * (Gs * Ms)) / fs**2 \
                - 0.5 * lbar * (1.0 / fs - v * v / fs**2)
            Msbar = abar * (v / fs) - (S * Ms) / fs + z * fsbar
            zbar = 0.0
        else:
            continue  # skipped in the forward pass
        Gs = Gs + Msbar * z
        zbar = zbar + (Ms * fsbar + Ps * Msbar - a * vbar)
        abar = abar - z * vbar
        gZ[tz, 0, 0] += zbar
        gH[th, 0, 0] += fsbar
        gd[t if d.shape[0] > 1 else 0, 0] -= vbar
        gy[t, 0] += vbar
    return abar, Gs


@njit(cache=True)
def diffuse_forward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol):  # pragma: no cover
    r"""The planned diffuse steps.

    Returns ``(ll (nd,), a (m,), P (m, m))``: each step's log-likelihood and
    :math:`a_{d+1}, P_{*,d+1}`.  ``y`` holds the first nd rows (NaN only where not planned).
    """
    m = a1.shape[0]
    e1, e2 = np.zeros((1, 1, m)), np.zeros((1, 1, m, m))
    return _run(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol, e1, e2, e2,
                np.zeros((1, 1)), False)


@njit(cache=True)
def _row_backward(z, v, a, Ps, Pi, h, diffuse, tol, lbar, abar, Gs, Gi, Ms, Mi, SMi, SMs, SiMi,
                  Msbar, Mibar, zbar):  # pragma: no cover - compiled
    r"""Adjoint of one row update, in place.  Inputs: the row's data and the state *before*
    it; the adjoints (abar, Gs, Gi) of the state after it, which become those of the state
    before it, and the weight lbar of its log-likelihood.  ``zbar`` receives the adjoint of z;
    returns ``(done, hbar, vbar)`` (``done`` False, nothing touched, for an ordinary row with
    :math:`F_* \le tol`, which the forward pass skipped).  Ms, Mi, SMi, SMs, SiMi, Msbar,
    Mibar: (m,) scratch.

    Diffuse row, with :math:`S = G_* + G_*'`, :math:`S_\infty = G_\infty + G_\infty'`:
    :math:`\bar M_* = -SM_\infty/F_\infty + z\bar F_*`,
    :math:`\bar M_\infty = \bar a v/F_\infty - SM_*/F_\infty + SM_\infty F_*/F_\infty^2
    - S_\infty M_\infty/F_\infty + z\bar F_\infty`,
    :math:`\bar F_* = M_\infty'G_*M_\infty/F_\infty^2`,
    :math:`\bar F_\infty = M_*'SM_\infty/F_\infty^2 - 2M_\infty'G_*M_\infty F_*/F_\infty^3
    + M_\infty'G_\infty M_\infty/F_\infty^2 - (\bar a'M_\infty)v/F_\infty^2 - \bar\ell/(2F_\infty)`,
    :math:`\bar v = \bar a'M_\infty/F_\infty`; then through :math:`M = Pz`, :math:`F = z'M (+h)`,
    :math:`v = y - d - z'a`.  Ordinary row: the same with :math:`M_*, F_*` only and
    :math:`\ell = -\tfrac12(\log F_* + v^2/F_*)`.
    """
    m = z.shape[0]
    _mv_into(Ps, z, Ms)  # M_* = P_* z
    fs = 0.0
    for i in range(m):
        fs += z[i] * Ms[i]
    fs += h
    if not diffuse and not fs > tol:
        return False, 0.0, 0.0
    MsGMs = 0.0
    for i in range(m):  # S M_* and M_*'G_*M_*
        s1 = 0.0
        s2 = 0.0
        for j in range(m):
            s1 += (Gs[i, j] + Gs[j, i]) * Ms[j]
            s2 += Gs[i, j] * Ms[j]
        SMs[i] = s1
        MsGMs += Ms[i] * s2
    if diffuse:
        _mv_into(Pi, z, Mi)  # M_inf = P_inf z
        fi = 0.0
        aM = 0.0
        for i in range(m):
            fi += z[i] * Mi[i]
            aM += abar[i] * Mi[i]
        vbar = aM / fi
        MiGMi = 0.0
        MiGiMi = 0.0
        MsSMi = 0.0
        for i in range(m):  # S M_inf, S_inf M_inf, M_inf'G_*M_inf, M_inf'G_inf M_inf
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            for j in range(m):
                s1 += (Gs[i, j] + Gs[j, i]) * Mi[j]
                s2 += Gs[i, j] * Mi[j]
                s3 += (Gi[i, j] + Gi[j, i]) * Mi[j]
                s4 += Gi[i, j] * Mi[j]
            SMi[i] = s1
            SiMi[i] = s3
            MiGMi += Mi[i] * s2
            MiGiMi += Mi[i] * s4
            MsSMi += Ms[i] * s1
        fsbar = MiGMi / fi**2
        fibar = MsSMi / fi**2 - 2.0 * MiGMi * fs / fi**3 + MiGiMi / fi**2 - aM * v / fi**2 \
            - 0.5 * lbar / fi
        for i in range(m):
            Msbar[i] = -SMi[i] / fi + z[i] * fsbar
            Mibar[i] = abar[i] * (v / fi) - SMs[i] / fi + SMi[i] * (fs / fi**2) - SiMi[i] / fi \
                + z[i] * fibar
        for j in range(m):  # zbar = M_inf fibar + P_inf' Mibar
            s = 0.0
            for i in range(m):
                s += Pi[i, j] * Mibar[i]
            zbar[j] = Mi[j] * fibar + s
        for j in range(m):  # G_inf += Mibar z'
            if z[j] != 0.0:
                for i in range(m):
                    Gi[i, j] += Mibar[i] * z[j]
    else:
        aM = 0.0
        for i in range(m):
            aM += abar[i] * Ms[i]
        vbar = aM / fs - lbar * v / fs
        fsbar = -aM * v / fs**2 + MsGMs / fs**2 - 0.5 * lbar * (1.0 / fs - v * v / fs**2)
        for i in range(m):
            Msbar[i] = abar[i] * (v / fs) - SMs[i] / fs + z[i] * fsbar
            zbar[i] = 0.0
    for j in range(m):  # zbar += M_* fsbar + P_*' Msbar - a vbar
        s = 0.0
        for i in range(m):
            s += Ps[i, j] * Msbar[i]
        zbar[j] += Ms[j] * fsbar + s - a[j] * vbar
    for j in range(m):  # G_* += Msbar z'
        if z[j] != 0.0:
            for i in range(m):
                Gs[i, j] += Msbar[i] * z[j]
    for i in range(m):
        abar[i] -= z[i] * vbar
    return True, fsbar, vbar


@njit(cache=True)
def _rq_adjoint(G, R, Q, gR, gQ, SR, GR):  # pragma: no cover - compiled
    r"""The adjoints of R and Q from G, the adjoint of :math:`P = \dots + RQR'` (G need not
    be symmetric): gR += (G + G') R sym(Q), gQ += R' G R; SR, GR (m, r) scratch."""
    m, r = R.shape
    for i in range(m):  # SR = (G + G') R, GR = G R
        for j in range(r):
            s1 = 0.0
            s2 = 0.0
            for k in range(m):
                s1 += (G[i, k] + G[k, i]) * R[k, j]
                s2 += G[i, k] * R[k, j]
            SR[i, j] = s1
            GR[i, j] = s2
    for i in range(m):
        for j in range(r):
            s = 0.0
            for k in range(r):
                s += SR[i, k] * (0.5 * (Q[k, j] + Q[j, k]))
            gR[i, j] += s
    for i in range(r):
        for j in range(r):
            s = 0.0
            for k in range(m):
                s += R[k, i] * GR[k, j]
            gQ[i, j] += s


@njit(cache=True)
def _times_T(G, T, out):  # pragma: no cover - compiled
    """out = G T (zeros of T skipped; terms in k order)."""
    m = G.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = 0.0
    for k in range(m):
        for j in range(m):
            t = T[k, j]
            if t != 0.0:
                for i in range(m):
                    out[i, j] += G[i, k] * t


@njit(cache=True)
def _T_times(T, G, out):  # pragma: no cover - compiled
    """out = T' G (zeros of T skipped; terms in k order)."""
    m = G.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = 0.0
        for k in range(m):
            t = T[k, i]
            if t != 0.0:
                for j in range(m):
                    out[i, j] += t * G[k, j]


@njit(cache=True)
def diffuse_backward(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol,
                     llbar, abar_end, Pbar_end, grad_T=True):  # pragma: no cover - compiled
    r"""Gradients of :math:`\sum_t\bar\ell_t\ell_t + \bar a'a_{d+1} + \langle\bar P, P_{*,d+1}\rangle`
    with respect to Z, d, H, T, c, R, Q, a1, P1 (each of its input's shape).

    Re-runs the forward pass storing the state before each row and before each prediction,
    then goes back through :func:`_row_backward` and the prediction's adjoint
    (:math:`\bar T \mathrel{+}= \bar a a' + \bar PTP' + \bar P'TP`, likewise for :math:`P_\infty`;
    :math:`\bar R \mathrel{+}= (\bar P + \bar P')RQ`, :math:`\bar Q \mathrel{+}= R'\bar PR`,
    :math:`\bar c \mathrel{+}= \bar a`, :math:`\bar a \leftarrow T'\bar a`,
    :math:`\bar P \leftarrow T'\bar PT`).  With ``grad_T`` False T's gradient is left zero
    (its :math:`O(m^3)` terms skipped; :func:`~pymc_dlm.numeric.adjoint.loglike_backward`'s
    ``grad_T``).  Products with T keep T on the left, where :func:`_mm` skips its zeros.
    """
    nd, np_ = rows.shape
    m = a1.shape[0]
    tape_a = np.zeros((nd, np_ + 1, m))
    tape_Ps = np.zeros((nd, np_ + 1, m, m))
    tape_Pi = np.zeros((nd, np_ + 1, m, m))
    tape_v = np.zeros((nd, np_))
    _run(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tol, tape_a, tape_Ps, tape_Pi,
         tape_v, True)
    gZ, gd, gH = np.zeros_like(Z), np.zeros_like(d), np.zeros_like(H)
    gT, gc, gR, gQ = np.zeros_like(T), np.zeros_like(c), np.zeros_like(R), np.zeros_like(Q)
    r = R.shape[2]
    abar = abar_end.copy()
    Gs = Pbar_end.copy()
    Gi = np.zeros((m, m))
    GT, GiT = np.empty((m, m)), np.empty((m, m))
    vecs = np.empty((8, m))
    Ms, Mi, SMi, SMs, SiMi, Msbar, Mibar, zbar = vecs
    SR, GR = np.empty((m, r)), np.empty((m, r))
    const_rq = R.shape[0] == 1 and Q.shape[0] == 1  # then R, Q's adjoints are linear in
    Gsum = np.zeros((m, m))  # sum_t G_{*,t+1}: one product at the end
    for t in range(nd - 1, -1, -1):
        tt = t if T.shape[0] > 1 else 0
        tr = t if R.shape[0] > 1 else 0
        tq = t if Q.shape[0] > 1 else 0
        tc = t if c.shape[0] > 1 else 0
        Tt, Rt, Qt = T[tt], R[tr], Q[tq]
        _times_T(Gs, Tt, GT)
        _times_T(Gi, Tt, GiT)
        if grad_T:
            af, Psf, Pif = tape_a[t, np_].copy(), tape_Ps[t, np_].copy(), tape_Pi[t, np_].copy()
            Tc = Tt.copy()
            gT[tt] += _outer(abar, af) + _mm(GT, _tr(Psf)) + _mm(_tr(Gs), _mm(Tc, Psf)) \
                + _mm(GiT, _tr(Pif)) + _mm(_tr(Gi), _mm(Tc, Pif))
        for i in range(m):
            gc[tc, i] += abar[i]
        if const_rq:
            for i in range(m):
                for j in range(m):
                    Gsum[i, j] += Gs[i, j]
        else:
            _rq_adjoint(Gs, Rt, Qt, gR[tr], gQ[tq], SR, GR)
        for i in range(m):  # abar = T' abar
            s = 0.0
            for k in range(m):
                if Tt[k, i] != 0.0:
                    s += Tt[k, i] * abar[k]
            Ms[i] = s
        abar[:] = Ms
        _T_times(Tt, GT, Gs)
        _T_times(Tt, GiT, Gi)
        tz = t if Z.shape[0] > 1 else 0
        td = t if d.shape[0] > 1 else 0
        th = t if H.shape[0] > 1 else 0
        nq = 0
        while nq < np_ and rows[t, nq] >= 0:
            nq += 1
        for q in range(nq - 1, -1, -1):
            i = rows[t, q]
            done, hbar, vbar = _row_backward(
                Z[tz, i], tape_v[t, q], tape_a[t, q], tape_Ps[t, q], tape_Pi[t, q], H[th, i, i],
                flags[t, q] != 0, tol, llbar[t], abar, Gs, Gi, Ms, Mi, SMi, SMs, SiMi, Msbar,
                Mibar, zbar)
            if done:
                for j in range(m):
                    gZ[tz, i, j] += zbar[j]
                gH[th, i, i] += hbar
                gd[td, i] -= vbar
    if const_rq:
        _rq_adjoint(Gsum, R[0], Q[0], gR[0], gQ[0], SR, GR)
    for k in range(gQ.shape[0]):
        gQ[k] = 0.5 * (gQ[k] + _tr(gQ[k]))
    return gZ, gd, gH, gT, gc, gR, gQ, abar, 0.5 * (Gs + _tr(Gs))
