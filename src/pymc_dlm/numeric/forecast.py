r"""Forecasting: filtering with the future observations missing (D&K 2012, section 4.11)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec.model import StateSpaceModel
from ..spec.validate import check_y
from .assemble import system_arrays
from .filter import TOL, _run
from .results import ForecastResult

__all__ = ["extend_index", "forecast", "series_names"]


def extend_index(index: Any, steps: int) -> Any:
    """Continue a pandas index by ``steps`` periods (dates with a frequency, or integers).

    Returns None when the index cannot be extended unambiguously.
    """
    if index is None:
        return None
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex | pd.PeriodIndex):
        freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
        if freq is None:
            return None
        return pd.date_range(index[-1], periods=steps + 1, freq=freq)[1:] if isinstance(
            index, pd.DatetimeIndex
        ) else pd.period_range(index[-1] + 1, periods=steps, freq=freq)
    if pd.api.types.is_integer_dtype(index):
        step = int(index[-1] - index[-2]) if len(index) > 1 else 1
        return pd.Index(index[-1] + step * np.arange(1, steps + 1), name=index.name)
    return None


def forecast(model: StateSpaceModel, y: Any, steps: int) -> ForecastResult:
    r"""Forecast y and the states ``steps`` periods beyond the data.

    .. math::

        a_{n+j+1} = T a_{n+j} + c,\quad P_{n+j+1} = T P_{n+j} T' + RQR',\quad
        E(y_{n+j}) = Z a_{n+j} + d,\quad Var(y_{n+j}) = Z P_{n+j} Z' + H

    computed by running the filter over ``y`` followed by ``steps`` missing rows (Durbin and
    Koopman 2012, section 4.11), so time-varying models are forecast with their own future
    matrices: such a model must then cover ``n + steps`` time steps.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric model; constant, or time-varying over ``n + steps``.
    y : (n,) or (n, p) array_like, pandas Series or DataFrame
        Observations (NaN = missing).
    steps : int
        Forecast horizon h >= 1.

    Returns
    -------
    ForecastResult
        Means and covariances of :math:`y_{n+1..n+h}` and of the states.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> fc = dlm.forecast(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), dlm.datasets.load_nile(), 3)
    >>> fc.y_mean.shape, fc.index[0]
    ((3, 1), np.int64(1971))
    """
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    index = getattr(y, "index", None)
    y_arr = check_y(y, model.p)
    n = y_arr.shape[0]
    if model.n_time is not None and model.n_time != n + steps:
        raise ValueError(
            f"a time-varying model must cover the data and the forecast horizon: n + steps = "
            f"{n + steps} time steps; got {model.n_time}"
        )
    full = np.vstack([y_arr, np.full((steps, model.p), np.nan)])
    sys = system_arrays(model)
    out, n_diffuse = _run(sys, np.ascontiguousarray(full), True, TOL)
    if n_diffuse > n:
        raise ValueError(
            f"the diffuse initialisation has not ended within the {n} observations "
            f"(needs {n_diffuse} steps), so forecast variances are infinite"
        )
    return ForecastResult(
        y_mean=np.einsum("tpm,tm->tp", _rows(sys.Z, n, steps), out["a_pred"][n:-1])
        + _rows(sys.d, n, steps),
        y_cov=out["F"][n:],
        a=out["a_pred"][n:-1],
        P=out["P_pred"][n:-1],
        index=extend_index(index, steps),
        series_names=series_names(y, model.p),
    )


def series_names(y: Any, p: int) -> tuple[str, ...]:
    """Names of the observed series: a DataFrame's columns, a Series' name, else y / y[i]."""
    cols = getattr(y, "columns", None)
    if cols is not None and len(cols) == p:
        return tuple(str(c) for c in cols)
    name = getattr(y, "name", None)
    if p == 1:
        return (str(name) if name is not None else "y",)
    return tuple(f"y[{i}]" for i in range(p))


def _rows(x: np.ndarray, n: int, steps: int) -> np.ndarray:
    return x[n : n + steps] if x.shape[0] > 1 else np.broadcast_to(x[0], (steps,) + x.shape[1:])
