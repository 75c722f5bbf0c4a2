r"""Line up a DLM fit's observed, predictive and pointwise log-likelihood groups for ArviZ.

ArviZ's checks (``az.loo``, ``az.loo_pit``, ``plot_ppc_pit``, ``plot_loo_pit``, ...) pair
each observed value with its replicates and its pointwise log-likelihood by position, and
have no notion of a missing value: a NaN observation gets PIT 0, and a step whose
log-likelihood is 0 in every draw is a constant column that PSIS cannot smooth.  One rule
serves the Bayesian fits (:func:`pymc_dlm.add_residuals`) and the point estimates
(``res.to_datatree()``):

- **which steps**: those after the exact diffuse period (d steps, where the one-step
  predictive is improper) with at least one observed value;
- **which values**: for p = 1 (a variable with a time axis only) the steps above, along the
  time dimension.  For p > 1, every observed value :math:`y_{t,i}` of those steps, with one
  pointwise term each, :math:`\log p(y_{t,i} \mid y_{t,1..i-1}, y_{1:t-1})`
  (:func:`~pymc_dlm.numeric.residual_stats.entry_loglik`, the chain rule within a step:
  the terms of a step sum to its log-likelihood term).  The values keep the (time, series)
  layout when every kept step is wholly observed, and otherwise sit on one stacked dimension
  ``<name>_obs`` whose coordinates ``time`` and ``series`` (the model's names) say which
  value each entry is (PyMC's imputation stores the observed part of a partly missing
  variable in the same way, flattened);
- **the sum**: the terms of the diffuse steps (constants for the usual models) are in the
  first kept entry (:class:`pymc_dlm.DLM` folds them into the first observed step after the
  diffuse period), a wholly missing step's term is exactly 0, so the kept terms sum to the
  model's log-likelihood, exactly.

The model, its log-probability and the ``residuals`` group keep all n steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .residual_stats import entry_loglik

__all__ = ["checked_steps", "align_check_groups"]

GROUPS = ("observed_data", "posterior_predictive", "prior_predictive")


def checked_steps(y: np.ndarray, nd: int) -> np.ndarray:
    """The 0-based steps that carry a check: after the d diffuse steps, some row observed.

    Parameters
    ----------
    y : (n, p) ndarray
        NaN marks missing values.
    nd : int
        d, the number of steps of the exact diffuse period.

    Returns
    -------
    (k,) int ndarray
        Increasing; step min(d, n - 1) alone when no later step is observed.

    Examples
    --------
    >>> import numpy as np
    >>> checked_steps(np.array([[1.0], [np.nan], [2.0], [3.0]]), 1).tolist()
    [2, 3]
    """
    n = y.shape[0]
    k = min(nd, n - 1)
    steps = np.flatnonzero(~np.isnan(y[k:]).all(axis=1)) + k
    return steps if steps.size else np.array([k])


def _time_dim(da: Any, n: int, ndim: int) -> str | None:
    """The time axis of a variable not yet lined up: ``ndim`` axes besides chain and draw,
    the first of length n."""
    dims = [dim for dim in da.dims if dim not in ("chain", "draw")]
    return dims[0] if len(dims) == ndim and da.sizes[dims[0]] == n else None


def _select(da: Any, tdim: str, steps: np.ndarray, seen: np.ndarray, *, name: str,
            time: tuple, series: tuple | None, stacked: bool) -> Any:
    """The values of ``da`` at the kept steps (and observed rows), relabelled."""
    import xarray as xr

    tname, tvals = time
    if series is None:
        return (da.isel({tdim: steps}).rename({tdim: tname})
                .assign_coords({tname: np.asarray(tvals)[steps]}))
    sname, svals = series
    sdim = da.dims[da.dims.index(tdim) + 1]
    if not stacked:
        out = da.isel({tdim: steps}).rename({tdim: tname, sdim: sname})
        return out.assign_coords({tname: np.asarray(tvals)[steps], sname: np.asarray(svals)})
    ti, si = np.nonzero(seen[steps])
    t_idx = steps[ti]
    lead = [dim for dim in da.dims if dim not in (tdim, sdim)]
    arr = da.transpose(*lead, tdim, sdim).values[..., t_idx, si]
    odim = f"{name}_obs"
    coords = {dim: da[dim].values for dim in lead if dim in da.coords}
    coords.update({tname: (odim, np.asarray(tvals)[t_idx]), sname: (odim, np.asarray(svals)[si])})
    return xr.DataArray(arr, dims=(*lead, odim), coords=coords, name=da.name)


def align_check_groups(groups: dict, name: str, y: np.ndarray, nd: int, *, time: tuple,
                       series: tuple | None = None, yhat: np.ndarray | None = None,
                       F: np.ndarray | None = None) -> dict:
    r"""The observed, predictive and log-likelihood datasets of variable ``name``, lined up.

    See the module docstring for the rule.  A group is changed only where ``name`` still has
    its full time axis (n steps; n - min(d, n - 1) entries in ``log_likelihood``) and no other
    variable of the group shares that axis, so a second call changes nothing.

    Parameters
    ----------
    groups : dict of str to xarray.Dataset
        Any of ``observed_data``, ``posterior_predictive``, ``prior_predictive`` (the time
        axis first after chain and draw, then the series axis when p > 1) and
        ``log_likelihood`` (one entry per step from step min(d, n - 1) on, the diffuse
        steps' terms in the first step with an observed value).
    name : str
        The DLM variable.
    y : (n, p) ndarray
        The data, NaN missing.
    nd : int
        d, the steps of the exact diffuse period.
    time : (name, values)
        The time dimension and its n coordinates.
    series : (name, values), optional
        The series dimension and its p coordinates; None for a variable with a time axis
        only (p = 1).
    yhat : (chain, draw, n, p) ndarray, optional
        One-step predictions, needed with ``series`` for the log-likelihood's entries.
    F : (chain, draw, n, p, p) ndarray, optional
        Their covariances.

    Returns
    -------
    dict of str to xarray.Dataset
        The groups that changed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> y = np.array([[5.0], [np.nan], [6.0], [7.0]])
    >>> obs = xr.Dataset({"y": ("y_dim_0", y[:, 0])})
    >>> ll = xr.Dataset({"y": (("chain", "draw", "y_dim_0"), [[[0.0, -3.0, -1.0]]])})
    >>> out = align_check_groups({"observed_data": obs, "log_likelihood": ll}, "y", y, 1,
    ...                          time=("time", np.arange(4)))
    >>> out["observed_data"]["y"].time.values.tolist(), out["log_likelihood"]["y"].values.tolist()
    ([2, 3], [[[-3.0, -1.0]]])
    """
    n = y.shape[0]
    k = min(nd, n - 1)
    steps = checked_steps(y, nd)
    seen = ~np.isnan(y)
    stacked = series is not None and not seen[steps].all()
    out = {}
    for group in (*GROUPS, "log_likelihood"):
        ds = groups.get(group)
        if ds is None or name not in ds:
            continue
        ll = group == "log_likelihood"
        tdim = _time_dim(ds[name], n - k if ll else n, 1 if ll or series is None else 2)
        if tdim is None or any(tdim in ds[v].dims for v in ds.data_vars if v != name):
            continue
        if not ll:
            da = _select(ds[name], tdim, steps, seen, name=name, time=time, series=series,
                         stacked=stacked)
        elif series is None:
            da = _select(ds[name], tdim, steps - k, seen, name=name, time=time, series=None,
                         stacked=False).assign_coords({time[0]: np.asarray(time[1])[steps]})
        else:
            if yhat is None or F is None or nd >= n:
                continue
            da = _select(_entries(ds[name], tdim, y, yhat, F, steps, k), "_t", steps, seen,
                         name=name, time=time, series=series, stacked=stacked)
        rest = ds.drop_vars(name)
        unused = [dim for dim in ds[name].dims if dim not in ("chain", "draw")
                  and not any(dim in rest[v].dims for v in rest.data_vars)]
        out[group] = rest.drop_dims(unused, errors="ignore").assign({name: da})
    return out


def _entries(ll: Any, tdim: str, y: np.ndarray, yhat: np.ndarray, F: np.ndarray,
             steps: np.ndarray, k: int) -> Any:
    """(chain, draw, time, series): the chain-rule terms, the diffuse block in the first."""
    import xarray as xr

    sel = np.arange(k, y.shape[0])
    E = np.full(yhat.shape, np.nan)
    E[..., sel, :] = entry_loglik(y[None, None, sel] - yhat[..., sel, :], F[..., sel, :, :])
    first = steps[0]
    rows = np.flatnonzero(~np.isnan(y[first]))
    if rows.size:  # the step's term less its entries: the diffuse steps' terms
        step_term = ll.transpose("chain", "draw", tdim).values[..., first - k]
        E[..., first, rows[0]] += step_term - np.nansum(E[..., first, :], axis=-1)
    coords = {dim: ll[dim].values for dim in ("chain", "draw") if dim in ll.coords}
    return xr.DataArray(E, dims=("chain", "draw", "_t", "_s"), coords=coords)
