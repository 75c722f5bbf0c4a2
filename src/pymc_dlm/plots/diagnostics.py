"""Residual diagnostics in one figure: residuals over time, histogram, QQ-plot, ACF."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ..diagnostics import acf, standardized_residuals
from ..numeric.results import FilterResult
from ._common import new_axes, x_values

__all__ = ["plot_diagnostics"]


def plot_diagnostics(result: FilterResult, *, series: int = 0, max_lag: int = 10,
                     alpha: float = 0.05, fig: Any = None):
    r"""Standardized one-step prediction errors: the four classic checks (as statsmodels'
    ``plot_diagnostics`` and KFAS' residual plots).

    Panels: residuals over time; histogram with the N(0, 1) density; normal QQ-plot; ACF to
    ``max_lag`` with :math:`\pm z_{1-\alpha/2}/\sqrt{n}` bands.  Diffuse, missing and singular
    steps (NaN residuals) are left out.

    Parameters
    ----------
    result : FilterResult
    series : int
        Which observed series when y is multivariate.
    max_lag : int
    alpha : float
    fig : matplotlib Figure, optional

    Returns
    -------
    (2, 2) ndarray of matplotlib Axes

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_diagnostics
    >>> f = dlm.kalman_filter(dlm.LocalLevel(38.3, 122.9), dlm.datasets.load_nile())
    >>> axes = plot_diagnostics(f)
    """
    import matplotlib.pyplot as plt

    e = standardized_residuals(result)[:, series]
    ok = np.isfinite(e)
    if fig is None:
        fig = plt.figure(figsize=(10, 6.5))
    axes = np.array(fig.subplots(2, 2, squeeze=False))
    x = x_values(result.index, result.n)
    ax = axes[0, 0]
    ax.plot(x[ok], e[ok], color="C0", lw=0.8, label="standardized residual")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_title("standardized residuals")
    ax.set_xlabel("time")
    ax.legend(loc="best", fontsize=7)
    ax = axes[0, 1]
    ax.hist(e[ok], bins="auto", density=True, color="C0", alpha=0.5, label="residuals")
    grid = np.linspace(min(-4.0, e[ok].min()), max(4.0, e[ok].max()), 200)
    ax.plot(grid, stats.norm.pdf(grid), "k", label="N(0, 1)")
    ax.set_title("histogram")
    ax.set_xlabel("standardized residual")
    ax.legend(loc="best", fontsize=7)
    ax = axes[1, 0]
    (osm, osr), (slope, intercept, _) = stats.probplot(e[ok], dist="norm")
    ax.plot(osm, osr, ".", color="C0", label="residuals")
    ax.plot(osm, osm, "k", lw=0.8, label="45 degree line")
    ax.set_title("normal QQ-plot")
    ax.set_xlabel("theoretical quantile")
    ax.set_ylabel("sample quantile")
    ax.legend(loc="best", fontsize=7)
    ax = axes[1, 1]
    r = acf(e, max_lag)
    lags = np.arange(1, max_lag + 1)
    ax.vlines(lags, 0.0, r[1:], color="C0", label="ACF")
    bound = stats.norm.ppf(1 - alpha / 2) / np.sqrt(ok.sum())
    ax.axhspan(-bound, bound, color="C0", alpha=0.15, label=f"{100 * (1 - alpha):g}% band")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_title("autocorrelation")
    ax.set_xlabel("lag")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return axes
