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
from .formula import parse_formula

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
    builder : callable or str
        Returns a StateSpaceModel from keyword arguments, e.g. :func:`pymc_dlm.LocalLevel`
        or ``lambda sigma_level, sigma_obs, sigma_seasonal: ...``; or a model formula such
        as ``"trend + seasonal(12)"`` (:mod:`pymc_dlm.workflow.formula`), whose parameters
        are named ``sigma.level``, ..., ``phi.ar`` (default prior Uniform(-1, 1)),
        ``period.cycle`` (Uniform(2, n)), ``rho.cycle`` (Uniform(0, 1)), as in
        ``docs/estimation.md``.
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
    >>> sorted(v.name for v in dlm.bayesian("level", y).free_RVs)
    ['sigma.level', 'sigma.obs']
    """
    priors = dict(priors or {})
    if isinstance(builder, str):  # a formula: priors named sigma.<component>, phi.ar
        formula = parse_formula(builder)
        names = list(formula.param_names)

        def builder(**kw: Any) -> StateSpaceModel:
            return formula.build([kw[n] for n in names])

        builder.__name__ = f"the formula {formula.text!r}"
        for n in names:
            if n.startswith("phi") and n not in fixed:
                priors.setdefault(n, pm.Uniform.dist(-1.0, 1.0))
            if n == "rho.cycle" and n not in fixed:
                priors.setdefault(n, pm.Uniform.dist(0.0, 1.0))
    else:
        sig = inspect.signature(builder)
        names = [p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    known = set(names)
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
    if "period.cycle" in known and "period.cycle" not in fixed:  # a formula's cycle(p?)
        priors.setdefault("period.cycle", pm.Uniform.dist(2.0, max(float(arr.shape[0]), 3.0)))
    index = index_of(y)
    coords = {"time": np.asarray(index) if index is not None else np.arange(arr.shape[0])}
    dims: tuple = ("time",)
    if arr.shape[1] > 1:
        coords["series"] = [str(c) for c in getattr(y, "columns", range(arr.shape[1]))]
        dims = ("time", "series")
    with pm.Model(coords=coords) as model:
        args = dict(fixed)
        for n in names:
            if n in priors:
                args[n] = _register(model, n, priors[n])
            elif n.startswith("sigma") and n not in fixed:
                args[n] = pm.HalfNormal(n, sigma=scale)
        spec = builder(**args)
        if not isinstance(spec, StateSpaceModel):
            raise TypeError(f"builder must return a StateSpaceModel; got {type(spec).__name__}")
        DLM(name, spec, observed=arr if arr.shape[1] > 1 else arr[:, 0], dims=dims)
    return model
