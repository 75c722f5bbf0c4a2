r"""Many series at once: the log-likelihoods and filters of B series in one compiled pass.

The series share a model structure (the same shapes of every system matrix) and may differ in
their parameters: each system array gets a leading batch axis.  The numba loop over the
series runs the filter of :mod:`pymc_dlm.numeric.filter` (D&K 2012, eqs. 4.21-4.26 with the
exact diffuse steps of section 5.2 and missing rows dropped as in section 4.10) for each; no
Python runs between series.  Series of different lengths are NaN-padded (missing values at the
end change no log-likelihood).  Work proceeds in chunks of ``chunk_size`` series, so the
memory held at once is bounded by the chunk, not by B.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from numba import njit

from ..spec.model import StateSpaceModel
from .assemble import SystemArrays, system_arrays
from .adjoint import STEADY_TOL
from .filter import TOL, TOL_DIFFUSE, _filter_loop, loglike_steps
from .smoother import _diffuse_smoother_loop, _smoother_loop

__all__ = ["CHUNK_SIZE", "BatchFilterResult", "BatchForecastResult", "BatchSmootherResult",
           "as_batch", "forecast_draws", "forecast_many", "kalman_filter_many",
           "kalman_smoother_many", "loglike_many", "mixture_moments", "mixture_quantiles",
           "stack_systems"]

#: Series per chunk: at most this many series' system arrays are stacked at once.
CHUNK_SIZE = 1024


@njit(cache=True)
def _loglike_loop(Y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, steady_tol,
                  out):  # pragma: no cover - compiled
    B, n, p = Y.shape
    m = a1.shape[1]
    llf_t = np.empty(n)
    e1, e2 = np.empty((1, m)), np.empty((1, m, m))
    e3, e4, e5 = np.empty((1, p)), np.empty((1, p, p)), np.empty((1, m, p))
    a_end, P_end = np.empty(m), np.empty((m, m))
    rank_t = np.empty(n, dtype=np.int64)
    for b in range(B):
        status = loglike_steps(Y[b], Z[b], d[b], H[b], T[b], c[b], R[b], Q[b], a1[b], P1[b],
                               P1inf[b], tol, tol_diffuse, steady_tol, llf_t)
        if status == -2:  # a singular F_t: the whole filter, with its generalised inverse
            llf_t[:] = 0.0
            _filter_loop(Y[b], Z[b], d[b], H[b], T[b], c[b], R[b], Q[b], a1[b], P1[b],
                         P1inf[b], tol, tol_diffuse, False, e1, e2, e1, e2, e3, e4, e5, e4,
                         llf_t, rank_t, e2, False, a_end, P_end)
        out[b] = llf_t.sum() if status < 0 else np.nan


@njit(cache=True)
def _filter_batch_loop(Y, Z, d, H, T, c, R, Q, a1, P1, P1inf, tol, tol_diffuse, a_pred, P_pred,
                       a_filt, P_filt, v, F, K, Finv, llf_t, rank_t, Pinf_pred, n_diffuse):  # pragma: no cover
    B = Y.shape[0]
    m = a1.shape[1]
    a_end = np.empty(m)
    P_end = np.empty((m, m))
    for b in range(B):
        llf_t[b, :] = 0.0
        n_d, err = _filter_loop(
            Y[b], Z[b], d[b], H[b], T[b], c[b], R[b], Q[b], a1[b], P1[b], P1inf[b], tol,
            tol_diffuse, True, a_pred[b], P_pred[b], a_filt[b], P_filt[b], v[b], F[b], K[b],
            Finv[b], llf_t[b], rank_t[b], Pinf_pred[b], False, a_end, P_end)
        n_diffuse[b] = n_d
        if n_d < 0:
            llf_t[b, :] = np.nan


class BatchFilterResult(NamedTuple):
    """Output of :func:`kalman_filter_many`: the arrays of :class:`~pymc_dlm.FilterResult`
    with a leading batch axis (B)."""

    a_pred: np.ndarray  # (B, n + 1, m)
    P_pred: np.ndarray  # (B, n + 1, m, m)
    a_filt: np.ndarray  # (B, n, m)
    P_filt: np.ndarray  # (B, n, m, m)
    v: np.ndarray  # (B, n, p)
    F: np.ndarray  # (B, n, p, p)
    llf_t: np.ndarray  # (B, n)
    llf: np.ndarray  # (B,)
    n_diffuse: np.ndarray  # (B,)


def _systems(models: Any, B: int, p: int) -> Any:
    """A function chunk(start, stop) -> stacked SystemArrays, after checking the models."""
    shared = isinstance(models, StateSpaceModel)
    if not shared and len(models) != B:
        raise ValueError(f"got {len(models)} models for {B} series; pass one model or one per series")
    first = models if shared else models[0]
    if first.p != p:
        raise ValueError(f"the model has p = {first.p} observed series; y has p = {p}")
    one = system_arrays(models) if shared else None

    def chunk(start: int, stop: int) -> SystemArrays:
        if shared:
            return SystemArrays(*(np.ascontiguousarray(np.broadcast_to(a, (stop - start,) + a.shape))
                                  for a in one))
        return stack_systems([system_arrays(m) for m in models[start:stop]])

    return chunk


def kalman_filter_many(models: StateSpaceModel | Sequence[StateSpaceModel], Y: Any, *,
                       chunk_size: int = CHUNK_SIZE, tol: float = TOL) -> BatchFilterResult:
    r"""The Kalman filter of B series in one compiled pass (per-series parameters allowed).

    Same recursion and conventions as :func:`pymc_dlm.kalman_filter` (D&K 2012 eqs.
    4.21-4.26, exact diffuse steps of section 5.2, missing rows dropped as in section 4.10),
    run by a numba loop over the series.  The outputs hold every series (memory B x n x m^2
    for P); the stacked system matrices are built ``chunk_size`` series at a time.

    Parameters
    ----------
    models : StateSpaceModel or sequence of B StateSpaceModel
    Y : (B, n) or (B, n, p) array_like
        NaN for missing; pad shorter series with NaN.
    chunk_size : int
    tol : float

    Returns
    -------
    BatchFilterResult

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.batch import kalman_filter_many
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> out = kalman_filter_many(dlm.LocalLevel(38.3, 122.9), np.stack([y, y[::-1]]))
    >>> out.a_filt.shape, round(float(out.llf[0]), 4)
    ((2, 100, 1), -633.4646)
    """
    Y = as_batch(Y)
    B, n, p = Y.shape
    chunk = _systems(models, B, p)
    first = models if isinstance(models, StateSpaceModel) else models[0]
    m = first.m
    return _filter_many(Y, chunk, first.m, chunk_size, tol, None)


def _filter_many(Y: np.ndarray, chunk: Any, m: int, chunk_size: int, tol: float,
                 smoother: Any) -> BatchFilterResult:
    """The batched filter, chunk by chunk; ``smoother(start, stop, sys, Y, moments)`` is
    called on each chunk with the filter's full output for that chunk (gain, F^-1, P_inf)."""
    B, n, p = Y.shape
    out = BatchFilterResult(
        a_pred=np.empty((B, n + 1, m)), P_pred=np.empty((B, n + 1, m, m)),
        a_filt=np.empty((B, n, m)), P_filt=np.empty((B, n, m, m)), v=np.empty((B, n, p)),
        F=np.empty((B, n, p, p)), llf_t=np.empty((B, n)), llf=np.empty(B),
        n_diffuse=np.empty(B, dtype=np.int64))
    for start in range(0, B, chunk_size):
        stop = min(start + chunk_size, B)
        k = stop - start
        sys = chunk(start, stop)
        K, Finv = np.empty((k, n, m, p)), np.empty((k, n, p, p))
        Pinf = np.empty((k, n, m, m))
        _filter_batch_loop(
            Y[start:stop], *sys, tol, TOL_DIFFUSE, out.a_pred[start:stop], out.P_pred[start:stop],
            out.a_filt[start:stop], out.P_filt[start:stop], out.v[start:stop], out.F[start:stop],
            K, Finv, out.llf_t[start:stop], np.empty((k, n), dtype=np.int64), Pinf,
            out.n_diffuse[start:stop])
        if smoother is not None:
            smoother(start, stop, sys, out, K, Finv, Pinf)
    out.llf[:] = out.llf_t.sum(axis=1)
    return out


@njit(cache=True)
def _smoother_batch_loop(Y, Z, d, H, T, R, Q, a_pred, P_pred, Pinf, v, Finv, K, n_diffuse,
                         tol_diffuse, a_s, V, eps_hat, eps_var, eta_hat, eta_var, r_out,
                         N_out):  # pragma: no cover - compiled
    for b in range(Y.shape[0]):
        nd = n_diffuse[b]
        if nd < 0:  # the filter failed (see kalman_filter): no smoothed moments
            for out in (a_s[b], eps_hat[b], eta_hat[b], r_out[b]):
                out[:] = np.nan
            for out in (V[b], eps_var[b], eta_var[b], N_out[b]):
                out[:] = np.nan
            continue
        r, N = _smoother_loop(Y[b], Z[b], H[b], T[b], R[b], Q[b], a_pred[b], P_pred[b], v[b],
                              Finv[b], K[b], nd, a_s[b], V[b], eps_hat[b], eps_var[b],
                              eta_hat[b], eta_var[b], r_out[b], N_out[b])
        if nd > 0:
            _diffuse_smoother_loop(Y[b], Z[b], d[b], H[b], T[b], R[b], Q[b], a_pred[b],
                                   P_pred[b], Pinf[b], nd, tol_diffuse, r, N, a_s[b], V[b],
                                   eps_hat[b], eps_var[b], eta_hat[b], eta_var[b], r_out[b],
                                   N_out[b])


class BatchSmootherResult(NamedTuple):
    """Output of :func:`kalman_smoother_many`: the smoothed states and disturbances of
    :class:`~pymc_dlm.SmootherResult` with a leading batch axis, and the batched filter."""

    a_smooth: np.ndarray  # (B, n, m)
    V: np.ndarray  # (B, n, m, m)
    eps_hat: np.ndarray  # (B, n, p)
    eps_var: np.ndarray  # (B, n, p, p)
    eta_hat: np.ndarray  # (B, n, r)
    eta_var: np.ndarray  # (B, n, r, r)
    filter: BatchFilterResult


def kalman_smoother_many(models: StateSpaceModel | Sequence[StateSpaceModel], Y: Any, *,
                         chunk_size: int = CHUNK_SIZE, tol: float = TOL) -> BatchSmootherResult:
    r"""State and disturbance smoother of B series (the batched :func:`pymc_dlm.kalman_smoother`).

    One compiled loop over the series runs, per series, the filter, the conventional smoother
    (D&K 2012 eqs. 4.44 and 4.69) and, over the series' own diffuse period, the exact initial
    smoother (section 5.3), as :func:`pymc_dlm.kalman_smoother` does for one series.

    Parameters
    ----------
    models : StateSpaceModel or sequence of B StateSpaceModel
    Y : (B, n) or (B, n, p) array_like
    chunk_size : int
    tol : float

    Returns
    -------
    BatchSmootherResult

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.batch import kalman_smoother_many
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> sm = kalman_smoother_many(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), np.stack([y, y]))
    >>> round(float(sm.a_smooth[1, 0, 0]), 1), round(float(sm.V[1, 0, 0, 0]), 1)
    (1111.7, 4032.2)
    """
    Y = as_batch(Y)
    B, n, p = Y.shape
    chunk = _systems(models, B, p)
    first = models if isinstance(models, StateSpaceModel) else models[0]
    m, r = first.m, first.r
    res = dict(a_smooth=np.empty((B, n, m)), V=np.empty((B, n, m, m)),
               eps_hat=np.empty((B, n, p)), eps_var=np.empty((B, n, p, p)),
               eta_hat=np.empty((B, n, r)), eta_var=np.empty((B, n, r, r)))

    def smooth(start: int, stop: int, sys: SystemArrays, f: BatchFilterResult, K, Finv, Pinf):
        k = stop - start
        part = {key: val[start:stop] for key, val in res.items()}
        _smoother_batch_loop(Y[start:stop], sys.Z, sys.d, sys.H, sys.T, sys.R, sys.Q,
                             f.a_pred[start:stop], f.P_pred[start:stop], Pinf, f.v[start:stop],
                             Finv, K, f.n_diffuse[start:stop], TOL_DIFFUSE, part["a_smooth"],
                             part["V"], part["eps_hat"], part["eps_var"], part["eta_hat"],
                             part["eta_var"], np.empty((k, n, m)), np.empty((k, n, m, m)))

    f = _filter_many(Y, chunk, m, chunk_size, tol, smooth)
    return BatchSmootherResult(filter=f, **res)


def as_batch(Y: Any) -> np.ndarray:
    """y of many series as a float (B, n, p) array: (B, n) is read as p = 1; NaN = missing.

    Raises
    ------
    ValueError
        Wrong number of dimensions, or inf.
    """
    arr = np.asarray(Y, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"y of many series must be (B, n) or (B, n, p); got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("y must not contain inf (NaN marks missing values)")
    return np.ascontiguousarray(arr)


def stack_systems(systems: Sequence[SystemArrays]) -> SystemArrays:
    """System arrays of B models with the same structure, stacked on a leading batch axis.

    Raises
    ------
    ValueError
        When the models' matrices differ in shape (different structures cannot be batched).
    """
    first = systems[0]
    for i, s in enumerate(systems):
        for name, a, b in zip(SystemArrays._fields, first, s, strict=True):
            if a.shape != b.shape:
                raise ValueError(f"model {i}: {name} has shape {b.shape}, model 0 has {a.shape}; "
                                 "batched series need models of one structure")
    return SystemArrays(*(np.ascontiguousarray(np.stack(parts)) for parts in zip(*systems)))


def loglike_many(models: StateSpaceModel | Sequence[StateSpaceModel], Y: Any, *,
                 chunk_size: int = CHUNK_SIZE, tol: float = TOL) -> np.ndarray:
    r"""Log-likelihoods of B series in one compiled pass (per-series parameters allowed).

    Parameters
    ----------
    models : StateSpaceModel or sequence of B StateSpaceModel
        One numeric model for every series, or one per series (same structure).
    Y : (B, n) or (B, n, p) array_like
        The series, NaN for missing (pad shorter series with NaN).
    chunk_size : int
        Series per compiled call; bounds the memory of the stacked system arrays.
    tol : float
        As in :func:`pymc_dlm.kalman_filter`.

    Returns
    -------
    (B,) ndarray
        Each series' log-likelihood, equal to :func:`pymc_dlm.loglike` on it; NaN where an
        H block could not be decorrelated in the diffuse steps (see :func:`kalman_filter`).

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.batch import loglike_many
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> ll = loglike_many([dlm.LocalLevel(38.3, 122.9), dlm.LocalLevel(30.0, 100.0)],
    ...                   np.stack([y, y]))
    >>> round(float(ll[0]), 4), bool(ll[1] < ll[0])
    (-633.4646, True)
    """
    Y = as_batch(Y)
    B, n, p = Y.shape
    chunk = _systems(models, B, p)
    if not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    out = np.empty(B)
    for start in range(0, B, chunk_size):
        stop = min(start + chunk_size, B)
        _loglike_loop(Y[start:stop], *chunk(start, stop), tol, TOL_DIFFUSE, STEADY_TOL,
                      out[start:stop])
    return out


class BatchForecastResult(NamedTuple):
    """Output of :func:`forecast_many`: :class:`~pymc_dlm.ForecastResult`'s arrays with a
    leading batch axis (B), h = steps."""

    y_mean: np.ndarray  # (B, h, p)
    y_cov: np.ndarray  # (B, h, p, p)
    a: np.ndarray  # (B, h, m)
    P: np.ndarray  # (B, h, m, m)
    n_diffuse: np.ndarray  # (B,); -1 where the filter failed (NaN moments)


def forecast_many(models: StateSpaceModel | Sequence[StateSpaceModel], ys: Sequence[Any],
                  steps: int, *, chunk_size: int = CHUNK_SIZE,
                  tol: float = TOL) -> BatchForecastResult:
    r"""Forecasts of B series of different lengths in one compiled pass.

    For each series the filter runs over its data followed by ``steps`` missing rows (D&K
    2012, section 4.11), exactly as :func:`pymc_dlm.forecast`:

    .. math::

        a_{n+j+1} = T a_{n+j} + c,\quad P_{n+j+1} = T P_{n+j} T' + RQR',\quad
        E(y_{n+j}) = Z a_{n+j} + d,\quad Var(y_{n+j}) = Z P_{n+j} Z' + H

    Parameters
    ----------
    models : StateSpaceModel or sequence of B StateSpaceModel
        Numeric models of one structure with constant system matrices.
    ys : sequence of B (n_b,) or (n_b, p) array_like
        Each series' observations (NaN = missing); the lengths may differ.
    steps : int
        Horizon h >= 1.
    chunk_size : int
        Series per compiled call.
    tol : float
        As in :func:`pymc_dlm.kalman_filter`.

    Returns
    -------
    BatchForecastResult
        ``n_diffuse[b] > n_b`` marks a series whose diffuse period did not end within its
        data (its forecast variances are not finite; :func:`pymc_dlm.forecast` raises).

    Raises
    ------
    ValueError
        A time-varying model, inf in a series, series with different p, a bad ``steps``.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.batch import forecast_many
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> fc = forecast_many(dlm.LocalLevel(38.3, 122.9), [y, y[:60]], 3)
    >>> fc.y_mean.shape, round(float(fc.y_mean[0, 0, 0]), 1)
    ((2, 3, 1), 798.4)
    """
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    arrays = []
    for i, y in enumerate(ys):
        a = np.asarray(y, dtype=np.float64)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"series {i}: expected (n,) or (n, p) with n >= 1; got shape "
                             f"{np.shape(y)}")
        arrays.append(a)
    if not arrays:
        raise ValueError("no series to forecast")
    B, p = len(arrays), arrays[0].shape[1]
    for i, a in enumerate(arrays):
        if a.shape[1] != p:
            raise ValueError(f"series {i} has p = {a.shape[1]}; series 0 has p = {p}")
    for i, mod in enumerate([models] if isinstance(models, StateSpaceModel) else models):
        if mod.n_time is not None:
            raise ValueError(f"model {i} is time-varying (n = {mod.n_time}); forecast_many "
                             "needs constant system matrices (use pymc_dlm.forecast)")
    chunk = _systems(models, B, p)
    first = models if isinstance(models, StateSpaceModel) else models[0]
    return _forecast_chunks(chunk, arrays, steps, first.m, chunk_size, tol)


def _forecast_chunks(chunk: Any, arrays: list, steps: int, m: int, chunk_size: int,
                     tol: float) -> BatchForecastResult:
    """:func:`forecast_many`'s work: ``chunk(start, stop)`` gives the stacked system arrays
    of series start..stop-1, ``arrays`` their (n_b, p) observations."""
    B, p = len(arrays), arrays[0].shape[1]
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    Y = np.full((B, int(lengths.max()), p), np.nan)
    for i, a in enumerate(arrays):
        Y[i, : a.shape[0]] = a
    Y = as_batch(Y)
    out = BatchForecastResult(y_mean=np.empty((B, steps, p)), y_cov=np.empty((B, steps, p, p)),
                              a=np.empty((B, steps, m)), P=np.empty((B, steps, m, m)),
                              n_diffuse=np.empty(B, dtype=np.int64))
    # the batched filter over each series and h missing rows (padding after a series' own
    # rows is missing too, so its forecasts are the rows n_b .. n_b + h - 1); its full output
    # is held for a chunk at a time, at most ~64 MB
    L = Y.shape[1] + steps
    full = np.full((B, L, p), np.nan)
    full[:, : Y.shape[1]] = Y
    per_series = L * (3 * m * m + 2 * m + m * p + 2 * p * p + p + 2) + m * m + m
    size = max(1, min(chunk_size, (64 << 20) // (8 * per_series)))
    rows = lengths[:, None] + np.arange(steps)  # (B, h)
    for start in range(0, B, size):
        stop = min(start + size, B)
        k = stop - start
        sys = chunk(start, stop)
        a_pred, P_pred = np.empty((k, L + 1, m)), np.empty((k, L + 1, m, m))
        F = np.empty((k, L, p, p))
        _filter_batch_loop(
            full[start:stop], *sys, tol, TOL_DIFFUSE, a_pred, P_pred, np.empty((k, L, m)),
            np.empty((k, L, m, m)), np.empty((k, L, p)), F, np.empty((k, L, m, p)),
            np.empty((k, L, p, p)), np.empty((k, L)), np.empty((k, L), dtype=np.int64),
            np.empty((k, L, m, m)), out.n_diffuse[start:stop])
        b = np.arange(k)[:, None]
        at = rows[start:stop]
        out.a[start:stop] = a_pred[b, at]
        out.P[start:stop] = P_pred[b, at]
        out.y_cov[start:stop] = F[b, at]
        out.y_mean[start:stop] = (np.einsum("bpm,bhm->bhp", sys.Z[:, 0], out.a[start:stop])
                                  + sys.d[:, 0][:, None, :])
        failed = out.n_diffuse[start:stop] < 0
        for x in (out.a, out.P, out.y_cov, out.y_mean):
            x[start:stop][failed] = np.nan
        out.n_diffuse[start:stop][failed] = -1
    return out


def forecast_draws(systems: SystemArrays, y: Any, steps: int, *, chunk_size: int = CHUNK_SIZE,
                   tol: float = TOL) -> BatchForecastResult:
    r"""Forecasts of one series at S parameter draws (a posterior sample) in one compiled pass.

    The batched filter of :func:`forecast_many` over the same data ``y`` with the system
    arrays of each draw: row s is :func:`pymc_dlm.forecast` of the model at draw s, that is
    the mean and variance of :math:`y_{n+j}` given the data and the parameters
    :math:`\theta_s`.  Mixed over the draws (:func:`mixture_moments`,
    :func:`mixture_quantiles`) they give the posterior predictive distribution, exactly for
    the sample (no simulated paths).

    Parameters
    ----------
    systems : SystemArrays
        Each array with a leading draw axis S before the time axis (``Z`` (S, 1, p, m), ...,
        ``a1`` (S, m), ``P1`` and ``P1inf`` (S, m, m)): constant system matrices.
    y : (n,) or (n, p) array_like
        The series (NaN = missing).
    steps : int
        Horizon h >= 1.

    Returns
    -------
    BatchForecastResult
        With B = S.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.assemble import system_arrays
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> draws = [system_arrays(dlm.LocalLevel(s, 122.9)) for s in (30.0, 38.3)]
    >>> fc = forecast_draws(stack_systems(draws), y, 2)
    >>> fc.y_mean.shape, round(float(fc.y_cov[1, 0, 0, 0]), 1)
    ((2, 2, 1), 20601.7)
    """
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    a = np.asarray(y, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"expected y of shape (n,) or (n, p) with n >= 1; got {np.shape(y)}")
    S = systems.Z.shape[0]
    if any(x.shape[0] != S for x in systems) or systems.Z.shape[1] != 1:
        raise ValueError("systems must hold S draws of constant system arrays (a leading draw "
                         f"axis, then a time axis of length 1); got Z of shape {systems.Z.shape}")
    if systems.Z.shape[2] != a.shape[1]:
        raise ValueError(f"the model has p = {systems.Z.shape[2]}; y has p = {a.shape[1]}")

    def chunk(start: int, stop: int) -> SystemArrays:
        return SystemArrays(*(np.ascontiguousarray(x[start:stop]) for x in systems))

    return _forecast_chunks(chunk, [a] * S, steps, systems.Z.shape[3], chunk_size, tol)


def mixture_moments(mean: np.ndarray, var: np.ndarray) -> tuple:
    r"""Mean and variance of an equally weighted mixture of normals over the first axis.

    :math:`\bar\mu = S^{-1}\sum_s \mu_s`, :math:`\bar\sigma^2 = S^{-1}\sum_s
    (\sigma_s^2 + \mu_s^2) - \bar\mu^2`, computed as :math:`S^{-1}\sum_s \sigma_s^2 +
    S^{-1}\sum_s (\mu_s - \bar\mu)^2` (no cancellation).

    Examples
    --------
    >>> mixture_moments(np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    (np.float64(1.0), np.float64(2.0))
    """
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    mu = mean.mean(axis=0)
    return mu, var.mean(axis=0) + ((mean - mu) ** 2).mean(axis=0)


def mixture_quantiles(mean: np.ndarray, var: np.ndarray, probs: Sequence[float],
                      *, rtol: float = 1e-12) -> np.ndarray:
    r"""Quantiles of equally weighted mixtures of normals, components on the first axis.

    Solves :math:`S^{-1}\sum_s \Phi((x - \mu_s)/\sigma_s) = q` for each q and each
    mixture by Newton's method safeguarded by bisection (the bracket is kept, so it
    converges for any mixture), from the normal with the mixture's mean and variance.

    Parameters
    ----------
    mean, var : (S, ...) array_like
        Component means and variances (> 0); the trailing axes index the mixtures.
    probs : sequence of float in (0, 1)
    rtol : float
        Stop when a Newton step moves x by at most ``rtol`` times the mixture's scale.

    Returns
    -------
    (len(probs), ...) ndarray

    Examples
    --------
    >>> q = mixture_quantiles(np.array([[0.0], [0.0]]), np.array([[1.0], [1.0]]), [0.975])
    >>> round(float(q[0, 0]), 6)
    1.959964
    """
    from scipy.special import ndtr, ndtri

    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or not np.all((probs > 0.0) & (probs < 1.0)):
        raise ValueError(f"probs must be a 1-d sequence in (0, 1); got {probs.tolist()}")
    sd = np.sqrt(var)
    mu, v = mixture_moments(mean, var)
    scale = np.sqrt(v)
    out = np.empty(probs.shape + mu.shape)
    for i, q in enumerate(probs):
        lo = (mean - 40.0 * sd).min(axis=0)
        hi = (mean + 40.0 * sd).max(axis=0)
        x = np.clip(mu + ndtri(q) * scale, lo, hi)
        for _ in range(200):
            z = (x - mean) / sd
            f = ndtr(z).mean(axis=0) - q
            dens = (np.exp(-0.5 * z * z) / (np.sqrt(2.0 * np.pi) * sd)).mean(axis=0)
            lo, hi = np.where(f < 0.0, x, lo), np.where(f > 0.0, x, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = x - f / dens
            outside = ~((step > lo) & (step < hi))
            step = np.where(outside, 0.5 * (lo + hi), step)
            done = np.abs(step - x) <= rtol * scale
            x = step
            if np.all(done | ~np.isfinite(x)):
                break
        out[i] = x
    return out
