r"""State and disturbance smoothers of the NumPy engine.

Durbin and Koopman (2012): the fixed-interval state smoother (eqs. 4.44), the disturbance
smoother (eqs. 4.69), and in the diffuse steps the exact initial smoother in its univariate
form (section 5.3 with section 6.4; Koopman and Durbin 2000) with the recursions for
:math:`r^{(0)}, r^{(1)}, N^{(0)}, N^{(1)}, N^{(2)}` as in statsmodels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from ..spec.model import StateSpaceModel
from .assemble import SystemArrays, model_arrays
from .filter import TOL, TOL_DIFFUSE, kalman_filter
from .kernels import observed_rows, univariate_obs, update_diffuse
from .results import FilterResult, SmootherResult

__all__ = ["kalman_smoother"]


@njit(cache=True)
def _smoother_loop(  # pragma: no cover - compiled
    y, Z, H, T, R, Q, a_pred, P_pred, v, Finv, K, t_stop,
    a_s, V, eps_hat, eps_var, eta_hat, eta_var, r_out, N_out,
):
    r"""Conventional smoother from t = n-1 down to t_stop (the first non-diffuse step).

    With :math:`u_t = F_t^{-1} v_t - K_t' r_t` and :math:`L_t = T_t - K_t Z_t`:
    :math:`r_{t-1} = Z_t' u_t + T_t' r_t`, :math:`N_{t-1} = Z_t'F_t^{-1}Z_t + L_t'N_tL_t`,
    :math:`\hat\alpha_t = a_t + P_t r_{t-1}`, :math:`V_t = P_t - P_t N_{t-1} P_t` (eq. 4.44),
    :math:`\hat\varepsilon_t = H_t u_t`,
    :math:`Var(\varepsilon_t|y) = H_t - H_t(F_t^{-1} + K_t'N_tK_t)H_t`,
    :math:`\hat\eta_t = Q_t R_t' r_t`, :math:`Var(\eta_t|y) = Q_t - Q_t R_t' N_t R_t Q_t`
    (eq. 4.69).  Returns the final r and N (:math:`r_{t_{stop}-1}`, :math:`N_{t_{stop}-1}`).
    """
    n, p = y.shape
    m = a_pred.shape[1]
    rd = R.shape[2]
    r = np.zeros(m)
    N = np.zeros((m, m))
    idx = np.empty(p, dtype=np.int64)
    u = np.zeros(p)
    Lm = np.empty((m, m))
    NL = np.empty((m, m))
    Nn = np.empty((m, m))
    QR = np.empty((rd, m))
    QRN = np.empty((rd, m))
    NK = np.empty((m, p))
    D = np.empty((p, p))
    HD = np.empty((p, p))
    rn = np.empty(m)
    for t in range(n - 1, t_stop - 1, -1):
        tz = t if Z.shape[0] > 1 else 0
        th = t if H.shape[0] > 1 else 0
        tt = t if T.shape[0] > 1 else 0
        tr = t if R.shape[0] > 1 else 0
        tq = t if Q.shape[0] > 1 else 0
        Zt, Ht, Tt, Rt, Qt = Z[tz], H[th], T[tt], R[tr], Q[tq]
        k = observed_rows(y[t], idx)
        # state disturbances (uses r_t, N_t)
        for i in range(rd):
            for j in range(m):
                s = 0.0
                for q in range(rd):
                    s += Qt[i, q] * Rt[j, q]
                QR[i, j] = s
        for i in range(rd):
            s = 0.0
            for j in range(m):
                s += QR[i, j] * r[j]
            eta_hat[t, i] = s
            for j in range(m):
                s = 0.0
                for q in range(m):
                    s += QR[i, q] * N[q, j]
                QRN[i, j] = s
        for i in range(rd):
            for j in range(i, rd):
                s = Qt[i, j]
                for q in range(m):
                    s -= QRN[i, q] * QR[j, q]
                eta_var[t, i, j] = s
                eta_var[t, j, i] = s
        # u_t and D_t on the observed rows
        for q in range(k):
            s = 0.0
            for q2 in range(k):
                s += Finv[t, idx[q], idx[q2]] * v[t, idx[q2]]
            for j in range(m):
                s -= K[t, j, idx[q]] * r[j]
            u[q] = s
        for j in range(m):
            for q in range(k):
                s = 0.0
                for q2 in range(m):
                    s += N[j, q2] * K[t, q2, idx[q]]
                NK[j, q] = s
        for q1 in range(k):
            for q2 in range(k):
                s = Finv[t, idx[q1], idx[q2]]
                for j in range(m):
                    s += K[t, j, idx[q1]] * NK[j, q2]
                D[q1, q2] = s
        for i in range(p):
            s = 0.0
            for q in range(k):
                s += Ht[i, idx[q]] * u[q]
            eps_hat[t, i] = s
            for q2 in range(k):
                s = 0.0
                for q in range(k):
                    s += Ht[i, idx[q]] * D[q, q2]
                HD[i, q2] = s
        for i in range(p):
            for j in range(i, p):
                s = Ht[i, j]
                for q in range(k):
                    s -= HD[i, q] * Ht[j, idx[q]]
                eps_var[t, i, j] = s
                eps_var[t, j, i] = s
        # r_{t-1} = Z'u + T'r ; L = T - K Z
        for j in range(m):
            s = 0.0
            for q in range(k):
                s += Zt[idx[q], j] * u[q]
            for i in range(m):
                s += Tt[i, j] * r[i]
            rn[j] = s
        for i in range(m):
            for j in range(m):
                s = Tt[i, j]
                for q in range(k):
                    s -= K[t, i, idx[q]] * Zt[idx[q], j]
                Lm[i, j] = s
        # N_{t-1} = Z' Finv Z + L' N L
        for i in range(m):
            for j in range(m):
                s = 0.0
                for q in range(m):
                    s += N[i, q] * Lm[q, j]
                NL[i, j] = s
        for i in range(m):
            for j in range(i, m):
                s = 0.0
                for q in range(m):
                    s += Lm[q, i] * NL[q, j]
                for q1 in range(k):
                    z1 = Zt[idx[q1], i]
                    if z1 != 0.0:
                        for q2 in range(k):
                            s += z1 * Finv[t, idx[q1], idx[q2]] * Zt[idx[q2], j]
                Nn[i, j] = s
                Nn[j, i] = s
        r[:] = rn
        N[:, :] = Nn
        r_out[t] = r
        N_out[t] = N
        Pt = P_pred[t]
        for i in range(m):
            s = a_pred[t, i]
            for j in range(m):
                s += Pt[i, j] * r[j]
            a_s[t, i] = s
        # V = P - P N P
        for i in range(m):
            for j in range(m):
                s = 0.0
                for q in range(m):
                    s += Pt[i, q] * N[q, j]
                NL[i, j] = s
        for i in range(m):
            for j in range(i, m):
                s = Pt[i, j]
                for q in range(m):
                    s -= NL[i, q] * Pt[q, j]
                V[t, i, j] = s
                V[t, j, i] = s
    return r, N


@njit(cache=True)
def _t(A):  # pragma: no cover - compiled
    """A' as a contiguous array (numba's matrix products want contiguous operands)."""
    return np.ascontiguousarray(A.T)


@njit(cache=True)
def _diffuse_smoother_loop(  # pragma: no cover - compiled
    y, Z, d, H, T, R, Q, a_pred, P_pred, Pinf_pred, n_diffuse, tol_diffuse, r0, N0,
    a_s, V, eps_hat, eps_var, eta_hat, eta_var, r_out, N_out,
):
    r"""Exact initial smoother for t = d..1 in univariate form (D&K 2012, section 5.3).

    Continues :func:`_smoother_loop` below the diffuse period, from its final ``r0, N0``.
    Per observation, backwards, with :math:`L_0 = I - K_0 z'`, :math:`L_1 = -K_1 z'`:
    if :math:`F_\infty > 0`:
    :math:`r^{(1)} \leftarrow z v / F_\infty + L_0' r^{(1)} + L_1' r^{(0)}`,
    :math:`r^{(0)} \leftarrow L_0' r^{(0)}`,
    :math:`N^{(2)} \leftarrow L_0'N^{(2)}L_0 + L_0'N^{(1)}L_1 + L_1'N^{(1)\prime}L_0
    + L_1'N^{(0)}L_1 + zz'F^{(2)}`,
    :math:`N^{(1)} \leftarrow L_0'N^{(1)}L_0 + L_1'N^{(0)}L_0 + zz'/F_\infty`,
    :math:`N^{(0)} \leftarrow L_0'N^{(0)}L_0`, with :math:`F^{(2)} = -F_*/F_\infty^2`;
    else the ordinary univariate step for :math:`r^{(0)}, N^{(0)}` and
    :math:`N^{(1)} \leftarrow N^{(1)} L_0`.  Then
    :math:`\hat\alpha_t = a_t + P_{*,t} r^{(0)}_{t-1} + P_{\infty,t} r^{(1)}_{t-1}` and
    :math:`V_t = P_* - P_*N^{(0)}P_* - (P_\infty N^{(1)} P_*)' - P_\infty N^{(1)}P_*
    - P_\infty N^{(2)} P_\infty` (D&K eqs. 5.24-5.30); the observation disturbances follow
    from the smoothed state (:func:`_eps_from_states`).
    """
    m = a_pred.shape[1]
    p = y.shape[1]
    r0 = r0.copy()
    N0 = N0.copy()
    r1 = np.zeros(m)
    N1 = np.zeros((m, m))
    N2 = np.zeros((m, m))
    eye = np.eye(m)
    idx = np.empty(p, dtype=np.int64)
    for t in range(n_diffuse - 1, -1, -1):
        Zt = Z[t if Z.shape[0] > 1 else 0]
        dt = d[t if d.shape[0] > 1 else 0]
        Ht = H[t if H.shape[0] > 1 else 0]
        Tt = np.ascontiguousarray(T[t if T.shape[0] > 1 else 0])
        Rt = R[t if R.shape[0] > 1 else 0]
        Qt = np.ascontiguousarray(Q[t if Q.shape[0] > 1 else 0])
        QR = Qt @ _t(Rt)
        eta_hat[t] = QR @ r0
        eta_var[t] = Qt - QR @ N0 @ _t(QR)
        TT = _t(Tt)
        r0 = TT @ r0
        r1 = TT @ r1
        N0 = TT @ N0 @ Tt
        N1 = TT @ N1 @ Tt
        N2 = TT @ N2 @ Tt
        k = observed_rows(y[t], idx)
        ys, Zs, h, _ = univariate_obs(y[t], Zt, dt, Ht, idx, k)
        a = a_pred[t].copy()
        Ps = P_pred[t].copy()
        Pi = Pinf_pred[t].copy()
        vi, fs, fi = np.empty(k), np.empty(k), np.empty(k)
        Ms, Mi = np.empty((k, m)), np.empty((k, m))
        update_diffuse(a, Ps, Pi, ys, Zs, h, tol_diffuse, vi, fs, fi, Ms, Mi)
        for i in range(k - 1, -1, -1):
            z = Zs[i].copy()
            zz = np.outer(z, z)
            if fi[i] > tol_diffuse:
                K0 = Mi[i] / fi[i]
                K1 = Ms[i] / fi[i] - Mi[i] * fs[i] / fi[i] ** 2
                L0 = eye - np.outer(K0, z)
                L1 = -np.outer(K1, z)
                L0T, L1T = _t(L0), _t(L1)
                r1 = z * (vi[i] / fi[i]) + L0T @ r1 + L1T @ r0
                r0 = L0T @ r0
                N2 = (L0T @ N2 @ L0 + L0T @ N1 @ L1 + L1T @ _t(N1) @ L0 + L1T @ N0 @ L1
                      - zz * fs[i] / fi[i] ** 2)
                N1 = L0T @ N1 @ L0 + L1T @ N0 @ L0 + zz / fi[i]
                N0 = L0T @ N0 @ L0
            elif fs[i] > tol_diffuse:
                L0 = eye - np.outer(Ms[i] / fs[i], z)
                L0T = _t(L0)
                r0 = z * (vi[i] / fs[i]) + L0T @ r0
                N0 = L0T @ N0 @ L0 + zz / fs[i]
                N1 = N1 @ L0
        Ps = np.ascontiguousarray(P_pred[t])
        Pi = np.ascontiguousarray(Pinf_pred[t])
        r_out[t] = r0
        N_out[t] = N0
        a_s[t] = a_pred[t] + Ps @ r0 + Pi @ r1
        PiN1Ps = Pi @ N1 @ Ps
        Vt = Ps - Ps @ N0 @ Ps - _t(PiN1Ps) - PiN1Ps - Pi @ N2 @ Pi
        V[t] = (Vt + _t(Vt)) / 2
        _eps_from_states(y[t], Zt, dt, Ht, a_s[t], V[t], eps_hat[t], eps_var[t])


@njit(cache=True)
def _eps_from_states(y_t, Z, d, H, a_s, V, eh, ev):  # pragma: no cover - compiled
    r"""Smoothed observation disturbances from the smoothed state (used in diffuse steps).

    Observed rows: :math:`\hat\varepsilon_o = y_o - Z_o\hat\alpha_t - d_o`,
    :math:`Var = Z_o V_t Z_o'`; missing rows by conditioning on :math:`\varepsilon_o`:
    :math:`E(\varepsilon_m|y) = B\hat\varepsilon_o`, :math:`B = H_{mo}H_{oo}^{+}`.
    """
    p = y_t.shape[0]
    o = np.flatnonzero(~np.isnan(y_t))
    mis = np.flatnonzero(np.isnan(y_t))
    eh[:] = 0.0
    ev[:, :] = 0.0
    Zo = np.ascontiguousarray(Z[o])
    eo = y_t[o] - Zo @ a_s - d[o]
    Vo = Zo @ np.ascontiguousarray(V) @ _t(Zo)
    for q1 in range(o.size):
        eh[o[q1]] = eo[q1]
        for q2 in range(o.size):
            ev[o[q1], o[q2]] = Vo[q1, q2]
    if mis.size == 0:
        return
    Hmo = np.ascontiguousarray(H[mis][:, o])
    if o.size:
        B = Hmo @ np.linalg.pinv(np.ascontiguousarray(H[o][:, o]))
    else:
        B = np.zeros((mis.size, 0))
    em = B @ eo
    BV = B @ Vo
    Vm = np.ascontiguousarray(H[mis][:, mis]) - B @ _t(Hmo) + BV @ _t(B)
    for q1 in range(mis.size):
        eh[mis[q1]] = em[q1]
        for q2 in range(mis.size):
            ev[mis[q1], mis[q2]] = Vm[q1, q2]
        for q2 in range(o.size):
            ev[mis[q1], o[q2]] = BV[q1, q2]
            ev[o[q2], mis[q1]] = BV[q1, q2]


def kalman_smoother(
    model: StateSpaceModel, y: Any = None, *, filter_result: FilterResult | None = None,
    tol: float = TOL,
) -> SmootherResult:
    r"""Fixed-interval state and disturbance smoother (Durbin and Koopman 2012, chapter 4).

    .. math::

        r_{t-1} &= Z_t'F_t^{-1}v_t + L_t'r_t, \quad N_{t-1} = Z_t'F_t^{-1}Z_t + L_t'N_tL_t,
        \quad L_t = T_t - K_tZ_t \\
        \hat\alpha_t &= a_t + P_t r_{t-1}, \quad V_t = P_t - P_t N_{t-1} P_t

    (eqs. 4.44) with :math:`r_n = 0, N_n = 0`; smoothed disturbances by eqs. 4.69; the exact
    diffuse initial smoother in the diffuse steps (section 5.3, univariate form).

    Parameters
    ----------
    model : StateSpaceModel
        A model whose entries are all numbers.
    y : (n,) or (n, p) array_like, optional
        Observations (NaN = missing); not needed when ``filter_result`` is given.
    filter_result : FilterResult, optional
        Output of :func:`kalman_filter` for the same model and data, to avoid filtering again.
    tol : float
        Singularity tolerance passed to the filter.

    Returns
    -------
    SmootherResult

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> sm = dlm.kalman_smoother(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), y)
    >>> round(float(sm.a_smooth[0, 0]), 1), round(float(sm.V[0, 0, 0]), 1)
    (1111.7, 4032.2)
    """
    if filter_result is None:
        if y is None:
            raise ValueError("pass y or filter_result")
        filter_result = kalman_filter(model, y, tol=tol)
    return smooth_arrays(model_arrays(model), filter_result)


def smooth_arrays(sys: SystemArrays, f: FilterResult) -> SmootherResult:
    """:func:`kalman_smoother` on system arrays and their filter output (no checks)."""
    n, p = f.y.shape
    m, r = sys.a1.shape[0], sys.R.shape[2]
    out = dict(
        a_smooth=np.empty((n, m)), V=np.empty((n, m, m)), eps_hat=np.empty((n, p)),
        eps_var=np.empty((n, p, p)), eta_hat=np.empty((n, r)), eta_var=np.empty((n, r, r)),
        r=np.empty((n, m)), N=np.empty((n, m, m)),
    )
    r0, N0 = _smoother_loop(
        f.y, sys.Z, sys.H, sys.T, sys.R, sys.Q, f.a_pred, f.P_pred, f.v, f.Finv, f.K,
        f.n_diffuse, out["a_smooth"], out["V"], out["eps_hat"], out["eps_var"],
        out["eta_hat"], out["eta_var"], out["r"], out["N"],
    )
    if f.n_diffuse:
        _diffuse_smoother_loop(
            f.y, sys.Z, sys.d, sys.H, sys.T, sys.R, sys.Q, f.a_pred, f.P_pred, f.Pinf_pred,
            f.n_diffuse, TOL_DIFFUSE, r0, N0, out["a_smooth"], out["V"], out["eps_hat"],
            out["eps_var"], out["eta_hat"], out["eta_var"], out["r"], out["N"])
    return SmootherResult(filter=f, Zd=(sys.Z, sys.d), **out)
