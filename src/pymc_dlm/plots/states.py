r"""Plots of the states: filtered, smoothed, structural components, forecasts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numeric.components import component_contributions
from ..numeric.results import FilterResult, ForecastResult, SmootherResult
from ..spec.model import StateSpaceModel
from ._common import band, new_axes, x_values

__all__ = ["plot_components", "plot_filtered", "plot_forecast", "plot_forecast_draws", "plot_smoothed"]


def _pick(names: tuple, states: Any) -> list[int]:
    if states is None:
        return list(range(min(len(names), 4)))
    out = []
    for s in [states] if isinstance(states, str | int) else states:
        if isinstance(s, str):
            if s not in names:
                raise ValueError(f"unknown state {s!r}; the model's states are {list(names)}")
            out.append(names.index(s))
        else:
            out.append(int(s))
    return out


def _plot_states(mean, cov, f: FilterResult, states, alpha, axes, what: str, colour: str):
    idx = _pick(f.state_names, states)
    axes = new_axes(len(idx), axes)
    x = x_values(f.index, f.n)
    for ax, i in zip(axes, idx, strict=True):
        name = f.state_names[i] if f.state_names else f"state_{i}"
        if i == idx[0] and f.y.shape[1] == 1:
            ax.plot(x, f.y[:, 0], "k.", ms=3, label="observed")
        band(ax, x, mean[:, i], cov[:, i, i], alpha, colour, f"{what} {name}")
        ax.set_ylabel(name)
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel("time" if f.index is None else str(f.index.name or "time"))
    axes[0].set_title(f"{what} states")
    return axes


def plot_filtered(result: FilterResult, *, states: Any = None, alpha: float = 0.05,
                  axes: Any = None):
    r"""Filtered states :math:`a_{t|t}` with :math:`(1-\alpha)` bands, one panel per state.

    Parameters
    ----------
    result : FilterResult
    states : sequence of str or int, optional
        Which states (names or indices); the first four by default.
    alpha : float
        Band level: :math:`a_{t|t} \pm z_{1-\alpha/2}\sqrt{P_{t|t}}`.
    axes : sequence of matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Axes

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_filtered
    >>> f = dlm.kalman_filter(dlm.LocalLevel(38.3, 122.9), dlm.datasets.load_nile())
    >>> axes = plot_filtered(f)
    """
    return _plot_states(result.a_filt, result.P_filt, result, states, alpha, axes, "filtered", "C0")


def plot_smoothed(result: SmootherResult, *, states: Any = None, alpha: float = 0.05,
                  axes: Any = None):
    r"""Smoothed states :math:`\hat\alpha_t` with :math:`(1-\alpha)` bands from :math:`V_t`.

    Parameters and returns as :func:`plot_filtered`.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_smoothed
    >>> s = dlm.kalman_smoother(dlm.LocalLevel(38.3, 122.9), dlm.datasets.load_nile())
    >>> axes = plot_smoothed(s)
    """
    return _plot_states(result.a_smooth, result.V, result.filter, states, alpha, axes,
                        "smoothed", "C3")


def plot_components(result: SmootherResult, model: StateSpaceModel, *, alpha: float = 0.05,
                    series: int = 0, axes: Any = None):
    r"""Each structural component's smoothed contribution to y, one panel per component.

    The contribution of a component with states :math:`c` is :math:`Z_{t,c}\hat\alpha_{t,c}`
    with variance :math:`Z_{t,c}V_{t,cc}Z_{t,c}'`
    (:func:`~pymc_dlm.numeric.components.component_contributions`).

    Parameters
    ----------
    result : SmootherResult
    model : StateSpaceModel
        The numeric model the smoother ran on (for Z and the components).
    alpha : float
    series : int
        Which observed series when y is multivariate.
    axes : sequence of matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Axes

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_components
    >>> mod = dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)
    >>> y = np.log(dlm.datasets.load_airline_passengers())
    >>> axes = plot_components(dlm.kalman_smoother(mod, y), mod)
    """
    parts = component_contributions(result, model)
    descriptions = {c.name: c.description for c in model.components}
    axes = new_axes(len(parts), axes)
    f = result.filter
    x = x_values(f.index, f.n)
    for k, (ax, (name, (mean, var))) in enumerate(zip(axes, parts.items(), strict=True)):
        band(ax, x, mean[:, series], var[:, series], alpha, f"C{k}", name)
        ax.set_ylabel(name)
        ax.set_title(descriptions[name], fontsize=9)
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel("time")
    return axes


def plot_forecast(result: ForecastResult, y: Any, *, alpha: float = 0.05, series: int = 0,
                  ax: Any = None):
    r"""Data followed by the forecast mean and its :math:`(1-\alpha)` prediction band.

    Parameters
    ----------
    result : ForecastResult
    y : array_like, Series or DataFrame
        The data the forecast continues (its index sets the x axis).
    alpha : float
    series : int
        Which observed series when y is multivariate.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_forecast
    >>> y = dlm.datasets.load_nile()
    >>> fc = dlm.forecast(dlm.LocalLevel(38.3, 122.9), y, 10)
    >>> ax = plot_forecast(fc, y)
    """
    y_arr = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    index = getattr(y, "index", None)
    if ax is None:
        ax = new_axes(1, None, height=4.0)[0]
    ax.plot(x_values(index, len(y_arr)), y_arr[:, series], "k.-", ms=3, lw=0.6, label="observed")
    xf = x_values(result.index, result.y_mean.shape[0]) if result.index is not None else (
        np.arange(len(y_arr), len(y_arr) + result.y_mean.shape[0]))
    band(ax, xf, result.y_mean[:, series], result.y_cov[:, series, series], alpha, "C1",
         "forecast")
    ax.set_xlabel("time")
    name = getattr(y, "name", None) or (y.columns[series] if hasattr(y, "columns") else None)
    ax.set_ylabel(str(name) if name is not None else "y" if y_arr.shape[1] == 1 else f"y[{series}]")
    ax.set_title("forecast")
    ax.legend(loc="best", fontsize=7)
    return ax


def plot_forecast_draws(draws: Any, y: Any, index: Any = None, *, levels: tuple = (0.5, 0.8, 0.95),
                        ax: Any = None):
    r"""Fan chart of forecast draws (posterior predictive paths): the data, the median and
    nested central intervals.

    Parameters
    ----------
    draws : (S, h) array_like
        S simulated paths of one series over h future periods, e.g. ``sample_forecast``'s
        draws stacked over chains.
    y : (n,) array_like or Series
        The data the forecast continues.
    index : sequence, optional
        x values of the h forecast periods (1, 2, ... after the data by default).
    levels : tuple of float
        Coverage of the bands, innermost first.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_forecast_draws
    >>> y = dlm.datasets.load_nile()
    >>> paths = 800 + 140 * np.random.default_rng(0).standard_normal((500, 10))
    >>> ax = plot_forecast_draws(paths, y, np.arange(1971, 1981))
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 2:
        raise ValueError(f"draws must be (S, h); got shape {draws.shape}")
    y_arr = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
    if ax is None:
        ax = new_axes(1, None, height=4.0)[0]
    ax.plot(x_values(getattr(y, "index", None), len(y_arr)), y_arr, "k.-", ms=3, lw=0.6,
            label="observed")
    h = draws.shape[1]
    xf = np.arange(len(y_arr), len(y_arr) + h) if index is None else x_values(index, h)
    for k, level in enumerate(sorted(levels, reverse=True)):
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        ax.fill_between(xf, lo, hi, color="C1", alpha=0.15 + 0.15 * k, label=f"{100 * level:g}%")
    ax.plot(xf, np.median(draws, axis=0), color="C1", label="median forecast")
    ax.set_xlabel("time")
    ax.set_ylabel(str(getattr(y, "name", None) or "y"))
    ax.set_title("forecast (posterior predictive)")
    ax.legend(loc="best", fontsize=7)
    return ax
