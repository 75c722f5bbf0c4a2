r"""Standardised one-step prediction errors (D&K 2012, section 2.12 and 7.5)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numeric.results import FilterResult

__all__ = ["standardized_residuals"]


def standardized_residuals(result: FilterResult, model: Any = None) -> np.ndarray:
    r"""One-step prediction errors standardised by their covariance.

    .. math:: e_t = L_t^{-1} v_t, \qquad F_t = L_t L_t'

    over the observed rows of :math:`y_t` (D&K 2012, section 7.5: for p = 1,
    :math:`e_t = v_t / \sqrt{F_t}`).  Under the model :math:`e_t \sim N(0, I)` independently.
    For p > 1 the Cholesky factor decorrelates the rows in their given order, so the
    residual of row i is that of y_i given y_1..y_{i-1} at time t.

    Parameters
    ----------
    result : FilterResult
        From :func:`pymc_dlm.kalman_filter`.
    model : StateSpaceModel, optional
        Accepted for dynaris' signature ``standardized_residuals(filter_result, model)``;
        the filter result already holds what is needed, so it is only checked to match
        (same number of series).

    Returns
    -------
    (n, p) ndarray
        NaN where y is missing and in the diffuse steps t <= ``result.n_diffuse`` (there F_t
        is dominated by the diffuse prior and the error is not standardisable; statsmodels'
        diagnostics skip the same steps).  A step with a singular F_t (rank below the number
        observed) is NaN as well.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.diagnostics import standardized_residuals
    >>> y = dlm.datasets.load_nile()
    >>> e = standardized_residuals(dlm.kalman_filter(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), y))
    >>> e.shape, bool(np.isnan(e[0, 0])), round(float(e[1, 0]), 4)
    ((100, 1), True, 0.2248)
    """
    if not isinstance(result, FilterResult):
        raise TypeError(f"result must be a FilterResult (from kalman_filter); got {type(result).__name__}")
    v, F = result.v, result.F
    n, p = v.shape
    if model is not None and getattr(model, "p", p) != p:
        raise ValueError(f"model has p = {model.p} series but the filter result has {p}")
    out = np.full((n, p), np.nan)
    for t in range(result.n_diffuse, n):
        obs = np.flatnonzero(~np.isnan(v[t]))
        if obs.size == 0 or result.rank[t] < obs.size:
            continue
        L = np.linalg.cholesky(F[t][np.ix_(obs, obs)])
        out[t, obs] = np.linalg.solve(L, v[t, obs]) if obs.size > 1 else v[t, obs] / L[0, 0]
    return out
