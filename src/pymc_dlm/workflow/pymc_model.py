"""``pymc_dlm.bayesian``: a structural model with priors as a PyMC model, in one call."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np
import pymc as pm
from pymc.distributions.distribution import SymbolicRandomVariable
from pytensor.tensor.random.op import RandomVariable

from ..bayes import DLM
from ..spec.model import StateSpaceModel
from ..numeric.calendar import index_of, regularize
from ..spec.validate import check_y

__all__ = ["bayesian"]


def _register(model: pm.Model, name: str, prior: Any) -> Any:
    """A prior given as a function of the name, an unnamed distribution, or a fixed value."""
    if callable(prior) and not hasattr(prior, "owner"):
        return prior(name)
    owner = getattr(prior, "owner", None)
    if owner is not None and isinstance(owner.op, RandomVariable | SymbolicRandomVariable):
        return model.register_rv(prior, name)
    return prior  # a number or an expression of existing variables


def bayesian(
    builder: Callable[..., StateSpaceModel],
    y: Any,
    *,
    priors: dict[str, Any] | None = None,
    name: str = "y",
    **fixed: Any,
) -> pm.Model:
    r"""A PyMC model with a :class:`~pymc_dlm.DLM` likelihood for y, built in one call.

    Every argument of ``builder`` named ``sigma...`` gets a prior: the one given in
    ``priors`` or, by default, ``HalfNormal(sigma=s)`` with s the standard deviation of y
    (weakly informative on the data's scale).  Other arguments come from ``fixed`` (e.g.
    ``period=12``) or from ``priors``.

    Parameters
    ----------
    builder : callable
        Returns a StateSpaceModel from keyword arguments, e.g. :func:`pymc_dlm.LocalLevel`
        or ``lambda sigma_level, sigma_obs, sigma_seasonal: ...``.
    y : (n,) or (n, p) array_like, Series or DataFrame
        Observations (NaN = missing).  A pandas index becomes the ``time`` coordinate.
    priors : dict, optional
        Argument name to prior: an unnamed distribution (``pm.HalfNormal.dist(50.0)``), a
        function ``name -> random variable``, or a number/expression (kept fixed).  The
        random variables are named after the arguments.
    name : str, default "y"
        Name of the observed variable.
    **fixed
        Further arguments of ``builder``.

    Returns
    -------
    pymc.Model
        With coordinates ``time`` (and ``series`` for several series).

    Examples
    --------
    >>> import pymc as pm, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> m = dlm.bayesian(dlm.LocalLevel, y, priors={"sigma_level": pm.HalfNormal.dist(50.0)})
    >>> sorted(v.name for v in m.free_RVs), list(m.coords)
    (['sigma_level', 'sigma_obs'], ['time'])
    """
    priors = dict(priors or {})
    sig = inspect.signature(builder)
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    known = {p.name for p in params}
    unknown = (set(priors) | set(fixed)) - known
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not arguments of {getattr(builder, '__name__', builder)}; "
                         f"expected some of {sorted(known)}")
    both = set(priors) & set(fixed)
    if both:
        raise ValueError(f"{sorted(both)} given both as priors and as fixed values")
    y = regularize(y)  # absent periods become missing values (GapWarning)
    arr = check_y(y, 1 if np.ndim(y) == 1 else np.shape(y)[1])
    scale = float(np.nanstd(arr)) or 1.0
    index = index_of(y)
    coords = {"time": np.asarray(index) if index is not None else np.arange(arr.shape[0])}
    dims: tuple = ("time",)
    if arr.shape[1] > 1:
        coords["series"] = [str(c) for c in getattr(y, "columns", range(arr.shape[1]))]
        dims = ("time", "series")
    with pm.Model(coords=coords) as model:
        args = dict(fixed)
        for p in params:
            if p.name in priors:
                args[p.name] = _register(model, p.name, priors[p.name])
            elif p.name.startswith("sigma") and p.name not in fixed:
                args[p.name] = pm.HalfNormal(p.name, sigma=scale)
        spec = builder(**args)
        if not isinstance(spec, StateSpaceModel):
            raise TypeError(f"builder must return a StateSpaceModel; got {type(spec).__name__}")
        DLM(name, spec, observed=arr if arr.shape[1] > 1 else arr[:, 0], dims=dims)
    return model
