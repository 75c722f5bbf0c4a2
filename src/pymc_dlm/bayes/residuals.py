r"""One-step-ahead predictions, prediction errors and standardized residuals per posterior draw.

:func:`add_residuals` puts them in the DataTree as a group ``residuals``, with posterior
draws of the residual statistics of :mod:`pymc_dlm.diagnostics` (Ljung-Box :math:`Q(k)`,
Jarque-Bera, :math:`H(h)`), so that ``az.summary(idata, group="residuals")`` reports them
and ArviZ plots take them like any variable.  :func:`residual_dataset` builds the same group
from arrays (the MLE/EM results' ``to_datatree`` uses it with one draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor
from pytensor.graph.replace import clone_replace

from ..numeric.check_groups import GROUPS, align_check_groups
from ..numeric.residual_stats import residual_dataset
from ..symbolic import system_tensors
from .predictive import one_step_moments
from .states import _data, _dlm_variable, _posterior, _time_coord

__all__ = ["add_residuals", "one_step_draws", "residual_dataset"]


def _one_step_function(model: pm.Model, rv: Any):
    """fn(*free values) -> (yhat, F) of the steps after the diffuse period (cached per model)."""
    cache = rv.owner.op.__dict__.setdefault("_dlm_one_step_fns", {})
    free = list(model.free_RVs)
    key = (id(model), tuple(id(v) for v in free))
    if key not in cache:
        info = rv.owner.op.dlm_info
        params = rv.owner.inputs[1: 1 + len(info.keys)]
        inputs = [v.type(name=v.name) for v in free]
        y = pytensor.tensor.matrix("y", dtype="float64")
        outs = clone_replace(params, replace=dict(zip(free, inputs, strict=True)))
        sys = system_tensors(info.model, dict(zip(info.keys, outs, strict=True)))
        yhat, F, _ = one_step_moments(sys, y, info.plan)
        # the default (numba) backend: ~50 us a draw, against ~0.5 ms in FAST_COMPILE; its
        # compile (~20 s the first time a model structure is seen) is cached on disk
        cache[key] = pytensor.function([*inputs, y], [yhat, F], on_unused_input="ignore")
    return cache[key], free


def one_step_draws(model: pm.Model, idata: Any, *, var_name: str | None = None):
    r"""One-step-ahead predictive moments at every posterior draw.

    Parameters
    ----------
    model : pymc.Model
        With one observed :class:`~pymc_dlm.DLM` variable (or name it with ``var_name``).
    idata : DataTree / InferenceData with a posterior group, or a Dataset of draws

    Returns
    -------
    y : (n, p) ndarray
        The data (NaN missing).
    yhat : (chain, draw, n, p) ndarray
        :math:`Z_t a_t + d_t`; NaN in the d diffuse steps.
    F : (chain, draw, n, p, p) ndarray
        :math:`Z_t P_t Z_t' + H_t`; NaN in the diffuse steps.
    nd : int
        d, the number of steps of the exact diffuse period.
    """
    rv = _dlm_variable(model, var_name)
    info = rv.owner.op.dlm_info
    post = _posterior(idata)
    fn, free = _one_step_function(model, rv)
    missing = [v.name for v in free if v.name not in post]
    if missing:
        raise ValueError(f"the posterior lacks the free variables {missing}")
    y = _data(model, rv)
    n, p, nd = y.shape[0], info.p, info.plan.n_steps
    nc, ndr = post.sizes["chain"], post.sizes["draw"]
    yhat = np.full((nc, ndr, n, p), np.nan)
    F = np.full((nc, ndr, n, p, p), np.nan)
    arrays = [np.asarray(post[v.name], dtype=v.type.dtype) for v in free]
    for c in range(nc):
        for d in range(ndr):
            yhat[c, d, nd:], F[c, d, nd:] = fn(*[a[c, d] for a in arrays], y)
    return y, yhat, F, nd


def add_residuals(idata: Any, model: pm.Model | None = None, *, var_name: str | None = None,
                  lags: Any = 10, h: int | None = None) -> Any:
    r"""Add the ``residuals`` group (one-step predictions, v_t, F_t, standardized residuals and
    their test statistics, per posterior draw) to ``idata``.

    For each draw :math:`\theta^{(s)}` the Kalman filter gives :math:`\hat y_t = Z_t a_t + d_t`,
    :math:`v_t = y_t - \hat y_t` and :math:`F_t` (D&K 2012, eqs. 4.21-4.24); the standardized
    residual is :math:`L_t^{-1} v_t` with :math:`F_t = L_t L_t'` over the observed rows
    (section 7.5; :math:`v_t/\sqrt{F_t}` for p = 1).  NaN in the diffuse steps (no finite
    :math:`F_t`) and where y is missing (the prediction and F are still given).  The statistics
    are those of :mod:`pymc_dlm.diagnostics` at each draw: ``ljung_box`` :math:`Q(k)` for k in
    ``lags``, ``jarque_bera``, ``heteroskedasticity`` :math:`H(h)`.

    The observed, predictive and pointwise log-likelihood groups of the DLM variable are
    then lined up for ArviZ (:func:`pymc_dlm.numeric.check_groups.align_check_groups`), so
    that ``az.loo``, ``az.loo_pit``, ``plot_loo_pit`` and the PPC plots compare each
    observation with its own proper one-step predictive:

    - ``observed_data``, ``posterior_predictive``, ``prior_predictive`` and
      ``log_likelihood`` keep the steps after the d diffuse steps (where the one-step
      predictive is improper) that have an observed value, with the model's time coordinate
      (``pm.compute_log_likelihood``'s axis ``<name>_dim_0`` is relabelled);
    - a wholly missing step is left out of all four (a NaN observation has nothing to check,
      and its log-likelihood term is 0 in every draw); the terms left sum to the model's
      log-likelihood exactly, the diffuse steps' constants being in the first kept entry;
    - with p > 1, one pointwise term per observed value,
      :math:`\log p(y_{t,i} \mid y_{t,1..i-1}, y_{1:t-1})` (the chain rule within a step),
      laid out (time, series), or, where a kept step is partly missing, on one stacked
      dimension ``<name>_obs`` with coordinates time and series.

    The model's log-probability and the ``residuals`` group keep all n steps (NaN at steps
    1..d and in the prediction errors of missing values).  A second call changes nothing.

    Parameters
    ----------
    idata : arviz DataTree
        With a posterior group; changed in place and returned.
    model : pymc.Model, optional
        Default: the model in context.
    var_name : str, optional
        Which DLM variable, when the model has several.
    lags : int or sequence of int, default 10
    h : int, optional

    Returns
    -------
    DataTree
        ``idata`` with ``idata["residuals"]``: dims (chain, draw, time[, series]) with the
        model's coordinates (the DLM variable's dims).

    Examples
    --------
    >>> import numpy as np, pymc as pm, pymc_dlm as dlm
    >>> from arviz_base import from_dict
    >>> y = dlm.datasets.load_nile()
    >>> with pm.Model(coords={"year": y.index}) as m:
    ...     s = pm.HalfNormal("s", 100.0)
    ...     _ = dlm.DLM("flow", dlm.LocalLevel(s, 122.9), observed=y, dims="year")
    >>> idata = add_residuals(from_dict({"posterior": {"s": np.full((1, 2), 38.3)}}), m)
    >>> r = idata["residuals"]
    >>> r["standardized_residual"].dims, round(float(r["standardized_residual"][0, 0, 1]), 3)
    (('chain', 'draw', 'year'), 0.225)
    """
    if not hasattr(idata, "children"):
        raise TypeError(f"idata must be a DataTree with a posterior group (arviz.from_dict, "
                        f"pm.sample); got {type(idata).__name__}")
    model = pm.modelcontext(model)
    rv = _dlm_variable(model, var_name)
    info = rv.owner.op.dlm_info
    y, yhat, F, nd = one_step_draws(model, idata, var_name=rv.name)
    tname, tvals = _time_coord(model, rv, y.shape[0])
    dims = model.named_vars_to_dims.get(rv.name) or ()
    series = None
    if not info.squeeze:
        sname = dims[1] if len(dims) > 1 else "series"
        svals = np.asarray(model.coords[sname]) if sname in model.coords and model.coords[sname] \
            is not None else np.arange(info.p)
        series = (sname, svals)
    post = _posterior(idata)
    ds = residual_dataset(y, yhat, F, time=(tname, tvals), series=series, lags=lags, h=h,
                          sample={"chain": np.asarray(post["chain"]), "draw": np.asarray(post["draw"])})
    idata["residuals"] = ds
    groups = {g: idata[g].to_dataset() for g in (*GROUPS, "log_likelihood") if g in idata.children}
    for group, aligned in align_check_groups(groups, rv.name, y, nd, time=(tname, tvals),
                                             series=series, yhat=yhat, F=F).items():
        idata[group] = aligned
    return idata
