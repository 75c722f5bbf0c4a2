"""Small helpers shared by the plots: x values from an index, bands, z quantiles."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["band", "new_axes", "x_values", "z_value"]


def x_values(index: Any, n: int) -> np.ndarray:
    """The pandas index as plottable values (dates stay dates), else 0..n-1."""
    if index is None:
        return np.arange(n)
    if hasattr(index, "to_timestamp"):  # PeriodIndex
        return np.asarray(index.to_timestamp())
    return np.asarray(index)


def z_value(alpha: float) -> float:
    """Two-sided standard normal quantile for a (1 - alpha) band."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def band(ax: Any, x: np.ndarray, mean: np.ndarray, var: np.ndarray, alpha: float, colour: str,
         label: str) -> None:
    """A mean line with a (1 - alpha) normal band."""
    half = z_value(alpha) * np.sqrt(np.maximum(var, 0.0))
    ax.plot(x, mean, color=colour, label=label)
    ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.2,
                    label=f"{label}, {100 * (1 - alpha):g}% band")


def new_axes(k: int, axes: Any = None, width: float = 9.0, height: float = 2.6):
    """``k`` stacked axes (or the given ones, checked)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(k, 1, figsize=(width, height * k), sharex=True, squeeze=False)
        return list(axes[:, 0])
    axes = list(np.ravel(axes))
    if len(axes) != k:
        raise ValueError(f"this plot needs {k} axes; got {len(axes)}")
    return axes
