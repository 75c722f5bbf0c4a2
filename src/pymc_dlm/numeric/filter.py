r"""The Kalman filter of the NumPy engine (numba time loop over the kernels).

Durbin and Koopman (2012): eqs. 4.21-4.26 (prediction and updating), section 4.10 (missing
observations: only the observed rows enter the update), sections 5.2 and 6.4 (exact diffuse
initialisation, univariate treatment in the diffuse steps), and Rao (1973, pp. 527-528) for a
singular :math:`F_t` (generalised inverse and pseudo-determinant).

Log-likelihood conventions (D&K eq. 7.4).  ``convention="statsmodels"`` (the default): in a
diffuse step an observation with :math:`F_{\infty,i} > 0` (a *diffuse observation element*)
contributes :math:`-\tfrac12(\log 2\pi + \log F_{\infty,i})`, one with
:math:`F_{\infty,i} = 0` the usual term with :math:`F_{*,i}`; a diffuse step ends when
:math:`\sum P_{\infty}^2 \le 10^{-10}` (statsmodels' tolerance).  ``convention="kfas"``:
the diffuse observation elements contribute :math:`-\tfrac12 \log F_{\infty,i}` only, without
the :math:`\log 2\pi` constant (KFAS's ``logLik``, R's ``arima`` and ``StructTS`` family;
Commandeur and Koopman 2007): the total is larger by :math:`\tfrac12 \log(2\pi)` times their
number, :attr:`FilterResult.n_diffuse_obs`.  ``burn=k`` (in :func:`loglike`): the
log-likelihood of :math:`y_{k+1}, \dots, y_n` given :math:`y_1, \dots, y_k`, i.e. the sum of
the steps t > k (Kim and Nelson 1999, section 3.3, drop the first ten).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from ..spec.model import StateSpaceModel
from ..spec.validate import check_y
from .adjoint import STEADY_TOL, loglike_forward, tail
from .assemble import SystemArrays, at_time, model_arrays
from .calendar import index_of, regularize
from .kernels import (
    LOG2PI,
    forecast_moments,
    observed_rows,
    predict,
    predict_cov,
    rqr,
    univariate_obs,
    update,
    update_diffuse,
)
from .results import FilterResult

__all__ = ["CONVENTIONS", "TOL", "TOL_DIFFUSE", "diffuse_obs_counts", "kalman_filter", "loglike",
           "overflow_message", "prepare_y"]

#: Relative tolerance for a singular F (Cholesky pivot / eigenvalue vs the largest): 100 eps.
TOL = 100.0 * np.finfo(np.float64).eps
#: Absolute tolerance on F_inf and on sum(P_inf**2) in diffuse steps (statsmodels' value).
TOL_DIFFUSE = 1e-10
#: Log-likelihood conventions for the diffuse observation elements (module notes).
CONVENTIONS = ("statsmodels", "kfas")


@njit(cache=True)
def _filter_loop(  # pragma: no cover - compiled
    y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, store,
    a_pred, P_pred, a_filt, P_filt, v, F, K, Finv, llf_t, rank_t, Pinf_pred,
    stop_proper, a_end, P_end,
):
    n, p = y.shape
    m = a1.shape[0]
    r = R.shape[2]
    a = a1.copy()
    P = P1.copy()
    Pinf = P1inf.copy()
    af = np.empty(m)
    Pf = np.empty((m, m))
    Pif = np.empty((m, m))
    work = np.empty((m, m))
    RQR = np.empty((m, m))
    wr = np.empty((m, r))
    M = np.empty((m, p))
    L = np.empty((p, p))
    W = np.empty((p, m))
    u = np.empty(p)
    KF = np.empty((m, p))
    idx = np.empty(p, dtype=np.int64)
    vbuf = np.empty(p)
    Fbuf = np.empty((p, p))
    nofinv = np.empty((0, 0))
    vi = np.empty(p)
    fs = np.empty(p)
    fi = np.empty(p)
    Ms = np.empty((p, m))
    Mi = np.empty((p, m))
    const_rqr = R.shape[0] == 1 and Q.shape[0] == 1
    if const_rqr:
        rqr(R[0], Q[0], RQR, wr)
    ssq = 0.0
    for i in range(m):
        for j in range(m):
            ssq += Pinf[i, j] * Pinf[i, j]
    diffuse = ssq > tol_diffuse
    n_diffuse = 0
    if stop_proper and not diffuse:
        a_end[:] = a
        P_end[:, :] = P
        return 0, -1
    # constant matrices are sliced once, before the loop (measured: no speed change; kept for clarity)
    Z0, d0, H0, T0, c0 = Z[0], d[0], H[0], T[0], c[0]
    for t in range(n):
        Zt = Z[t] if Z.shape[0] > 1 else Z0
        dt = d[t] if d.shape[0] > 1 else d0
        Ht = H[t] if H.shape[0] > 1 else H0
        Tt = T[t] if T.shape[0] > 1 else T0
        ct = c[t] if c.shape[0] > 1 else c0
        yt = y[t]
        k = observed_rows(yt, idx)
        vt = v[t] if store else vbuf
        Ft = F[t] if store else Fbuf
        forecast_moments(a, P, Zt, dt, Ht, vt, Ft, M, yt)
        if store:
            a_pred[t] = a
            P_pred[t] = P
        if diffuse:
            if store:
                Pinf_pred[t] = Pinf
                K[t] = np.nan
                Finv[t] = 0.0
            ys, Zs, h, ok = univariate_obs(yt, Zt, dt, Ht, idx, k)
            if not ok:
                return -1, t
            af[:] = a
            Pf[:, :] = P
            Pif[:, :] = Pinf
            ll, rk = update_diffuse(af, Pf, Pif, ys, Zs, h, tol_diffuse, vi, fs, fi, Ms, Mi)
        else:
            Fi = Finv[t] if store else nofinv
            status, rk, logdet, ss = update(a, P, vt, Ft, M, idx, k, tol, af, Pf, Fi, L, W, u)
            ll = -0.5 * (rk * LOG2PI + logdet + ss)
            if store:
                # D&K's gain K_t = T_t P_t Z_t' F_t^{-1} = T_t M F^{-1} (zero for missing rows).
                for i in range(m):
                    for j in range(p):
                        s = 0.0
                        for q in range(p):
                            s += M[i, q] * Fi[q, j]
                        KF[i, j] = s
                for i in range(m):
                    for j in range(p):
                        s = 0.0
                        for q in range(m):
                            s += Tt[i, q] * KF[q, j]
                        K[t, i, j] = s
        llf_t[t] = ll
        rank_t[t] = rk
        if store:
            a_filt[t] = af
            P_filt[t] = Pf
        if not const_rqr:
            rqr(R[t if R.shape[0] > 1 else 0], Q[t if Q.shape[0] > 1 else 0], RQR, wr)
        predict(af, Pf, Tt, ct, RQR, a, P, work)
        if diffuse:
            predict_cov(Pif, Tt, Pinf, work)
            ssq = 0.0
            for i in range(m):
                for j in range(m):
                    ssq += Pinf[i, j] * Pinf[i, j]
            if ssq <= tol_diffuse:
                diffuse = False
                n_diffuse = t + 1
                if stop_proper:  # the caller continues with the proper filter
                    a_end[:] = a
                    P_end[:, :] = P
                    return n_diffuse, -1
    if diffuse:
        n_diffuse = n
    if store:
        a_pred[n] = a
        P_pred[n] = P
    return n_diffuse, -1


def prepare_y(model: StateSpaceModel, y: Any, *, copy: bool = True, check_inf: bool = True,
              n_time: bool = True) -> tuple[np.ndarray, Any]:
    """Validate y against the model: return the (n, p) float array and the pandas index (or None).

    A pandas y is put on the regular grid of its index first
    (:func:`~pymc_dlm.numeric.calendar.regularize`: absent periods become NaN rows, with a
    :class:`~pymc_dlm.numeric.calendar.GapWarning`; duplicate, unsorted or frequency-less
    dates raise).  ``copy`` and ``check_inf`` as in :func:`~pymc_dlm.spec.validate.check_y`;
    ``n_time=False`` skips the check that a time-varying model covers the n observations.
    """
    y = regularize(y)
    index = index_of(y)
    arr = np.ascontiguousarray(check_y(y, model.p, copy=copy, check_inf=check_inf))
    if n_time and model.n_time is not None and model.n_time != arr.shape[0]:
        raise ValueError(
            f"the model is time-varying over n = {model.n_time} steps but y has {arr.shape[0]}"
        )
    return arr, index


def overflow_message(t: int | None = None) -> str:
    """The one error every function gives when the covariances overflow."""
    where = "" if t is None else f" at t = {t}"
    return (f"the Kalman filter's covariances overflowed (not finite{where}): an explosive "
            "transition (an eigenvalue of T above 1 in modulus) over a long stretch without "
            "observations; shorten the gap or the horizon, or check T")


def _run(sys: SystemArrays, y: np.ndarray, store: bool, tol: float, stop_proper: bool = False):
    n, p = y.shape
    m = sys.a1.shape[0]
    shp = (lambda *s: s) if store else (lambda *s: (1,) * len(s))
    out = dict(
        a_pred=np.empty(shp(n + 1, m)),
        P_pred=np.empty(shp(n + 1, m, m)),
        a_filt=np.empty(shp(n, m)),
        P_filt=np.empty(shp(n, m, m)),
        v=np.empty(shp(n, p)),
        F=np.empty(shp(n, p, p)),
        K=np.empty(shp(n, m, p)),
        Finv=np.empty(shp(n, p, p)),
        llf_t=np.zeros(n),
        rank_t=np.zeros(n, dtype=np.int64),
        Pinf_pred=np.empty(shp(n, m, m) if sys.P1inf.any() else (1, m, m)),
        a_end=np.empty(m),
        P_end=np.empty((m, m)),
    )
    try:
        n_diffuse, err_t = _filter_loop(
            y, sys.Z, sys.d, sys.H, sys.T, sys.c, sys.R, sys.Q, sys.a1, sys.P1, sys.P1inf,
            tol, TOL_DIFFUSE, store, out["a_pred"], out["P_pred"], out["a_filt"],
            out["P_filt"], out["v"], out["F"], out["K"], out["Finv"], out["llf_t"],
            out["rank_t"], out["Pinf_pred"], stop_proper, out["a_end"], out["P_end"],
        )
    except np.linalg.LinAlgError:  # a decomposition met inf/NaN: the recursion overflowed
        raise ValueError(overflow_message()) from None
    if store and not np.isfinite(out["P_pred"][-1]).all():
        # a gap that runs to the end: no observation met the overflowed covariance
        raise ValueError(overflow_message(n + 1))
    if n_diffuse < 0:
        raise ValueError(
            f"H[{err_t}] (observed block) is not diagonal and not positive definite; the exact "
            "diffuse filter needs to decorrelate it (D&K section 6.4.3)"
        )
    return out, n_diffuse


@njit(cache=True)
def _diffuse_scalar(y, Z, d, H, T, c, R, Q, a, P, Pinf, tol_diffuse,
                    llf_t):  # pragma: no cover - compiled
    r"""The diffuse steps of :func:`_filter_loop` for m = p = r = 1, on scalars.

    The operations of :func:`~pymc_dlm.numeric.kernels.update_diffuse` (D&K 2012 eqs.
    5.12-5.14 and 7.4), ``predict`` and ``predict_cov`` in the same order, without the
    scratch arrays (their allocation cost more than a local level's diffuse step).
    Returns ``(n_d, a, P)``: the first step after the diffuse period (n when it never
    ends) and :math:`a_{n_d+1}, P_{*,n_d+1}`.
    """
    n = y.shape[0]
    rqr = (R[0, 0, 0] * Q[0, 0, 0]) * R[0, 0, 0] if R.shape[0] == 1 and Q.shape[0] == 1 else 0.0
    if not Pinf * Pinf > tol_diffuse:
        return 0, a, P
    for t in range(n):
        yt = y[t, 0]
        ll = 0.0
        if not math.isnan(yt):
            z = Z[t if Z.shape[0] > 1 else 0, 0, 0]
            v = (yt - d[t if d.shape[0] > 1 else 0, 0]) - z * a
            ms = P * z if z != 0.0 else 0.0
            mi = Pinf * z if z != 0.0 else 0.0
            fs = H[t if H.shape[0] > 1 else 0, 0, 0] + z * ms
            fi = 0.0 + z * mi
            if fi > tol_diffuse:
                f1 = 1.0 / fi
                f2 = -fs * f1 * f1
                a += mi * f1 * v
                P = (P - (ms * mi + mi * ms) * f1) - mi * mi * f2
                Pinf = Pinf - mi * mi * f1
                ll -= 0.5 * (LOG2PI + math.log(fi))
            elif fs > tol_diffuse:
                f1 = 1.0 / fs
                a += ms * f1 * v
                P = P - ms * ms * f1
                ll -= 0.5 * (LOG2PI + math.log(fs) + v * v * f1)
        llf_t[t] = ll
        tt = T[t if T.shape[0] > 1 else 0, 0, 0]
        if R.shape[0] > 1 or Q.shape[0] > 1:
            rr = R[t if R.shape[0] > 1 else 0, 0, 0]
            rqr = (rr * Q[t if Q.shape[0] > 1 else 0, 0, 0]) * rr
        ct = c[t if c.shape[0] > 1 else 0, 0]
        if tt != 0.0:
            a = ct + tt * a
            P = rqr + (tt * P) * tt
            Pinf = (tt * Pinf) * tt
        else:
            a, P, Pinf = ct, rqr, 0.0
        if not Pinf * Pinf > tol_diffuse:
            return t + 1, a, P
    return n, a, P


@njit(cache=True)
def loglike_steps(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, steady_tol,
                  llf_t):  # pragma: no cover - compiled
    r"""Per-step log-likelihood into ``llf_t`` (n,), in one compiled call.

    The diffuse steps run in :func:`_filter_loop` (exact diffuse, D&K 2012 section 5.2), the
    rest in the allocation-free loop of :func:`~pymc_dlm.numeric.adjoint.loglike_forward`
    (the same kernels, eqs. 4.21-4.26, 2-3x faster per step, with the steady state at
    ``steady_tol``).

    Returns
    -------
    int
        -1: done.  -2: some :math:`F_t` is not positive definite; the caller reruns
        :func:`_filter_loop` to the end, which uses a generalised inverse there.  t >= 0:
        the observed block of :math:`H_t` could not be decorrelated in a diffuse step.
    """
    n, p = y.shape
    m = a1.shape[0]
    llf_t[:] = 0.0
    if m == 1 and p == 1 and R.shape[2] == 1:
        n_d, a, P = _diffuse_scalar(y, Z, d, H, T, c, R, Q, a1[0], P1[0, 0], P1inf[0, 0],
                                    tol_diffuse, llf_t)
        a_end, P_end = np.full(1, a), np.full((1, 1), P)
    elif np.any(P1inf != 0.0):
        e1, e2 = np.empty((1, m)), np.empty((1, m, m))
        e3, e4, e5 = np.empty((1, p)), np.empty((1, p, p)), np.empty((1, m, p))
        a_end, P_end = np.empty(m), np.empty((m, m))
        n_d, err = _filter_loop(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, False,
                                e1, e2, e1, e2, e3, e4, e5, e4, llf_t,
                                np.empty(n, dtype=np.int64), e2, True, a_end, P_end)
        if n_d < 0:
            return err
    else:  # no diffuse state: the diffuse loop would stop at once
        n_d, a_end, P_end = 0, a1, P1
    if n_d < n:
        bad = loglike_forward(
            np.ascontiguousarray(y[n_d:]), tail(Z, n_d), tail(d, n_d), tail(H, n_d),
            tail(T, n_d), tail(c, n_d), tail(R, n_d), tail(Q, n_d), a_end, P_end, tol,
            steady_tol, np.empty((0, m)), np.empty((0, m, m)), llf_t[n_d:])
        if bad >= 0:
            return -2
    return -1


@njit(cache=True)
def loglike_total(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse,
                  steady_tol):  # pragma: no cover - compiled
    """:func:`loglike_steps` and their sum in one compiled call, after a check for inf in y.

    Returns ``(status, total)``: status -3 when y holds an inf, else that of
    :func:`loglike_steps` (total valid only at -1).
    """
    for t in range(y.shape[0]):
        for i in range(y.shape[1]):
            if math.isinf(y[t, i]):
                return -3, 0.0
    llf_t = np.empty(y.shape[0])
    status = loglike_steps(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, steady_tol,
                           llf_t)
    return status, llf_t.sum()


def _loglike_t(sys: SystemArrays, y: np.ndarray, tol: float) -> np.ndarray:
    """Per-step log-likelihood (:func:`loglike_steps`, with its fall-backs)."""
    llf_t = np.empty(y.shape[0])
    try:
        status = loglike_steps(y, *sys, tol, TOL_DIFFUSE, STEADY_TOL, llf_t)
    except np.linalg.LinAlgError:
        raise ValueError(overflow_message()) from None
    if status == -2:  # singular F_t: the generalised-inverse path
        return _run(sys, y, False, tol)[0]["llf_t"]
    if status >= 0:
        _run(sys, y, False, tol)  # raises the decorrelation error
    return llf_t


def diffuse_obs_counts(sys: SystemArrays, observed: np.ndarray,
                       tol_diffuse: float = TOL_DIFFUSE) -> np.ndarray:
    r"""Number of diffuse observation elements in each step of the exact diffuse period.

    The :math:`P_\infty` recursion of the univariate diffuse filter (D&K 2012, eqs. 5.8 and
    6.4): for each observed row with :math:`F_{\infty,i} = Z_i P_\infty Z_i' > tol`, one
    element is counted and :math:`P_\infty \leftarrow P_\infty - M_\infty M_\infty'/F_\infty`;
    then :math:`P_\infty \leftarrow T P_\infty T'`, until :math:`\sum P_\infty^2 \le tol`.  It
    involves Z, T, the diffuse states and the pattern of missing values only (not the
    variances), and the decorrelation of a non-diagonal H leaves each row's
    :math:`F_{\infty,i}` unchanged, so these are the rows the filter updates diffusely.

    Parameters
    ----------
    sys : SystemArrays
    observed : (n, p) bool ndarray

    Returns
    -------
    (d,) ndarray of int
        One count per diffuse step (d = the length of the diffuse period).

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric import system_arrays
    >>> sys = system_arrays(dlm.LocalLinearTrend(1.0, 1.0, 1.0))
    >>> diffuse_obs_counts(sys, np.ones((10, 1), bool)).tolist()
    [1, 1]
    """
    out = np.zeros(observed.shape[0], dtype=np.int64)
    d = _diffuse_counts(sys.Z, sys.T, np.ascontiguousarray(sys.P1inf, dtype=np.float64),
                        np.ascontiguousarray(observed, dtype=np.bool_), tol_diffuse, out)
    return out[:d]


@njit(cache=True)
def _diffuse_counts(Z, T, P1inf, observed, tol_diffuse, out):  # pragma: no cover - compiled
    """The loop of :func:`diffuse_obs_counts`; returns the length of the diffuse period."""
    n, p = observed.shape
    m = P1inf.shape[0]
    Pinf = P1inf.copy()
    Mi = np.empty(m)
    work = np.empty((m, m))
    for t in range(n):
        ssq = 0.0
        for i in range(m):
            for j in range(m):
                ssq += Pinf[i, j] * Pinf[i, j]
        if not ssq > tol_diffuse:
            return t
        Zt = Z[t if Z.shape[0] > 1 else 0]
        Tt = T[t if T.shape[0] > 1 else 0]
        k = 0
        for i in range(p):
            if not observed[t, i]:
                continue
            fi = 0.0
            for j in range(m):
                s = 0.0
                for q in range(m):
                    s += Pinf[j, q] * Zt[i, q]
                Mi[j] = s
                fi += Zt[i, j] * s
            if fi > tol_diffuse:
                k += 1
                for j in range(m):
                    for q in range(m):
                        Pinf[j, q] -= Mi[j] * Mi[q] / fi
        out[t] = k
        predict_cov(Pinf, Tt, Pinf, work)  # Pinf <- T Pinf T', as the filter's diffuse steps
    return n


def _check_options(convention: str, burn: Any, n: int) -> int:
    """Validate ``convention`` and ``burn`` (an int 0 <= burn < n); return burn as an int."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {list(CONVENTIONS)}; got {convention!r}")
    if isinstance(burn, bool) or not isinstance(burn, (int, np.integer)):
        raise TypeError(f"burn must be an integer number of time steps; got {burn!r}")
    if not 0 <= burn < n:
        raise ValueError(f"burn must satisfy 0 <= burn < n = {n}; got {burn}")
    return int(burn)


def _kfas_shift(sys: SystemArrays, y_arr: np.ndarray, llf_t: np.ndarray) -> int:
    """Add 0.5 log(2 pi) per diffuse observation element to ``llf_t`` (in place, KFAS
    convention); return their number."""
    counts = diffuse_obs_counts(sys, ~np.isnan(y_arr))
    llf_t[: counts.size] += 0.5 * LOG2PI * counts
    return int(counts.sum())


def kalman_filter(model: StateSpaceModel, y: Any, *, tol: float = TOL,
                  convention: str = "statsmodels") -> FilterResult:
    r"""Run the Kalman filter (NumPy/numba engine).

    .. math::

        v_t &= y_t - Z_t a_t - d_t, \qquad F_t = Z_t P_t Z_t' + H_t \\
        a_{t|t} &= a_t + P_t Z_t' F_t^{-1} v_t, \qquad P_{t|t} = P_t - P_t Z_t' F_t^{-1} Z_t P_t \\
        a_{t+1} &= T_t a_{t|t} + c_t, \qquad P_{t+1} = T_t P_{t|t} T_t' + R_t Q_t R_t' \\
        \log L &= -\tfrac12 \sum_t \left(p_t \log 2\pi + \log|F_t| + v_t' F_t^{-1} v_t\right)

    (Durbin and Koopman 2012, eqs. 4.21-4.26 and 7.2), with only the observed rows of
    :math:`y_t` in the update (section 4.10), exact diffuse steps for diffuse states
    (sections 5.2, 6.4; see the module notes for the likelihood convention) and a generalised
    inverse for a singular :math:`F_t` (Rao 1973).

    Parameters
    ----------
    model : StateSpaceModel
        A model whose entries are all numbers.
    y : (n,) or (n, p) array_like, pandas Series or DataFrame
        Observations; NaN marks a missing value (any subset of a row).
    tol : float, default 100 * machine epsilon
        Relative tolerance below which a pivot/eigenvalue of :math:`F_t` counts as zero.
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        The constant of the diffuse observation elements in ``llf_t`` and ``llf`` (module
        notes): "kfas" drops their :math:`\tfrac12\log 2\pi`, as KFAS and R's ``arima`` do.

    Returns
    -------
    FilterResult

    Raises
    ------
    TypeError
        If an entry of the model is symbolic, or y is not numeric.
    ValueError
        If y has the wrong shape, holds inf, or disagrees with a time-varying model's length.
        Also if the covariances overflow (an explosive T over a long run of missing
        values); the smoother, the log-likelihood and the forecasts raise the same error.

    Examples
    --------
    Durbin and Koopman's Nile local level at their maximum likelihood estimates:

    >>> import pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> res = dlm.kalman_filter(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), y)
    >>> round(res.llf, 2), res.n_diffuse
    (-633.46, 1)

    In KFAS's convention (R: ``arima(Nile, c(0, 1, 1))`` gives -632.55 at its optimum):

    >>> res = dlm.kalman_filter(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), y, convention="kfas")
    >>> round(res.llf, 2), res.n_diffuse_obs
    (-632.55, 1)
    """
    y_arr, index = prepare_y(model, y)
    _check_options(convention, 0, max(y_arr.shape[0], 1))
    return filter_arrays(model_arrays(model), y_arr, tol, index, model.state_names,
                         convention=convention)


def filter_arrays(sys: SystemArrays, y_arr: np.ndarray, tol: float = TOL, index: Any = None,
                  state_names: tuple = (), *, convention: str = "statsmodels") -> FilterResult:
    """:func:`kalman_filter` on system arrays and a validated (n, p) float array (no checks;
    for loops such as EM that change the arrays in place of the model)."""
    out, n_diffuse = _run(sys, y_arr, True, tol)
    if convention == "kfas":
        n_dobs = _kfas_shift(sys, y_arr, out["llf_t"])
    else:
        n_dobs = int(diffuse_obs_counts(sys, ~np.isnan(y_arr)).sum()) if n_diffuse else 0
    return FilterResult(
        a_pred=out["a_pred"],
        P_pred=out["P_pred"],
        a_filt=out["a_filt"],
        P_filt=out["P_filt"],
        v=out["v"],
        F=out["F"],
        K=out["K"],
        llf_t=out["llf_t"],
        llf=float(out["llf_t"].sum()),
        rank=out["rank_t"],
        nobs=int(np.count_nonzero(~np.isnan(y_arr))),
        n_diffuse=n_diffuse,
        Pinf_pred=out["Pinf_pred"][:n_diffuse].copy(),
        index=index,
        state_names=state_names,
        y=y_arr,
        Finv=out["Finv"],
        n_diffuse_obs=n_dobs,
        convention=convention,
    )


def loglike(model: StateSpaceModel, y: Any, *, tol: float = TOL,
            convention: str = "statsmodels", burn: int = 0) -> float:
    r"""Log-likelihood only (same recursion as :func:`kalman_filter`, nothing stored).

    Parameters
    ----------
    model : StateSpaceModel
        A model whose entries are all numbers.
    y : (n,) or (n, p) array_like
        Observations, NaN for missing.
    tol : float
        As in :func:`kalman_filter`.
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        As in :func:`kalman_filter` (module notes).
    burn : int, default 0
        Sum the steps t > burn only: :math:`\log p(y_{burn+1:n} \mid y_{1:burn})`, the
        log-likelihood with the first ``burn`` observations as a burn-in (Kim and Nelson
        1999 report theirs over t = 11..n).  ``0 <= burn < n``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Unknown ``convention``, ``burn`` outside 0..n-1 (and as :func:`kalman_filter`).
    TypeError
        ``burn`` not an integer.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> mod, y = dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), dlm.datasets.load_nile()
    >>> round(dlm.loglike(mod, y), 4), round(dlm.loglike(mod, y, convention="kfas"), 4)
    (-633.4646, -632.5456)
    >>> round(dlm.loglike(mod, y, burn=1), 4)  # the diffuse first step dropped
    -632.5456
    """
    y_arr, _ = prepare_y(model, y, copy=False, check_inf=False)
    sys = model_arrays(model)
    if convention == "statsmodels" and burn == 0:
        try:
            status, total = loglike_total(y_arr, *sys, tol, TOL_DIFFUSE, STEADY_TOL)
        except np.linalg.LinAlgError:
            raise ValueError(overflow_message()) from None
        if status == -1:
            return total
        if status == -3:
            check_y(y_arr, model.p)  # raises, naming the inf
        return float(_loglike_t(sys, y_arr, tol).sum())
    burn = _check_options(convention, burn, y_arr.shape[0])
    check_y(y_arr, model.p)  # raises on inf
    try:
        llf_t = _loglike_t(sys, y_arr, tol)
    except np.linalg.LinAlgError:
        raise ValueError(overflow_message()) from None
    if convention == "kfas":
        _kfas_shift(sys, y_arr, llf_t)
    return float(llf_t[burn:].sum())
