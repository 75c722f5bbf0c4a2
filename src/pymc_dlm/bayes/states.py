r"""Posterior of the latent states and posterior predictive forecasts of a ``DLM`` variable.

For each posterior draw the model's symbolic entries are evaluated at the draw and the NumPy
engine runs on the data: the smoother (D&K 2012, ch. 4), the filter, the simulation smoother
(Durbin and Koopman 2002) or the forecast recursion (section 4.11) followed by a simulated
path.  Results are :class:`xarray.Dataset` objects with ``chain``, ``draw``, the model's time
coordinate and the state names, which ArviZ reads directly.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pytensor.graph.replace import clone_replace

from ..numeric import forecast as np_forecast
from ..numeric import kalman_filter, kalman_smoother
from ..numeric.assemble import at_time, system_arrays
from ..numeric.forecast import extend_index, extend_model
from ..numeric.simulate import _sqrt_psd, simulation_smoother
from ..spec.validate import check_option

__all__ = ["sample_forecast", "sample_states"]


def _dlm_variable(model: pm.Model, var_name: str | None) -> Any:
    dlms = [rv for rv in model.observed_RVs if hasattr(rv.owner.op, "dlm_info")]
    found = dlms if var_name is None else [rv for rv in dlms if rv.name == var_name]
    if len(found) != 1:
        names = [rv.name for rv in dlms]
        raise ValueError(
            f"expected exactly one observed DLM variable{'' if var_name is None else f' named {var_name!r}'}"
            f"; the model has {names}"
            + ("; pass var_name=..." if len(names) > 1 else "")
        )
    return found[0]


def _posterior(idata: Any) -> xr.Dataset:
    """The posterior draws as a Dataset (from a DataTree/InferenceData or a Dataset)."""
    if isinstance(idata, xr.Dataset):
        post = idata
    elif hasattr(idata, "posterior"):
        post = idata.posterior
        post = post.to_dataset() if hasattr(post, "to_dataset") else post
    else:
        raise TypeError(f"idata must hold a posterior group; got {type(idata).__name__}")
    if "chain" not in post.dims or "draw" not in post.dims:
        raise ValueError(f"posterior draws need chain and draw dimensions; got {dict(post.sizes)}")
    return post


def _draws(model: pm.Model, rv: Any, post: xr.Dataset):
    """Yield (chain, draw, numeric StateSpaceModel) for every draw of ``post`` (see _posterior)."""
    info = rv.owner.op.dlm_info
    params = rv.owner.inputs[1 : 1 + len(info.keys)]
    free = list(model.free_RVs)
    inputs = [v.type(name=v.name) for v in free]
    outs = clone_replace(params, replace=dict(zip(free, inputs, strict=True)))
    fn = pytensor.function(inputs, outs, on_unused_input="ignore", mode="FAST_COMPILE")
    missing = [v.name for v in free if v.name not in post]
    if missing:
        raise ValueError(f"the posterior lacks the free variables {missing}")
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    arrays = [np.asarray(post[v.name]) for v in free]
    for c in range(nchain):
        for d in range(ndraw):
            vals = fn(*[a[c, d] for a in arrays])
            yield c, d, info.model.substitute(dict(zip(info.keys, vals, strict=True)))


def _data(model: pm.Model, rv: Any) -> np.ndarray:
    value = model.rvs_to_values[rv]
    data = value.data if hasattr(value, "data") else value.eval()
    return np.asarray(data, dtype=np.float64).reshape(data.shape[0], -1)


def _time_coord(model: pm.Model, rv: Any, n: int) -> Any:
    dims = model.named_vars_to_dims.get(rv.name)
    if dims:
        return dims[0], np.asarray(model.coords[dims[0]])
    return "time", np.arange(n)


def sample_states(
    model: pm.Model,
    idata: Any,
    kind: Literal["smoothed", "filtered", "simulated"] = "smoothed",
    *,
    covariance: Literal["full", "diagonal", "none"] = "full",
    var_name: str | None = None,
    random_seed: Any = None,
) -> xr.Dataset:
    r"""Posterior of the latent states of the model's DLM variable.

    Parameters
    ----------
    model : pymc.Model
        The model holding one observed :class:`~pymc_dlm.DLM` variable (or name it).
    idata : arviz InferenceData / DataTree, or an xarray Dataset of posterior draws
        Draws of the model's free variables (``posterior`` group).
    kind : {"smoothed", "filtered", "simulated"}
        ``"smoothed"``: :math:`E(\alpha_t \mid y, \theta)` and :math:`Var(\alpha_t \mid y,
        \theta)` per draw (D&K eqs. 4.44, 4.69); ``"filtered"``: :math:`a_{t|t}, P_{t|t}`;
        ``"simulated"``: one draw of the whole state path per posterior draw (simulation
        smoother of Durbin and Koopman 2002), i.e. draws from :math:`p(\alpha \mid y)`.
    covariance : {"full", "diagonal", "none"}, default "full"
        What to keep of the state covariances (smoothed/filtered): the full matrices,
        ``8 S n m^2`` bytes for S draws (2 x 1000 draws of a 13-state model with n = 144:
        390 MB); their diagonals ``state_var``, ``8 S n m`` bytes (30 MB); or none.  The
        means take ``8 S n m`` bytes (30 MB there).  One draw's covariances are computed
        and dropped at a time, so the peak memory is that of what is kept.
    var_name : str, optional
        Which DLM variable, when the model has several.
    random_seed : int or numpy Generator, optional
        For ``kind="simulated"``.

    Returns
    -------
    xarray.Dataset
        ``state_mean`` (chain, draw, time, state) and ``state_cov`` (chain, draw, time, state,
        state_bis) or ``state_var`` (chain, draw, time, state) for smoothed/filtered;
        ``states`` (chain, draw, time, state) for simulated.

    Examples
    --------
    >>> import numpy as np, pymc as pm, xarray as xr, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> with pm.Model(coords={"year": y.index}) as m:
    ...     s = pm.HalfNormal("s", 100.0)
    ...     _ = dlm.DLM("flow", dlm.LocalLevel(s, 120.0), observed=y, dims="year")
    >>> post = xr.Dataset({"s": (("chain", "draw"), [[38.0, 40.0]])})
    >>> sample_states(m, post).state_mean.sizes["draw"]
    2
    """
    check_option("kind", kind, ("smoothed", "filtered", "simulated"))
    check_option("covariance", covariance, ("full", "diagonal", "none"))
    rv = _dlm_variable(model, var_name)
    info = rv.owner.op.dlm_info
    y = _data(model, rv)
    tname, tvals = _time_coord(model, rv, y.shape[0])
    rng = np.random.default_rng(random_seed)
    post = _posterior(idata)
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    n, m = y.shape[0], info.model.m
    mean = np.empty((nchain, ndraw, n, m))
    keep = "none" if kind == "simulated" else covariance
    cov = {"full": lambda: np.empty((nchain, ndraw, n, m, m)),
           "diagonal": lambda: np.empty((nchain, ndraw, n, m)), "none": lambda: None}[keep]()
    for c, d, num in _draws(model, rv, post):
        if kind == "simulated":
            mean[c, d] = simulation_smoother(num, y, rng)
            continue
        if kind == "smoothed":
            s = kalman_smoother(num, y)
            mean[c, d], V = s.a_smooth, s.V
        else:
            f = kalman_filter(num, y)
            mean[c, d], V = f.a_filt, f.P_filt
        if keep == "full":
            cov[c, d] = V
        elif keep == "diagonal":
            cov[c, d] = np.diagonal(V, axis1=1, axis2=2)
    coords = {"chain": np.asarray(post["chain"]), "draw": np.asarray(post["draw"]), tname: tvals,
              "state": list(info.model.state_names)}
    dims = ("chain", "draw", tname, "state")
    if kind == "simulated":
        return xr.Dataset({"states": (dims, mean)}, coords=coords)
    if keep == "none":
        return xr.Dataset({"state_mean": (dims, mean)}, coords=coords)
    if keep == "diagonal":
        return xr.Dataset({"state_mean": (dims, mean), "state_var": (dims, cov)}, coords=coords)
    coords["state_bis"] = list(info.model.state_names)
    return xr.Dataset({"state_mean": (dims, mean), "state_cov": (dims + ("state_bis",), cov)},
                      coords=coords)


def sample_forecast(
    model: pm.Model,
    idata: Any,
    steps: int,
    *,
    exog: Any = None,
    future: dict | None = None,
    var_name: str | None = None,
    random_seed: Any = None,
) -> xr.Dataset:
    r"""Posterior predictive forecasts ``steps`` periods beyond the data.

    For each posterior draw: the filter gives :math:`\alpha_{n+1} \mid y \sim N(a_{n+1},
    P_{n+1})`; a state path and observations are simulated forward from a draw of it.  The
    draws therefore carry both parameter and future uncertainty (a fan chart).

    A model with a ``Regression`` needs the regressors' future values, either as ``exog``
    (each draw's model is continued by
    :func:`~pymc_dlm.numeric.forecast.extend_model`), or, the PyMC way, with the regressors
    in ``pm.Data`` set to the data and the horizon before the call::

        with model:
            pm.set_data({"X": np.vstack([X, X_future])})
        dlm.sample_forecast(model, idata, steps)

    Parameters
    ----------
    model : pymc.Model
    idata : posterior draws (as for :func:`sample_states`)
    steps : int
        Forecast horizon (>= 1).
    exog : (steps, k) array_like, pandas DataFrame, or dict of them, optional
        Future regressors; a dict ``{scenario: exog}`` adds a ``scenario`` dimension.
    future : dict, optional
        Future values of other time-varying matrices, ``{"H": (steps, p, p), ...}``.
    var_name : str, optional
    random_seed : int or numpy Generator, optional

    Returns
    -------
    xarray.Dataset
        ``<var_name>`` (chain, draw, time[, series]) with the time coordinate extended (dates
        with a frequency, or integers); ``forecast_mean`` and ``forecast_var``, the forecast
        mean and variance of each draw given that draw's parameters.  With scenarios every
        variable has a leading ``scenario`` dimension.

    Examples
    --------
    >>> import numpy as np, pymc as pm, xarray as xr, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> with pm.Model(coords={"year": y.index}) as m:
    ...     s = pm.HalfNormal("s", 100.0)
    ...     _ = dlm.DLM("flow", dlm.LocalLevel(s, 120.0), observed=y, dims="year")
    >>> post = xr.Dataset({"s": (("chain", "draw"), [[38.0, 40.0]])})
    >>> fc = sample_forecast(m, post, 5, random_seed=1)
    >>> fc["flow"].sizes["year"], int(fc["year"][0])
    (5, 1971)
    """
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    steps = int(steps)
    rv = _dlm_variable(model, var_name)
    info = rv.owner.op.dlm_info
    y = _data(model, rv)
    tname, tvals = _time_coord(model, rv, y.shape[0])
    import pandas as pd

    fidx = extend_index(pd.Index(tvals), steps)
    coord = np.arange(y.shape[0], y.shape[0] + steps) if fidx is None else np.asarray(fidx)
    rng = np.random.default_rng(random_seed)
    post = _posterior(idata)
    if isinstance(exog, dict):
        if not exog:
            raise ValueError("exog= as a dict needs at least one scenario")
        parts = [_forecast_draws(model, rv, post, y, steps, x, future, fidx, rng, tname, coord)
                 for x in exog.values()]
        return xr.concat(parts, dim=pd.Index([str(k) for k in exog], name="scenario"))
    return _forecast_draws(model, rv, post, y, steps, exog, future, fidx, rng, tname, coord)


def _forecast_draws(model, rv, post, y, steps, exog, future, fidx, rng, tname, coord):
    info = rv.owner.op.dlm_info
    n, p = y.shape
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    out = np.empty((nchain, ndraw, steps, p))
    mean = np.empty((nchain, ndraw, steps, p))
    var = np.empty((nchain, ndraw, steps, p))
    for c, d, num in _draws(model, rv, post):
        ext = extend_model(num, n, steps, exog=exog, future=future, index=fidx)
        fc = np_forecast(ext, y, steps)
        mean[c, d] = fc.y_mean
        var[c, d] = np.diagonal(fc.y_cov, axis1=1, axis2=2)
        a = fc.a[0] + _sqrt_psd(fc.P[0]) @ rng.standard_normal(num.m)
        sys = system_arrays(ext)
        for h in range(steps):
            Z, d_, H, T, c_, R, Q = (at_time(A, n + h) for A in sys[:7])
            out[c, d, h] = Z @ a + d_ + _sqrt_psd(H) @ rng.standard_normal(p)
            a = T @ a + c_ + R @ (_sqrt_psd(Q) @ rng.standard_normal(num.r))
    coords = {"chain": np.asarray(post["chain"]), "draw": np.asarray(post["draw"]), tname: coord}
    dims = ("chain", "draw", tname)
    if info.squeeze:
        return xr.Dataset({rv.name: (dims, out[..., 0]), "forecast_mean": (dims, mean[..., 0]),
                           "forecast_var": (dims, var[..., 0])}, coords=coords)
    dims = dims + ("series",)
    return xr.Dataset({rv.name: (dims, out), "forecast_mean": (dims, mean),
                       "forecast_var": (dims, var)}, coords=coords)
