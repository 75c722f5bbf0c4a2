r"""numba step kernels of the NumPy engine (Durbin and Koopman 2012, chapters 4-6).

One source of truth: the filter, the smoother and the stepwise procedure all call these.
Kernels write into caller-owned arrays so that the time loops allocate nothing per step.
Zero entries of ``T`` and ``Z`` are skipped, which makes structural models (mostly zeros)
cheap without a separate sparse code path.

Names and argument order are shared with the symbolic engine:
``predict(a, P, T, c, RQR, ...)`` and ``update(a, P, y, Z, d, H, ...)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG2PI = math.log(2.0 * math.pi)

# ``update`` status codes
OK = 0
SINGULAR = 1  # F was singular: generalised (Moore-Penrose) inverse used, rank < nobs


@njit(cache=True, inline="always")
def rqr(R, Q, out, work):  # pragma: no cover - compiled
    """out = R Q R' (m x m), symmetric by construction; work is (m, r)."""
    m, r = R.shape
    for i in range(m):
        for j in range(r):
            s = 0.0
            for k in range(r):
                s += R[i, k] * Q[k, j]
            work[i, j] = s
    for i in range(m):
        for j in range(i, m):
            s = 0.0
            for k in range(r):
                s += work[i, k] * R[j, k]
            out[i, j] = s
            out[j, i] = s


@njit(cache=True, inline="always")
def predict_mean(a, T, c, a_out):  # pragma: no cover - compiled
    """The mean part of :func:`predict`: a_out = T a + c."""
    m = a.shape[0]
    for i in range(m):
        s = c[i]
        for k in range(m):
            t = T[i, k]
            if t != 0.0:
                s += t * a[k]
        a_out[i] = s


@njit(cache=True, inline="always")
def predict(a, P, T, c, RQR, a_out, P_out, work):  # pragma: no cover - compiled
    r"""Prediction step, D&K (2012) eq. 4.21 (second half).

    .. math:: a_{t+1} = T_t a_{t|t} + c_t,\quad P_{t+1} = T_t P_{t|t} T_t' + R_t Q_t R_t'

    ``P_out`` is symmetric by construction (upper triangle computed, then mirrored).
    ``work`` is (m, m).  ``a``/``a_out`` and ``P``/``P_out`` must not alias.
    """
    predict_mean(a, T, c, a_out)
    sandwich(P, T, RQR, P_out, work)


@njit(cache=True, inline="always")
def predict_cov(P, T, P_out, work):  # pragma: no cover - compiled
    """P_out = T P T' (the diffuse part of the prediction, D&K eq. 5.8)."""
    sandwich(P, T, None, P_out, work)


@njit(cache=True, inline="always")
def sandwich(P, T, base, P_out, work):  # pragma: no cover - compiled
    """P_out = T P T' + base (base None: + 0), symmetric by construction; ``work`` (m, m).

    Only the nonzeros of T are visited (m^2 tests, not m^3): work = T P row by row, then
    P_out[i, j] = base[i, j] + sum_k work[i, k] T[j, k] for i <= j with the terms in k order
    (as a dot product would add them), mirrored below the diagonal.
    """
    m = P.shape[0]
    for i in range(m):
        for j in range(m):
            work[i, j] = 0.0
        for k in range(m):
            t = T[i, k]
            if t != 0.0:
                for j in range(m):
                    work[i, j] += t * P[k, j]
    for j in range(m):
        for i in range(j + 1):
            P_out[i, j] = 0.0 if base is None else base[i, j]
    times_T_upper(work, T, P_out)


@njit(cache=True, inline="always")
def times_T_upper(work, T, P_out):  # pragma: no cover - compiled
    """P_out[i, j] += sum_k work[i, k] T[j, k] for i <= j (terms in k order, zeros of T
    skipped), mirrored below the diagonal: the second product of T P T' (work = T P) onto
    the upper triangle its caller set (:func:`sandwich`, :func:`predict_downdate`)."""
    m = T.shape[0]
    for j in range(m):
        for k in range(m):
            t = T[j, k]
            if t != 0.0:
                for i in range(j + 1):
                    P_out[i, j] += work[i, k] * t
        for i in range(j):
            P_out[j, i] = P_out[i, j]


@njit(cache=True, inline="always")
def predict_downdate(a, P, T, c, base, z, f, a_out, P_out, work, K):  # pragma: no cover
    r"""The prediction when one row (z, f) was observed, without :math:`P_{t|t}`:

    .. math:: a_{t+1} = Ta_{t|t} + c,\quad
              P_{t+1} = T(P - Pzz'P/f)T' + \text{base} = TPT' - KK'/f + \text{base},
              \quad K = TPz

    (D&K eqs. 4.21 and 4.24 with :math:`M = Pz`, :math:`K = TM`; ``a`` is
    :math:`a_{t|t}`, ``P`` is :math:`P_t`).  As :func:`predict`, the zeros of T and of z
    skipped (one pass over T for both products), symmetric by construction; ``work`` (m, m),
    ``K`` (m,).  ``a``/``a_out`` and ``P``/``P_out`` must not alias.
    """
    m = P.shape[0]
    for i in range(m):
        s = c[i]
        first = True
        for k in range(m):
            t = T[i, k]
            if t != 0.0:
                s += t * a[k]
                if first:
                    for j in range(m):
                        work[i, j] = t * P[k, j]
                    first = False
                else:
                    for j in range(m):
                        work[i, j] += t * P[k, j]
        a_out[i] = s
        if first:
            for j in range(m):
                work[i, j] = 0.0
    for i in range(m):  # K = (TP) z
        s = 0.0
        for k in range(m):
            if z[k] != 0.0:
                s += work[i, k] * z[k]
        K[i] = s
    for j in range(m):
        kj = K[j] / f
        for i in range(j + 1):
            P_out[i, j] = base[i, j] - K[i] * kj
    times_T_upper(work, T, P_out)


@njit(cache=True, inline="always")
def observed_rows(y, idx):  # pragma: no cover - compiled
    """Write the indices of the non-NaN entries of y into idx; return how many."""
    k = 0
    for i in range(y.shape[0]):
        if not math.isnan(y[i]):
            idx[k] = i
            k += 1
    return k


@njit(cache=True, inline="always")
def forecast_mean(a, Z, d, y, v):  # pragma: no cover - compiled
    """The mean part of :func:`forecast_moments`: v = y - Z a - d."""
    p, m = Z.shape
    for i in range(p):
        s = d[i]
        for k in range(m):
            z = Z[i, k]
            if z != 0.0:
                s += z * a[k]
        v[i] = y[i] - s


@njit(cache=True, inline="always")
def forecast_moments(a, P, Z, d, H, v, F, M, y):  # pragma: no cover - compiled
    r"""One-step prediction of y_t for every row, D&K eq. 4.13.

    :math:`v_t = y_t - Z_t a_t - d_t` (NaN where y is missing), :math:`F_t = Z_t P_t Z_t' + H_t`,
    and ``M = P_t Z_t'`` (m, p), reused by the update.
    """
    p, m = Z.shape
    forecast_mean(a, Z, d, y, v)
    for i in range(p):  # M[:, i] = P Z_i' over the nonzeros of Z_i (terms in k order)
        for j in range(m):
            M[j, i] = 0.0
        for k in range(m):
            z = Z[i, k]
            if z != 0.0:
                for j in range(m):
                    M[j, i] += P[j, k] * z
    for i in range(p):
        for j in range(i, p):
            s = H[i, j]
            for k in range(m):
                z = Z[i, k]
                if z != 0.0:
                    s += z * M[k, j]
            F[i, j] = s
            F[j, i] = s


@njit(cache=True, inline="always")
def cholesky_inplace(A, k, tol):  # pragma: no cover - compiled
    """Lower Cholesky factor of A[:k, :k] in place; False if a pivot is <= tol * max diag."""
    big = 0.0
    for i in range(k):
        if A[i, i] > big:
            big = A[i, i]
    if big <= 0.0:
        return False
    thresh = tol * big
    for j in range(k):
        s = A[j, j]
        for q in range(j):
            s -= A[j, q] * A[j, q]
        if s <= thresh:
            return False
        ljj = math.sqrt(s)
        A[j, j] = ljj
        for i in range(j + 1, k):
            s = A[i, j]
            for q in range(j):
                s -= A[i, q] * A[j, q]
            A[i, j] = s / ljj
        for i in range(j):
            A[i, j] = 0.0
    return True


@njit(cache=True, inline="always")
def update_mean(a, v, F, M, idx, k, L, W, u, a_out):  # pragma: no cover - compiled
    r"""The mean part of :func:`update_cholesky` (k >= 1): :math:`a_{t|t} = a_t + W'u`,
    :math:`u = L^{-1}v`; returns :math:`v'F^{-1}v = u'u`.  With one observed row,
    :math:`a_{t|t} = a_t + M v/f` and :math:`v^2/f`.  ``L`` and ``W`` (or ``F`` and ``M``)
    as left by :func:`update_cholesky`; the steady-state steps of the fast loop call this
    alone, with the same arithmetic, so their numbers are those of the full step.
    """
    m = a.shape[0]
    if k == 1:
        i0 = idx[0]
        g = v[i0] / F[i0, i0]
        for i in range(m):
            a_out[i] = a[i] + M[i, i0] * g
        return v[i0] * g
    ss = 0.0
    for q in range(k):
        s = v[idx[q]]
        for q2 in range(q):
            s -= L[q, q2] * u[q2]
        u[q] = s / L[q, q]
        ss += u[q] * u[q]
    for i in range(m):
        s = a[i]
        for q in range(k):
            s += W[q, i] * u[q]
        a_out[i] = s
    return ss


@njit(cache=True, inline="always")
def update_cholesky(a, P, v, F, M, idx, k, tol, a_out, P_out, Finv, L, W, u):  # pragma: no cover
    r"""The updating step of :func:`update` when :math:`F_t` is positive definite (k >= 1).

    Returns ``(ok, logdet, ss)``; ``ok`` is False (outputs untouched) when a Cholesky pivot is
    not positive relative to ``tol``.  Arguments as :func:`update`; a ``P_out`` of shape
    (0, 0) asks for no :math:`P_{t|t}` (the adjoint pass needs it only for the gradient of T).
    With one observed row (the common univariate case) :math:`F_t` is a scalar f and the step
    is written out with scalars: :math:`a_{t|t} = a_t + Mv/f`, :math:`P_{t|t} = P_t - MM'/f`.
    """
    m = a.shape[0]
    if k == 1:
        i0 = idx[0]
        f = F[i0, i0]
        if not f > 0.0:
            return False, 0.0, 0.0
        ss = update_mean(a, v, F, M, idx, k, L, W, u, a_out)
        for i in range(P_out.shape[0]):
            wi = M[i, i0] / f
            for j in range(i, m):
                s = P[i, j] - wi * M[j, i0]
                P_out[i, j] = s
                P_out[j, i] = s
        if Finv.shape[0] > 0:
            Finv[:, :] = 0.0
            Finv[i0, i0] = 1.0 / f
        return True, math.log(f), ss
    for q1 in range(k):
        for q2 in range(k):
            L[q1, q2] = F[idx[q1], idx[q2]]
    if not cholesky_inplace(L, k, tol):
        return False, 0.0, 0.0
    logdet = 0.0
    for q in range(k):
        logdet += 2.0 * math.log(L[q, q])
    for j in range(m):
        for q in range(k):
            s = M[j, idx[q]]
            for q2 in range(q):
                s -= L[q, q2] * W[q2, j]
            W[q, j] = s / L[q, q]
    ss = update_mean(a, v, F, M, idx, k, L, W, u, a_out)
    for i in range(P_out.shape[0]):
        for j in range(i, m):
            s = P[i, j]
            for q in range(k):
                s -= W[q, i] * W[q, j]
            P_out[i, j] = s
            P_out[j, i] = s
    if Finv.shape[0] > 0:
        Finv[:, :] = 0.0
        # F^{-1} = L^{-T} L^{-1}: invert L column by column (only for the smoother).
        for col in range(k):
            for q in range(k):
                s = 1.0 if q == col else 0.0
                for q2 in range(q):
                    s -= L[q, q2] * u[q2]
                u[q] = s / L[q, q]
            for q in range(k - 1, -1, -1):
                s = u[q]
                for q2 in range(q + 1, k):
                    s -= L[q2, q] * Finv[idx[q2], idx[col]]
                Finv[idx[q], idx[col]] = s / L[q, q]
    return True, logdet, ss


@njit(cache=True, inline="always")
def update(a, P, v, F, M, idx, k, tol, a_out, P_out, Finv, L, W, u):  # pragma: no cover
    r"""Updating step with the observed rows ``idx[:k]``, D&K (2012) eqs. 4.24-4.26.

    .. math::

        a_{t|t} = a_t + P_t Z_t' F_t^{-1} v_t, \quad
        P_{t|t} = P_t - P_t Z_t' F_t^{-1} Z_t P_t

    computed from the Cholesky factor :math:`F = L L'` as :math:`W = L^{-1} M'`,
    :math:`u = L^{-1} v`, :math:`a_{t|t} = a_t + W'u`, :math:`P_{t|t} = P_t - W'W` (no inverse).
    When a Cholesky pivot is not positive (relative to ``tol`` times the largest diagonal entry
    of F) F is treated as singular: eigendecomposition, rank = number of eigenvalues above
    ``tol`` times the largest, Moore-Penrose inverse :math:`F^+`, and the log of the product of
    the non-zero eigenvalues (Rao 1973, pp. 527-528).

    Parameters (all arrays caller-owned): ``v`` (p,) and ``F`` (p, p), ``M = P Z'`` (m, p) from
    :func:`forecast_moments`; ``Finv`` (p, p) receives the (generalised) inverse of the observed
    block (zeros elsewhere) for the smoother, or is a (0, 0) array to skip it; ``L`` (p, p),
    ``W`` (p, m), ``u`` (p,) are work arrays.

    Returns
    -------
    status, rank, logdet, ss : int, int, float, float
        ``ss = v' F^- v`` and ``logdet = log|F|`` (pseudo-determinant when singular).
    """
    m = a.shape[0]
    if k == 0:
        for i in range(m):
            a_out[i] = a[i]
            for j in range(m):
                P_out[i, j] = P[i, j]
        if Finv.shape[0] > 0:
            Finv[:, :] = 0.0
        return OK, 0, 0.0, 0.0
    ok, logdet, ss = update_cholesky(a, P, v, F, M, idx, k, tol, a_out, P_out, Finv, L, W, u)
    if ok:
        return OK, k, logdet, ss
    # Singular F: generalised inverse through the eigendecomposition (Rao 1973).
    Fo = np.empty((k, k))
    for q1 in range(k):
        for q2 in range(k):
            Fo[q1, q2] = F[idx[q1], idx[q2]]
    lam, V = np.linalg.eigh(Fo)
    top = lam[k - 1]
    rank = 0
    logdet = 0.0
    Fp = np.zeros((k, k))
    for q in range(k):
        if top > 0.0 and lam[q] > tol * top:
            rank += 1
            logdet += math.log(lam[q])
            for q1 in range(k):
                for q2 in range(k):
                    Fp[q1, q2] += V[q1, q] * V[q2, q] / lam[q]
    ss = 0.0
    Fv = np.zeros(k)
    for q1 in range(k):
        s = 0.0
        for q2 in range(k):
            s += Fp[q1, q2] * v[idx[q2]]
        Fv[q1] = s
        ss += v[idx[q1]] * s
    for i in range(m):
        s = a[i]
        for q in range(k):
            s += M[i, idx[q]] * Fv[q]
        a_out[i] = s
    MF = np.zeros((m, k))
    for i in range(m):
        for q in range(k):
            s = 0.0
            for q2 in range(k):
                s += M[i, idx[q2]] * Fp[q2, q]
            MF[i, q] = s
    for i in range(m):
        for j in range(i, m):
            s = P[i, j]
            for q in range(k):
                s -= MF[i, q] * M[j, idx[q]]
            P_out[i, j] = s
            P_out[j, i] = s
    if Finv.shape[0] > 0:
        Finv[:, :] = 0.0
        for q1 in range(k):
            for q2 in range(k):
                Finv[idx[q1], idx[q2]] = Fp[q1, q2]
    return SINGULAR, rank, logdet, ss


@njit(cache=True)
def univariate_obs(y, Z, d, H, idx, k):  # pragma: no cover - compiled
    """Observed rows prepared for the univariate treatment (D&K 2012, section 6.4).

    Returns ``(ys, Zs, h)``: ``ys = y_o - d_o``, ``Zs = Z_o`` and ``h = diag(H_o)`` when
    ``H_o`` is diagonal; otherwise the rows are transformed by :math:`L^{-1}` with
    :math:`H_o = L D L'` (L unit lower-triangular), so that the transformed noise has the
    diagonal covariance D (D&K 2012, section 6.4.3).
    """
    m = Z.shape[1]
    ys = np.empty(k)
    Zs = np.empty((k, m))
    h = np.empty(k)
    diagonal = True
    for q1 in range(k):
        ys[q1] = y[idx[q1]] - d[idx[q1]]
        for j in range(m):
            Zs[q1, j] = Z[idx[q1], j]
        h[q1] = H[idx[q1], idx[q1]]
        for q2 in range(k):
            if q1 != q2 and H[idx[q1], idx[q2]] != 0.0:
                diagonal = False
    if diagonal:
        return ys, Zs, h, True
    Ho = np.empty((k, k))
    for q1 in range(k):
        for q2 in range(k):
            Ho[q1, q2] = H[idx[q1], idx[q2]]
    if not cholesky_inplace(Ho, k, 0.0):
        return ys, Zs, h, False
    # H_o = L D L' with unit lower-triangular L = C diag(C)^-1 (C the Cholesky factor) and
    # D = diag(C)^2; rows are transformed by L^{-1}, whose Jacobian is 1, so the likelihood of
    # the transformed rows is that of the original ones.
    for q in range(k):
        s = ys[q]
        for q2 in range(q):
            s -= Ho[q, q2] * ys[q2]
        ys[q] = s / Ho[q, q]
        for j in range(m):
            s = Zs[q, j]
            for q2 in range(q):
                s -= Ho[q, q2] * Zs[q2, j]
            Zs[q, j] = s / Ho[q, q]
    for q in range(k):
        ys[q] *= Ho[q, q]
        for j in range(m):
            Zs[q, j] *= Ho[q, q]
        h[q] = Ho[q, q] * Ho[q, q]
    return ys, Zs, h, True


@njit(cache=True)
def update_diffuse(a, Pstar, Pinf, ys, Zs, h, tol_diffuse, vi, Fstar, Finf, Mstar, Minf):
    r"""Exact diffuse updating step, observation by observation (univariate treatment).

    Koopman and Durbin (2000); Durbin and Koopman (2012), sections 5.2 and 6.4.  For each
    observation i with :math:`F_{\infty,i} = Z_i P_\infty Z_i'` and
    :math:`F_{*,i} = Z_i P_* Z_i' + h_i`:

    if :math:`F_{\infty,i} > tol`:  :math:`K_0 = M_\infty / F_\infty`,
    :math:`K_1 = M_* / F_\infty - M_\infty F_* / F_\infty^2`,
    :math:`a \leftarrow a + K_0 v_i`,
    :math:`P_* \leftarrow P_* L_0' + P_\infty L_1'`, :math:`P_\infty \leftarrow P_\infty L_0'`
    with :math:`L_0 = I - K_0 Z_i`, :math:`L_1 = -K_1 Z_i`, and log-likelihood contribution
    :math:`-\tfrac12(\log 2\pi + \log F_\infty)`;

    elif :math:`F_{*,i} > tol`: the ordinary univariate update with contribution
    :math:`-\tfrac12(\log 2\pi + \log F_* + v_i^2/F_*)`;

    else the observation carries no information and is skipped (statsmodels' convention).

    ``a``, ``Pstar``, ``Pinf`` are updated in place; the per-observation quantities are written
    into ``vi, Fstar, Finf`` (k,) and ``Mstar, Minf`` (k, m) for the smoother.

    Returns
    -------
    llf : float
        The log-likelihood contribution.
    rank : int
        Number of informative observations.
    """  # pragma: no cover - compiled
    k, m = Zs.shape
    llf = 0.0
    rank = 0
    for i in range(k):
        s = ys[i]
        for j in range(m):
            s -= Zs[i, j] * a[j]
        vi[i] = s
        fs = h[i]
        fi = 0.0
        for j in range(m):
            ms = 0.0
            mi = 0.0
            for q in range(m):
                z = Zs[i, q]
                if z != 0.0:
                    ms += Pstar[j, q] * z
                    mi += Pinf[j, q] * z
            Mstar[i, j] = ms
            Minf[i, j] = mi
        for j in range(m):
            fs += Zs[i, j] * Mstar[i, j]
            fi += Zs[i, j] * Minf[i, j]
        Fstar[i] = fs
        Finf[i] = fi
        if fi > tol_diffuse:
            f1 = 1.0 / fi
            f2 = -fs * f1 * f1
            for j in range(m):
                a[j] += Minf[i, j] * f1 * vi[i]
            # P* <- P* - (M* Mi' + Mi M*')/Fi + Mi Mi' F*/Fi^2 ; Pinf <- Pinf - Mi Mi'/Fi
            for j in range(m):
                for q in range(j, m):
                    val = Pstar[j, q] - (Mstar[i, j] * Minf[i, q] + Minf[i, j] * Mstar[i, q]) * f1
                    val -= Minf[i, j] * Minf[i, q] * f2
                    Pstar[j, q] = val
                    Pstar[q, j] = val
                    val = Pinf[j, q] - Minf[i, j] * Minf[i, q] * f1
                    Pinf[j, q] = val
                    Pinf[q, j] = val
            llf -= 0.5 * (LOG2PI + math.log(fi))
            rank += 1
        elif fs > tol_diffuse:
            f1 = 1.0 / fs
            for j in range(m):
                a[j] += Mstar[i, j] * f1 * vi[i]
            for j in range(m):
                for q in range(j, m):
                    val = Pstar[j, q] - Mstar[i, j] * Mstar[i, q] * f1
                    Pstar[j, q] = val
                    Pstar[q, j] = val
            llf -= 0.5 * (LOG2PI + math.log(fs) + vi[i] * vi[i] * f1)
            rank += 1
    return llf, rank
