"""Auxiliary residuals over time: candidate outliers and structural breaks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import new_axes, x_values, z_value

__all__ = ["plot_auxiliary_residuals"]


def plot_auxiliary_residuals(frame: Any, *, alpha: float = 0.01, axes: Any = None):
    r"""One panel per auxiliary residual (a column of ``frame``), with :math:`\pm z_{1-\alpha/2}`
    lines and the periods beyond them labelled, the largest of a run only (D&K 2012,
    section 2.12, fig. 2.7).

    Parameters
    ----------
    frame : pandas.DataFrame
        From :meth:`~pymc_dlm.estimation.report.FitStatistics.auxiliary_residuals`; columns
        that are all NaN (disturbances with zero variance) are left out.
    alpha : float
        Two-sided level of the flag lines (0.01: :math:`\pm 2.58`).
    axes : sequence of matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Axes

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> res = dlm.fit("level", dlm.datasets.load_nile())
    >>> len(plot_auxiliary_residuals(res.auxiliary_residuals()))
    2
    """
    cols = [c for c in frame.columns if frame[c].notna().any()]
    axes = new_axes(len(cols), axes)
    x = x_values(frame.index, len(frame))
    z = z_value(alpha)
    for ax, col in zip(axes, cols, strict=True):
        vals = frame[col].to_numpy(dtype=float)
        ax.vlines(x, 0.0, np.nan_to_num(vals), color="C0", lw=1.0)
        ax.axhline(z, color="C3", ls="--", lw=0.8)
        ax.axhline(-z, color="C3", ls="--", lw=0.8)
        size = np.abs(np.nan_to_num(vals))
        flagged = np.flatnonzero(size > z)
        for i in flagged:  # label the largest of neighbouring flags only (a run is one event)
            near = flagged[np.abs(flagged - i) <= 2]
            if size[i] < size[near].max():
                continue
            ax.annotate(str(frame.index[i].date() if hasattr(frame.index[i], "date")
                            else frame.index[i]), (x[i], vals[i]), fontsize=8,
                        xytext=(3, 0), textcoords="offset points")
        ax.set_ylabel(str(col))
    axes[0].set_title(f"auxiliary residuals (standardized smoothed disturbances), "
                      f"lines at ±{z:.2f}")
    return axes
