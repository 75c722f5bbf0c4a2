"""Posterior draws of impulse responses and variance decompositions (for bands)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from ..numeric.irf import fevd, impulse_responses
from .states import _dlm_variable, _draws, _posterior

__all__ = ["sample_impulse_responses"]


def sample_impulse_responses(
    model: pm.Model,
    idata: Any,
    steps: int,
    *,
    orthogonalized: bool = False,
    var_name: str | None = None,
) -> xr.Dataset:
    r"""Impulse responses and the FEVD of the model's DLM variable, one per posterior draw.

    Each draw's numeric model goes through :func:`pymc_dlm.impulse_responses` and
    :func:`pymc_dlm.fevd`; quantiles over ``(chain, draw)`` give posterior bands.

    Parameters
    ----------
    model : pymc.Model
        The model holding one observed :class:`~pymc_dlm.DLM` variable (or name it) whose
        specification has constant Z, T, R, Q.
    idata : arviz InferenceData / DataTree, or an xarray Dataset of posterior draws
        Draws of the model's free variables.
    steps : int
        Last horizon of the responses (h = 0..steps); the FEVD covers h = 1..steps + 1.
    orthogonalized : bool
        Cholesky shocks for ``irf`` (``fevd`` always uses them).
    var_name : str, optional
        Which DLM variable, when the model has several.

    Returns
    -------
    xarray.Dataset
        ``irf`` (chain, draw, horizon, series, shock), ``state_irf`` (chain, draw, horizon,
        state, shock) and ``fevd`` (chain, draw, horizon, series, shock), horizon 0..steps
        (the FEVD's horizon h holds the (h + 1)-step decomposition).

    Examples
    --------
    >>> import numpy as np, pymc as pm, xarray as xr, pymc_dlm as dlm
    >>> with pm.Model() as m:
    ...     a = pm.Uniform("a", -1, 1)
    ...     _ = dlm.DLM("y", dlm.VAR([[[a]]], [[1.0]]), observed=np.zeros((5, 1)))
    >>> post = xr.Dataset({"a": (("chain", "draw"), [[0.5, -0.5]])})
    >>> sample_impulse_responses(m, post, 2).irf.values[0, :, :, 0, 0].tolist()
    [[1.0, 0.5, 0.25], [1.0, -0.5, 0.25]]
    """
    rv = _dlm_variable(model, var_name)
    spec = rv.owner.op.dlm_info.model
    post = _posterior(idata)
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    h = steps + 1
    irf = np.empty((nchain, ndraw, h, spec.p, spec.r))
    sirf = np.empty((nchain, ndraw, h, spec.m, spec.r))
    dec = np.empty((nchain, ndraw, h, spec.p, spec.r))
    for c, d, num in _draws(model, rv, post):
        res = impulse_responses(num, steps, orthogonalized=orthogonalized)
        irf[c, d], sirf[c, d] = res.observed, res.states
        dec[c, d] = fevd(num, h)
    dims = model.named_vars_to_dims.get(rv.name)
    series = (list(model.coords[dims[1]]) if dims and len(dims) > 1
              else [f"y{i}" for i in range(spec.p)])
    coords = {"chain": np.asarray(post["chain"]), "draw": np.asarray(post["draw"]),
              "horizon": np.arange(h), "series": series, "state": list(spec.state_names),
              "shock": np.arange(spec.r)}
    base = ("chain", "draw", "horizon")
    return xr.Dataset({
        "irf": (base + ("series", "shock"), irf),
        "state_irf": (base + ("state", "shock"), sirf),
        "fevd": (base + ("series", "shock"), dec),
    }, coords=coords)
