r"""Residual test statistics for many residual series at once (NumPy; one row per draw).

The same statistics, in the same conventions, as :mod:`pymc_dlm.diagnostics` (Ljung-Box
:math:`Q(k)`, Jarque-Bera, D&K's :math:`H(h)`; ``tests/numeric/test_residual_stats.py``
checks them against those functions), vectorised over a leading axis so that the posterior
draws of a Bayesian fit cost one pass.  They live in the engine layer so that
:mod:`pymc_dlm.bayes` (below the diagnostics layer) can use them.  The series must be free
of NaN: drop the missing and diffuse steps first (their pattern is the same in every draw).
:func:`residual_dataset` builds the ``residuals`` group of a DataTree (one-step predictions,
errors, variances, standardized residuals and these statistics per draw) for both the
Bayesian fits (:func:`pymc_dlm.add_residuals`) and the point estimates (``to_datatree``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["entry_loglik", "heteroskedasticity_h", "jarque_bera_stat", "ljung_box_q",
           "residual_dataset", "standardized"]


def _rows(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 3 or not np.isfinite(x).all():
        raise ValueError(f"need finite series of at least 3 values on the last axis; got shape "
                         f"{x.shape}{'' if np.isfinite(x).all() else ' with NaN or inf'}")
    return x


def ljung_box_q(x: Any, lags: Any) -> np.ndarray:
    r"""Ljung-Box :math:`Q(k) = N(N+2)\sum_{j=1}^{k} r_j^2/(N-j)` for each k in ``lags``.

    Parameters
    ----------
    x : (..., N) array_like
        Residual series on the last axis.
    lags : sequence of int
        Each between 1 and N - 1.

    Returns
    -------
    (..., len(lags)) ndarray

    Examples
    --------
    >>> import numpy as np
    >>> ljung_box_q(np.random.default_rng(0).normal(size=(2, 200)), [10]).shape
    (2, 1)
    """
    x = _rows(x)
    n = x.shape[-1]
    lags = [int(k) for k in np.atleast_1d(lags)]
    if not lags or min(lags) < 1 or max(lags) >= n:
        raise ValueError(f"lags must be between 1 and N - 1 = {n - 1}; got {lags}")
    d = x - x.mean(axis=-1, keepdims=True)
    den = np.sum(d * d, axis=-1)
    kmax = max(lags)
    r = np.stack([np.sum(d[..., : n - j] * d[..., j:], axis=-1) / den for j in range(1, kmax + 1)],
                 axis=-1)
    q = n * (n + 2) * np.cumsum(r**2 / (n - np.arange(1, kmax + 1)), axis=-1)
    return q[..., [k - 1 for k in lags]]


def jarque_bera_stat(x: Any) -> np.ndarray:
    r"""Jarque-Bera :math:`\frac{N}{6}\left(S^2 + (K - 3)^2/4\right)` on the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> bool(jarque_bera_stat(np.random.default_rng(0).exponential(size=(1, 500)))[0] > 100)
    True
    """
    x = _rows(x)
    d = x - x.mean(axis=-1, keepdims=True)
    m2 = np.mean(d**2, axis=-1)
    skew = np.mean(d**3, axis=-1) / m2**1.5
    kurt = np.mean(d**4, axis=-1) / m2**2
    return x.shape[-1] / 6.0 * (skew**2 + (kurt - 3.0) ** 2 / 4.0)


def heteroskedasticity_h(x: Any, h: int | None = None) -> np.ndarray:
    r"""D&K's :math:`H(h) = \sum_{t=N-h+1}^{N} e_t^2 / \sum_{t=1}^{h} e_t^2` on the last axis.

    ``h`` defaults to the nearest integer to N / 3 (as :func:`pymc_dlm.diagnostics.heteroskedasticity`).

    Examples
    --------
    >>> import numpy as np
    >>> e = np.random.default_rng(1).normal(size=(1, 300)); e[:, 200:] *= 3
    >>> bool(heteroskedasticity_h(e)[0] > 5)
    True
    """
    x = _rows(x)
    n = x.shape[-1]
    h = int(np.round(n / 3)) if h is None else int(h)
    if not 1 <= h <= n // 2:
        raise ValueError(f"h must be between 1 and N / 2 = {n // 2}; got {h}")
    return np.sum(x[..., n - h:] ** 2, axis=-1) / np.sum(x[..., :h] ** 2, axis=-1)


def _cholesky_scaled(v: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L_t^{-1} v_t, log diag L_t) over the observed rows, F_t = L_t L_t'; NaN where v is."""
    p = v.shape[-1]
    if p == 1:
        return v / np.sqrt(F[..., 0]), np.where(np.isnan(v), np.nan, 0.5 * np.log(F[..., 0]))
    e = np.full(v.shape, np.nan)
    logd = np.full(v.shape, np.nan)
    n = v.shape[-2]
    for t in range(n):
        vt = v[..., t, :]
        obs = np.flatnonzero(np.isfinite(vt.reshape(-1, p)).all(axis=0))
        if obs.size == 0:
            continue
        Ft = F[..., t, :, :][..., obs[:, None], obs[None, :]]
        L = np.linalg.cholesky(Ft)
        e[..., t, obs] = np.linalg.solve(L, vt[..., obs, None])[..., 0]
        logd[..., t, obs] = np.log(np.diagonal(L, axis1=-2, axis2=-1))
    return e, logd


def standardized(v: np.ndarray, F: np.ndarray) -> np.ndarray:
    r"""Standardized residuals :math:`L_t^{-1} v_t`, :math:`F_t = L_t L_t'` over the observed
    rows (D&K 2012, section 7.5), for any leading axes: v (..., n, p), F (..., n, p, p).
    NaN where v is NaN (missing, diffuse)."""
    return _cholesky_scaled(v, F)[0]


def entry_loglik(v: np.ndarray, F: np.ndarray) -> np.ndarray:
    r"""The one-step log-density of each observed value, by the chain rule within a step.

    With the observed rows of step t in their order and :math:`F_t = L_t L_t'` over them,
    :math:`e_t = L_t^{-1} v_t` and

    .. math:: \ell_{t,i} = \log p(y_{t,i} \mid y_{t,1..i-1}, y_{1:t-1})
              = -\tfrac12 \log 2\pi - \log L_{t,ii} - \tfrac12 e_{t,i}^2,

    so :math:`\sum_i \ell_{t,i} = \log N(v_t; 0, F_t)`, the step's term of the
    log-likelihood (D&K 2012, eq. 7.2); the univariate treatment of the multivariate filter
    (section 6.4) decomposes it the same way.  For p = 1 it is the step's term.

    Parameters
    ----------
    v : (..., n, p) ndarray
        Prediction errors, NaN where y is missing (and in the diffuse steps).
    F : (..., n, p, p) ndarray

    Returns
    -------
    (..., n, p) ndarray
        NaN where v is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> F = np.array([[[2.0, 0.5], [0.5, 1.0]]]); v = np.array([[0.3, -1.2]])
    >>> bool(np.isclose(entry_loglik(v, F).sum(), multivariate_normal(cov=F[0]).logpdf(v[0])))
    True
    """
    e, logd = _cholesky_scaled(v, F)
    return -0.5 * np.log(2.0 * np.pi) - logd - 0.5 * e**2


def residual_dataset(y: np.ndarray, yhat: np.ndarray, F: np.ndarray, *, time: tuple,
                     series: tuple | None = None, lags: Any = 10, h: int | None = None,
                     sample: dict | None = None) -> Any:
    r"""The ``residuals`` group from one-step predictions (any number of draws).

    Parameters
    ----------
    y : (n, p) ndarray
    yhat : (chain, draw, n, p) ndarray
        NaN where there is no prediction (the diffuse steps).
    F : (chain, draw, n, p, p) ndarray
    time : (name, values)
        The time dimension and its coordinate.
    series : (name, values), optional
        For p > 1 (default ``("series", 0..p-1)``); with p = 1 and None, no series axis.
    lags : int or sequence of int, default 10
        Ljung-Box lags k.
    h : int, optional
        Block size of :math:`H(h)` (default N / 3 of the N standardized residuals).
    sample : dict, optional
        Coordinates of ``chain`` and ``draw``.

    Returns
    -------
    xarray.Dataset
        ``one_step_mean`` (chain, draw, time[, series]), ``prediction_error`` v_t,
        ``prediction_variance`` F_t (chain, draw, time[, series, series_bis]),
        ``standardized_residual``; and per draw (and series) ``ljung_box`` (``lag``),
        ``jarque_bera``, ``heteroskedasticity`` (on the standardized residuals with the
        missing and diffuse steps dropped).
    """
    import xarray as xr  # only here: the engine layer is NumPy

    nc, ndr, n, p = yhat.shape
    v = y[None, None] - yhat
    e = standardized(v, F)
    tname, tvals = time
    squeeze = p == 1 and series is None
    sname, svals = series if series is not None else ("series", np.arange(p))
    coords = {"chain": np.arange(nc), "draw": np.arange(ndr), tname: tvals}
    coords.update(sample or {})
    lags = [int(k) for k in np.atleast_1d(lags)]
    # statistics on the steps standardised in every draw (the pattern is the same in all)
    stats = {"ljung_box": [], "jarque_bera": [], "heteroskedasticity": []}
    for i in range(p):
        ei = e[..., i]
        keep = np.isfinite(ei).all(axis=(0, 1))
        x = ei[..., keep]
        stats["ljung_box"].append(ljung_box_q(x, lags))
        stats["jarque_bera"].append(jarque_bera_stat(x))
        stats["heteroskedasticity"].append(heteroskedasticity_h(x, h))
    base = ("chain", "draw", tname)
    if squeeze:
        data = {
            "one_step_mean": (base, yhat[..., 0]),
            "prediction_error": (base, v[..., 0]),
            "prediction_variance": (base, F[..., 0, 0]),
            "standardized_residual": (base, e[..., 0]),
            "ljung_box": (("chain", "draw", "lag"), stats["ljung_box"][0]),
            "jarque_bera": (("chain", "draw"), stats["jarque_bera"][0]),
            "heteroskedasticity": (("chain", "draw"), stats["heteroskedasticity"][0]),
        }
    else:
        coords[sname] = svals
        coords[f"{sname}_bis"] = svals
        data = {
            "one_step_mean": (base + (sname,), yhat),
            "prediction_error": (base + (sname,), v),
            "prediction_variance": (base + (sname, f"{sname}_bis"), F),
            "standardized_residual": (base + (sname,), e),
            "ljung_box": (("chain", "draw", sname, "lag"), np.stack(stats["ljung_box"], axis=2)),
            "jarque_bera": (("chain", "draw", sname), np.stack(stats["jarque_bera"], axis=2)),
            "heteroskedasticity": (("chain", "draw", sname),
                                   np.stack(stats["heteroskedasticity"], axis=2)),
        }
    coords["lag"] = lags
    return xr.Dataset(data, coords=coords)
