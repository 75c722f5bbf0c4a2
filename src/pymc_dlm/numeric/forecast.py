r"""Forecasting: filtering with the future observations missing (D&K 2012, section 4.11)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec.model import StateSpaceModel
from ..spec.interventions import dummy
from .assemble import system_arrays
from .calendar import extend_index, index_of
from .filter import TOL, _run, overflow_message, prepare_y
from .results import ForecastResult

__all__ = ["exog_names", "extend_index", "extend_model", "forecast", "series_names", "with_exog"]

_TV = ("Z", "d", "H", "T", "c", "R", "Q")
_BASE = {"Z": 2, "d": 1, "H": 2, "T": 2, "c": 1, "R": 2, "Q": 2}


def exog_names(model: StateSpaceModel) -> tuple[str, ...]:
    """Names of the model's regressors (every component's ``exog``, in state order)."""
    return tuple(name for comp in model.components for name in comp.exog)


def _exog_array(exog: Any, names: tuple[str, ...], steps: int, index: Any) -> np.ndarray:
    """Future regressors as a (steps, k) float array, checked and aligned to the horizon."""
    k = len(names)
    if index_of(exog) is not None:  # pandas: rows by the forecast index, columns by name
        import pandas as pd

        frame = exog.to_frame() if isinstance(exog, pd.Series) else exog
        if k == 1 and list(frame.columns) != list(names) and frame.shape[1] == 1:
            frame = frame.set_axis(list(names), axis=1)
        absent = [nm for nm in names if nm not in frame.columns]
        if absent:
            raise ValueError(f"exog lacks the regressors {absent}; it has columns "
                             f"{[str(c) for c in frame.columns]}")
        frame = frame[list(names)]
        if index is not None and not isinstance(frame.index, pd.RangeIndex):
            rows = frame.index.get_indexer(index)
            if np.any(rows < 0):
                raise ValueError(f"exog has no row for {index[int(np.flatnonzero(rows < 0)[0])]}"
                                 f"; the forecast periods are {index[0]} .. {index[-1]}")
            frame = frame.iloc[rows]
        arr = frame.to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(exog, dtype=np.float64)
        if arr.ndim == 1 and k == 1:
            arr = arr[:, None]
    if arr.shape != (steps, k):
        raise ValueError(f"exog must hold the future values of the regressors {list(names)}: "
                         f"(steps, k) = ({steps}, {k}); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("exog must be finite (future regressors are known values)")
    return arr


def extend_model(model: StateSpaceModel, n: int, steps: int, *, exog: Any = None,
                 future: dict | None = None, index: Any = None) -> StateSpaceModel:
    r"""The model over the data and the horizon, ``n + steps`` time steps.

    A constant model is returned as it is.  A model time-varying over the ``n`` observations
    gets each time-varying matrix continued by its future values: ``Z``'s regressor columns
    (components with ``exog``, e.g. :func:`~pymc_dlm.Regression`) from ``exog``, its other
    columns kept at their last value when they are constant in time; any matrix from
    ``future``.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric; constant, time-varying over n, or already over n + steps.
    n, steps : int
    exog : (steps, k) array_like or pandas DataFrame, optional
        Future values of the regressors :func:`exog_names` (a DataFrame by column name, its
        rows matched to ``index``).
    future : dict, optional
        ``{"Z": (steps, p, m), "H": (steps, p, p), ...}`` future values of time-varying
        matrices (``Z`` given here wins over ``exog``).
    index : pandas.Index, optional
        The forecast periods, to align a DataFrame ``exog``.

    Returns
    -------
    StateSpaceModel
        Time-varying over ``n + steps`` (or constant).

    Raises
    ------
    ValueError
        A future matrix or regressor is missing (the message names it), or has the wrong shape.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> mod = dlm.LocalLevel(1.0, 1.0) + dlm.Regression(np.ones((5, 1)), names=["x"])
    >>> extend_model(mod, 5, 2, exog=[[2.0], [3.0]]).Z[:, 0, 1].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0]
    """
    future = dict(future or {})
    unknown = sorted(set(future) - set(_TV))
    if unknown:
        raise ValueError(f"future= takes the matrices {list(_TV)}; got {unknown}")
    names = exog_names(model)
    if exog is not None and not names:
        raise ValueError("exog= was given but the model has no regressors (no Regression term)")
    if model.n_time == n + steps:
        if exog is not None or future:
            raise ValueError(f"the model already covers n + steps = {n + steps} time steps; "
                             "exog= and future= are for a model over the n observations")
        return model
    if model.n_time is not None and model.n_time != n:
        raise ValueError(f"a time-varying model must cover the n = {n} observations (and take "
                         "future values through exog=/future=) or the data and the horizon: "
                         f"n + steps = {n + steps} time steps; got {model.n_time}")
    changes = {}
    if "Z" not in future and model.time_varying("Z") and names:
        Z = np.asarray(model.Z, dtype=np.float64)
        cols = [i for comp in model.components if comp.exog for i in comp.states]
        rest = np.setdiff1d(np.arange(model.m), cols)
        ruled = {i: rule for comp in model.components
                 for i, rule in zip(comp.states, comp.rules, strict=False)}
        given = [i for i in cols if i not in ruled]
        names = tuple(nm for i, nm in zip(cols, names, strict=True) if i not in ruled)
        if (exog is not None or not given) and np.all(Z[:, :, rest] == Z[-1:, :, rest]):
            Zf = np.repeat(Z[-1:], steps, axis=0)
            for i, (kind, t0) in ruled.items():  # interventions: known functions of time
                Zf[:, 0, i] = dummy(kind, t0, n, n + steps)
            if given:
                Zf[:, 0, given] = _exog_array(exog, names, steps, index)
            elif exog is not None:
                raise ValueError("exog= was given but the model's only regressors are "
                                 "interventions, which continue by themselves")
            future["Z"] = Zf
        elif exog is None:
            raise ValueError(
                f"the model's Z is time-varying over the n = {n} observations (regressors "
                f"{list(names)}); forecasting {steps} step{'s' if steps > 1 else ''} needs their "
                f"future values: pass exog= as a ({steps}, {len(names)}) array or a DataFrame "
                "with those columns")
        else:
            raise ValueError("Z is time-varying beyond its regressor columns; pass future={'Z': "
                             f"({steps}, {model.p}, {model.m}) array}}")
    missing = [k for k in _TV if model.time_varying(k) and model.n_time is not None
               and k not in future]
    if missing:
        raise ValueError(
            f"the model's {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} time-varying "
            f"over the n = {n} observations; forecasting {steps} steps needs "
            f"{'its' if len(missing) == 1 else 'their'} future values: pass future="
            + "{" + ", ".join(f"'{k}': (steps, ...) array" for k in missing) + "}")
    for k, val in future.items():
        val = np.asarray(val, dtype=np.float64)
        base = np.asarray(getattr(model, k), dtype=np.float64)
        core = base.shape[1:] if model.time_varying(k) else base.shape
        if val.shape != (steps, *core):
            raise ValueError(f"future {k} must be (steps, ...) = {(steps, *core)}; got {val.shape}")
        past = base if model.time_varying(k) else np.broadcast_to(base, (n, *core))
        changes[k] = np.concatenate([past, val])
    for k in _TV:  # constant matrices of a time-varying model stay constant
        if k not in changes and model.time_varying(k):
            changes[k] = np.asarray(getattr(model, k))
    return model.replace(**changes)


def with_exog(model: StateSpaceModel, exog: Any, n: int, index: Any = None) -> StateSpaceModel:
    """The model with its regressors replaced by ``exog`` over ``n`` other periods.

    For applying fitted parameters to other data: ``Z``'s regressor columns become ``exog``,
    its other columns (constant in time) are kept; other matrices must be constant.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric, with regressors (:func:`exog_names`).
    exog : (n, k) array_like or pandas DataFrame
        The regressors at the other periods (a DataFrame's rows matched to ``index``).
    n : int
    index : pandas.Index, optional

    Returns
    -------
    StateSpaceModel
        Time-varying over ``n``.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> mod = dlm.LocalLevel(1.0, 1.0) + dlm.Regression(np.ones((5, 1)), names=["x"])
    >>> with_exog(mod, np.arange(3.0), 3).Z[:, 0, 1].tolist()
    [0.0, 1.0, 2.0]
    """
    names = exog_names(model)
    if not names:
        raise ValueError("exog= was given but the model has no regressors (no Regression term)")
    if exog is None:
        raise ValueError(f"the model regresses on {list(names)}: give their values at the other "
                         "periods as exog=")
    others = [k for k in _TV if k != "Z" and model.time_varying(k)]
    if others:
        raise ValueError(f"the model's {others} are time-varying over its own data; build the "
                         "model for the other data instead")
    Z = np.asarray(model.Z, dtype=np.float64)
    cols = [i for comp in model.components if comp.exog for i in comp.states]
    rest = np.setdiff1d(np.arange(model.m), cols)
    if not np.all(Z[:, :, rest] == Z[-1:, :, rest]):
        raise ValueError("Z is time-varying beyond its regressor columns; build the model for "
                         "the other data instead")
    Zn = np.repeat(Z[-1:], n, axis=0)
    Zn[:, 0, cols] = _exog_array(exog, names, n, index)
    return model.replace(Z=Zn)


def forecast(model: StateSpaceModel, y: Any, steps: int, *, exog: Any = None,
             future: dict | None = None) -> Any:
    r"""Forecast y and the states ``steps`` periods beyond the data.

    .. math::

        a_{n+j+1} = T a_{n+j} + c,\quad P_{n+j+1} = T P_{n+j} T' + RQR',\quad
        E(y_{n+j}) = Z a_{n+j} + d,\quad Var(y_{n+j}) = Z P_{n+j} Z' + H

    computed by running the filter over ``y`` followed by ``steps`` missing rows (Durbin and
    Koopman 2012, section 4.11), with the future system matrices of a time-varying model
    (:func:`extend_model`): regressors from ``exog``, other matrices from ``future``, or a
    model that already covers ``n + steps``.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric model; constant, time-varying over n (with ``exog``/``future``) or over
        ``n + steps``.
    y : (n,) or (n, p) array_like, pandas Series or DataFrame
        Observations (NaN = missing); a pandas index is made regular first
        (:func:`~pymc_dlm.numeric.calendar.regularize`) and continued.
    steps : int
        Forecast horizon h >= 1.
    exog : (h, k) array_like, pandas DataFrame, or dict of them, optional
        Future regressors (:func:`extend_model`); a dict ``{scenario: exog}`` gives one
        forecast per scenario.
    future : dict, optional
        Future values of other time-varying matrices (:func:`extend_model`).

    Returns
    -------
    ForecastResult, or dict of ForecastResult (one per scenario)
        Means and covariances of :math:`y_{n+1..n+h}` and of the states.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> fc = dlm.forecast(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), dlm.datasets.load_nile(), 3)
    >>> fc.y_mean.shape, fc.index[0]
    ((3, 1), np.int64(1971))
    """
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    y_arr, index = prepare_y(model, y, n_time=False)
    if isinstance(exog, dict):
        if not exog:
            raise ValueError("exog= as a dict needs at least one scenario")
        return {str(k): _forecast(model, y, y_arr, index, steps, x, future)
                for k, x in exog.items()}
    return _forecast(model, y, y_arr, index, steps, exog, future)


def _forecast(model: StateSpaceModel, y: Any, y_arr: np.ndarray, index: Any, steps: int,
              exog: Any, future: dict | None) -> ForecastResult:
    n = y_arr.shape[0]
    fidx = extend_index(index, steps)
    model = extend_model(model, n, steps, exog=exog, future=future, index=fidx)
    full = np.vstack([y_arr, np.full((steps, model.p), np.nan)])
    sys = system_arrays(model)
    out, n_diffuse = _run(sys, np.ascontiguousarray(full), True, TOL)
    if n_diffuse > n:
        raise ValueError(
            f"the diffuse initialisation has not ended within the {n} observations "
            f"(needs {n_diffuse} steps), so forecast variances are infinite"
        )
    bad = ~np.isfinite(out["F"][n:]).all(axis=(1, 2))
    if bad.any():
        raise ValueError(overflow_message(n + int(np.flatnonzero(bad)[0])))
    return ForecastResult(
        y_mean=np.einsum("tpm,tm->tp", _rows(sys.Z, n, steps), out["a_pred"][n:-1])
        + _rows(sys.d, n, steps),
        y_cov=out["F"][n:],
        a=out["a_pred"][n:-1],
        P=out["P_pred"][n:-1],
        index=fidx,
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
