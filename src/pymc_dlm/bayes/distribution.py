r"""``DLM``: a PyMC distribution whose log-probability is the Kalman filter likelihood.

The log-probability is the Kalman filter (the fused numba Op of :mod:`pymc_dlm.fused` by
default, or the scan graph of :mod:`pymc_dlm.symbolic`; the exact diffuse
likelihood in statsmodels' convention, missing values masked), returned per time step so
that ``pm.compute_log_likelihood`` and ``az.loo`` see one term per step, the constant terms
of the exact diffuse period folded into the first step after it (see :class:`DLM`).  Random
draws are the one-step-ahead predictive by default (:mod:`pymc_dlm.bayes.predictive`), so
posterior predictive checks condition on the data as a DLM user means.

Every symbolic entry of the :class:`~pymc_dlm.spec.StateSpaceModel` (a PyMC random variable
or any PyTensor expression of several) becomes a parameter of the distribution, so PyMC
sees the dependence and replaces random variables by their values as usual.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from .. import fused, symbolic
from ..symbolic import diffuse_plan, leaves, system_tensors
from .predictive import KINDS, CheckObserved, one_step_graph, simulate_graph, states_graph

__all__ = ["DLM", "Data"]


def _numeric_pattern(model: StateSpaceModel, name: str) -> np.ndarray:
    """Z or T as numbers, for planning the diffuse period (symbolic entries: one prior draw)."""
    x = getattr(system_tensors(model), name)
    if isinstance(x, Constant):  # the usual case: no function to compile (~0.2 s each)
        return np.asarray(x.data, dtype=np.float64)
    try:
        return np.asarray(pm.draw(x, random_seed=0), dtype=np.float64)
    except Exception as err:  # pragma: no cover - depends on the user's graph
        raise ValueError(
            f"{name} has symbolic entries that cannot be drawn to plan the exact diffuse period "
            f"({err}); give those entries as random variables or numbers"
        ) from err


def _observed_array(observed: Any, p: int) -> np.ndarray:
    try:
        arr = np.array(observed, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"observed must be numeric (NaN for missing); could not convert: {err}") from err
    if arr.ndim == 1 and p == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != p:
        want = "(n,) or (n, 1)" if p == 1 else f"(n, {p})"
        raise ValueError(f"observed must have shape {want} for a model with p = {p}; got {arr.shape}")
    if np.any(np.isinf(arr)):
        raise ValueError("observed must not contain inf (NaN marks a missing value)")
    return arr


def _filled(value: Any) -> Any:
    """A masked array (what pm.Data makes of data with NaN) as a plain array with NaN."""
    if isinstance(value, np.ma.MaskedArray):
        return np.ma.filled(value.astype(np.float64), np.nan)
    return value


def _unmask_shared(shared: Any) -> None:
    """Keep a pm.Data variable's value a plain array with NaN for missing values.

    ``pm.Data`` and ``pm.set_data`` store data with NaN as a ``numpy.ma.MaskedArray``
    (PyMC's imputation convention), which the numba backend cannot take; for a DLM NaN
    means missing and the Kalman filter handles it, so the value is stored filled with NaN.
    """
    shared.set_value(_filled(shared.get_value(borrow=True)))
    if getattr(shared.set_value, "_dlm_unmasks", False):
        return
    set_value = shared.set_value

    def unmasking_set_value(value: Any, borrow: bool = False) -> None:
        set_value(_filled(value), borrow=borrow)

    unmasking_set_value._dlm_unmasks = True
    shared.set_value = unmasking_set_value


def _fold_diffuse(ll_t: Any, nd: int, y: Any) -> Any:
    """Fold the first k = min(nd, n - 1) terms into the first later step with an observed row.

    (n,) -> (n - k,): entry j is step k + 1 + j.  The target is the first step after the
    diffuse period where y (n, p) has a value (entry 0 when none has), so that the steps
    where y is wholly missing keep their term 0 exactly and can be left out of a pointwise
    log-likelihood without changing its sum (``add_residuals``).  Symbolic in y: data set
    through ``pm.set_data`` may move the missing values after the diffuse period.
    """
    if nd == 0:
        return ll_t
    k = pt.minimum(nd, ll_t.shape[0] - 1)
    after = ll_t[k:]
    first = pt.argmax(pt.any(~pt.isnan(y[k:]), axis=1))
    return pt.inc_subtensor(after[first], pt.sum(ll_t[:k]))


class DLM:
    r"""A dynamic linear model as a PyMC distribution.

    ``DLM(name, model, observed=y, dims="time")`` inside a ``pm.Model``; ``DLM.dist(model, n)``
    for an unregistered variable.  The value is y, (n,) when p = 1 or (n, p).

    log-probability: :math:`\log p(y_t \mid y_{1:t-1}, \theta)` for each t, from the Kalman
    filter (fused Op or scan, see ``engine``) (D&K 2012, eqs. 4.21-4.26, 7.2), exact diffuse
    initialisation (statsmodels' convention), NaN in ``observed`` masked as missing.  A point
    where some :math:`F_t` is not positive definite gets ``-inf`` (samplers reject it), never
    NaN.  The d steps of the exact diffuse period (:math:`F_{\infty,t} \ne 0`; d = 1 for a
    local level, 13 for trend + seasonal(12)) have terms that do not depend on
    :math:`\theta` (:math:`-\tfrac12\log 2\pi F_{\infty,t}` per diffuse row); they are added to
    the term of the first step after them with an observed value (step d + 1 unless
    :math:`y_{d+1}` is wholly missing), so the elementwise log-probability has n - d entries
    (for steps d+1..n; a wholly missing step's entry is exactly 0) and sums to the full
    log-likelihood.  A constant entry in
    every draw would break PSIS (``az.loo``: "All tail values are the same"); folded, PSIS-LOO
    runs, and its elpd is that of the steps after the diffuse period plus the constant
    :math:`\sum_{t \le d} \ell_t`, exactly (a constant factor of the importance ratios
    cancels).  ``pm.compute_log_likelihood`` labels that axis ``<name>_dim_0``;
    :func:`pymc_dlm.add_residuals` relabels it with the time coordinate and leaves out the
    wholly missing steps, from it and from the observed and predictive groups alike (a NaN
    observation has nothing to check; for p > 1 one term per observed value; see
    :mod:`pymc_dlm.numeric.check_groups`), so ``az.loo``, ``az.loo_pit`` and the PPC plots
    run on data with missing values.

    Random draws (``pm.sample_posterior_predictive``, ``pm.sample_prior_predictive``,
    ``pm.draw``) depend on ``predictive``:

    - ``"one_step"`` (default): :math:`y^{rep}_t \sim N(Z_t a_t + d_t, F_t)`, the filter's
      one-step-ahead predictive given :math:`y_{1:t-1}` at each draw of :math:`\theta` (also
      for missing :math:`y_t`).  It is the default because it is the distribution the
      likelihood is made of: every PPC plot (``az.plot_ppc_dist``, ``plot_ppc_pit``, ...)
      then checks the model's forecasts of the data it has seen, and its PIT values are
      uniform when the model is right (Dawid 1984).  In the diffuse steps there is no proper
      prediction; the replicate there is a placeholder, the observed value (NaN if missing),
      and :func:`pymc_dlm.add_residuals` drops those steps from the observed and predictive
      groups, so that they and the log-likelihood cover steps d+1..n alike.  A prior
      predictive of this kind is the one-step predictive at prior draws of :math:`\theta`
      (given the data; it shows what the priors imply for the forecast errors).
    - ``"states"``: :math:`y^{rep} = Z\alpha + d + \varepsilon`, :math:`\alpha` from the
      simulation smoother at each draw (replicates of the data given the states, the
      check of the observation equation).  Slower: object mode, one smoother pass per draw.
    - ``"simulate"``: unconditional simulation from :math:`\alpha_1 \sim N(a_1, P_1)` (eq. 3.1).
      Needs a proper initial distribution: a model with a diffuse state raises
      :class:`ValueError` (give the state a proper ``a1``, ``P1`` with ``diffuse=False``).
      This is the kind for a prior predictive check in the data's units.

    Parameters
    ----------
    name : str
        Variable name.
    model : StateSpaceModel
        Entries may be numbers, PyMC random variables or PyTensor expressions of them.
    observed : (n,) or (n, p) array_like, pandas Series/DataFrame, or pm.Data
        The data; NaN marks missing values.  With ``pm.Data`` the values can change through
        ``pm.set_data`` (a time-invariant model also its length); the pattern of missing
        values in the exact diffuse period is fixed when the model is built, and data that
        change it raise :class:`ValueError` (rebuild the model).
    predictive : {"one_step", "states", "simulate"}, default "one_step"
        What random draws replicate (above).
    engine : {"fused", "scan"}, default "fused"
        How the log-likelihood is computed: ``"fused"``, one PyTensor Op running the numba
        filter with an analytic (adjoint) gradient (fast to compile and to run); ``"scan"``,
        the ``pytensor.scan`` graph of :mod:`pymc_dlm.symbolic` (the symbolic reference, and
        for backends without numba, e.g. JAX).  Both give the same numbers.
    dims, shape, **kwargs
        As for any PyMC distribution (``dims="time"`` with p = 1, ``("time", "series")``).

    Returns
    -------
    TensorVariable
        The model variable.

    Raises
    ------
    TypeError
        ``model`` is not a StateSpaceModel, or observed is not numeric.
    ValueError
        observed's shape disagrees with the model (p, or the length of a time-varying model),
        or holds inf; an entry of the model has the wrong shape; ``predictive="simulate"``
        with a diffuse state.

    Examples
    --------
    >>> import pymc as pm, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> with pm.Model(coords={"time": y.index}) as m:
    ...     s_level = pm.HalfNormal("s_level", 100.0)
    ...     s_obs = pm.HalfNormal("s_obs", 200.0)
    ...     flow = dlm.DLM("flow", dlm.LocalLevel(s_level, s_obs), observed=y, dims="time")
    >>> ll = m.compile_logp(sum=False)({"s_level_log__": 3.6, "s_obs_log__": 4.8})[-1]
    >>> ll.shape, bool(ll.sum() < 0)
    ((99,), True)
    """

    def __new__(cls, name: str, model: StateSpaceModel, *, observed: Any = None,
                predictive: str = "one_step", engine: str = "fused", **kwargs: Any):
        if observed is None:
            raise ValueError(
                "DLM needs observed=...; for a variable without data use DLM.dist(model, n) "
                "and register it with pm.Model.register_rv, or simulate with pymc_dlm.simulate"
            )
        check_option("predictive", predictive, KINDS)
        shared = hasattr(observed, "get_value")
        if shared:  # pm.Data: keep the shared variable, its value a plain array with NaN
            _unmask_shared(observed)
        raw = observed.get_value() if shared else observed
        y = _observed_array(raw, _check_model(model).p)
        if model.n_time is not None and model.n_time != y.shape[0]:
            raise ValueError(
                f"the model is time-varying over n = {model.n_time} steps but observed has "
                f"{y.shape[0]}"
            )
        one_d = np.ndim(raw) == 1
        if shared:
            values = observed
        else:
            # a constant, not an array: PyMC would turn NaN into a masked array and impute
            # it, but NaN here means missing and the Kalman filter handles it
            values = pt.constant(y[:, 0] if one_d else y, dtype="float64")
        dist = cls.dist(model, y.shape[0], observed_mask=~np.isnan(y), engine=engine,
                        predictive=predictive, _data=values, _squeeze=one_d)
        dims = kwargs.pop("dims", None)
        if isinstance(dims, str):  # register_rv takes a tuple (a string would be its letters)
            dims = (dims,)
        if dims is not None and len(dims) != dist.ndim:
            raise ValueError(f"dims must name the {dist.ndim} axes of {name}; got {dims}")
        return pm.Model.get_context().register_rv(dist, name, observed=values, dims=dims, **kwargs)

    @classmethod
    def dist(cls, model: StateSpaceModel, n: int | None = None, *,
             observed_mask: np.ndarray | None = None, engine: str = "fused",
             predictive: str = "simulate", _data: Any = None,
             _squeeze: bool | None = None) -> Any:
        """An unregistered DLM variable of length ``n`` (default: the model's time length).

        Parameters
        ----------
        model : StateSpaceModel
        n : int, optional
            Number of time steps (needed unless the model is time-varying).
        observed_mask : (n, p) bool ndarray, optional
            Where the data will be observed (plans the exact diffuse period); all by default.
        engine : {"fused", "scan"}
            As for :class:`DLM`.
        predictive : {"simulate"}
            Without data there is nothing to condition on: draws are unconditional
            simulations, and drawing from a model with a diffuse state raises ValueError.

        Returns
        -------
        TensorVariable
            Shape (n,) when p = 1, else (n, p).

        Examples
        --------
        >>> import pymc as pm, pymc_dlm as dlm
        >>> x = dlm.DLM.dist(dlm.LocalLevel(1.0, 0.5).replace(a1=[10.0], P1=[[0.0]],
        ...                  diffuse=[False]), 20)
        >>> pm.draw(x, random_seed=1).shape
        (20,)
        """
        model = _check_model(model)
        if engine not in _ENGINES:
            raise ValueError(f"engine must be one of {sorted(_ENGINES)}; got {engine!r}")
        check_option("predictive", predictive, KINDS if _data is not None else ("simulate",))
        loglike_t = _ENGINES[engine]
        n = model.n_time if n is None else int(n)
        if n is None or n < 1:
            raise ValueError(f"n must be a positive number of time steps; got {n}")
        if model.n_time is not None and model.n_time != n:
            raise ValueError(f"the model is time-varying over {model.n_time} steps; got n = {n}")
        p, m = model.p, model.m
        mask = np.ones((n, p), bool) if observed_mask is None else np.asarray(observed_mask, bool)
        if mask.shape != (n, p):
            raise ValueError(f"observed_mask must be (n, p) = ({n}, {p}); got {mask.shape}")
        diffuse = any(model.diffuse)
        if predictive == "simulate" and diffuse and _data is not None:
            raise ValueError(
                f"predictive='simulate' needs a proper initial distribution, but states "
                f"{[s for s, f in zip(model.state_names, model.diffuse) if f]} are diffuse; give "
                "them a1, P1 and diffuse=False (model.replace(...)), or use predictive='one_step'"
            )
        plan = diffuse_plan(_numeric_pattern(model, "Z"), _numeric_pattern(model, "T"),
                            np.diag(np.asarray(model.diffuse, float)), mask)
        nd = plan.n_steps
        squeeze = (p == 1) if _squeeze is None else (_squeeze and p == 1)
        found = leaves(model)
        params = [pt.as_tensor_variable(x) for x in found]
        keys = [id(x) for x in found]
        has_data = _data is not None
        if has_data:
            data = pt.as_tensor_variable(_data)
            if hasattr(_data, "get_value"):  # pm.Data: check it still fits the plan
                data = CheckObserved(mask[:nd], model.n_time)(data)
            params.append(data)

        def rebuild(args: tuple) -> Any:
            return system_tensors(model, dict(zip(keys, args[: len(keys)], strict=True)))

        def logp(value: Any, *args: Any) -> Any:
            y2 = value.reshape((value.shape[0], p)) if squeeze else value
            if has_data and hasattr(_data, "get_value"):
                y2 = CheckObserved(mask[:nd], model.n_time)(y2)
            ll_t = _fold_diffuse(loglike_t(rebuild(args), y2, plan), nd, y2)
            return pt.switch(pt.isnan(pt.sum(ll_t)), -np.inf, ll_t)

        def random(*args: Any) -> Any:
            *args, _size = args
            sys = rebuild(tuple(args))
            if predictive == "simulate":
                nn = args[-1].shape[0] if has_data else n
                ys = simulate_graph(sys, nn, p, m, model.r)
                if diffuse:
                    ys = _Improper(_improper_message(model))(ys)
            else:
                y2 = args[-1].reshape((args[-1].shape[0], p)) if squeeze else args[-1]
                ys = (one_step_graph(sys, y2, plan, p) if predictive == "one_step"
                      else states_graph(sys, y2, model.diffuse))
            return ys[:, 0] if squeeze else ys

        out_ndim = 1 if squeeze else 2
        rv = pm.CustomDist.dist(
            *params,
            dist=random,
            logp=logp,
            ndim_supp=out_ndim,
            ndims_params=[x.ndim for x in params],
            class_name="DLM",
        )
        # what sample_states / sample_forecast / add_residuals need to rebuild the model per draw
        rv.owner.op.dlm_info = DLMInfo(model, tuple(keys), n, p, squeeze, plan, predictive)
        return rv


def _improper_message(model: StateSpaceModel) -> str:
    names = [s for s, f in zip(model.state_names, model.diffuse) if f]
    return (f"cannot simulate a DLM unconditionally: states {names} are diffuse (no proper "
            "initial distribution); give them a1, P1 and diffuse=False, or condition on data "
            "(DLM(..., observed=y) draws the one-step-ahead predictive)")


class _Improper(Op):
    """Raise ValueError(message) when evaluated: a draw that has no proper distribution."""

    __props__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def make_node(self, x) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage) -> None:
        raise ValueError(self.message)

    def infer_shape(self, node, shapes):
        return [shapes[0]]


@register_funcify_default_op_cache_key(_Improper)
def _numba_improper(op, node=None, **kwargs):
    message = op.message

    @numba_njit
    def improper(x):
        if x.size >= 0:  # always; written as a branch so that numba types the return
            raise ValueError(message)
        return x

    return improper, 2  # the salt of PyTensor's on-disk cache key (bump on edits)


_ENGINES = {"fused": fused.loglike_t, "scan": symbolic.loglike_t}


class DLMInfo(NamedTuple):
    """The specification behind a DLM variable (kept on its Op)."""

    model: StateSpaceModel
    keys: tuple
    n: int
    p: int
    squeeze: bool
    plan: Any
    predictive: str = "simulate"


def _check_model(model: Any) -> StateSpaceModel:
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    return model


def Data(name: str, value: Any, *, dims: Any = None, model: Any = None) -> Any:
    r"""A ``pm.Data`` container that may hold NaN (missing values) for a :class:`DLM`.

    ``pm.Data`` refuses arrays with NaN (PyMC would impute them); for a DLM, NaN means
    missing and the Kalman filter skips it, so this container keeps the NaN.  Use it as
    ``observed=`` of a DLM; change it with ``pm.set_data`` as usual (see :class:`DLM` for
    what may change).

    Parameters
    ----------
    name : str
    value : (n,) or (n, p) array_like, pandas Series/DataFrame
        NaN for missing values.  A pandas index gives the coordinate of a new first dim.
    dims : str or sequence of str, optional
    model : pymc.Model, optional
        Default: the model in context.

    Returns
    -------
    pytensor SharedVariable
        Registered in the model like ``pm.Data``'s.

    Examples
    --------
    >>> import numpy as np, pymc as pm, pymc_dlm as dlm
    >>> with pm.Model() as m:
    ...     y = dlm.Data("y", [1.0, np.nan, 2.0], dims="time")
    ...     _ = dlm.DLM("obs", dlm.LocalLevel(1.0, 1.0), observed=y, dims="time")
    >>> bool(np.isnan(y.get_value()[1])), m.dim_lengths["time"].eval()
    (True, array(3))
    """
    import pytensor

    model = pm.modelcontext(model)
    pandas = hasattr(value, "to_numpy") and hasattr(value, "index")
    index = value.index if pandas else None
    arr = np.array(value.to_numpy() if pandas else value, dtype=np.float64)
    if np.isinf(arr).any():
        raise ValueError("value must not contain inf (NaN marks a missing value)")
    x = pytensor.shared(arr, model.name_for(name))
    if isinstance(dims, str):
        dims = (dims,)
    if dims is not None:
        if len(dims) != arr.ndim:
            raise ValueError(f"dims must name the {arr.ndim} axes of {name}; got {dims}")
        for i, dname in enumerate(dims):
            if dname is not None and dname not in model.dim_lengths:
                values = np.asarray(index) if i == 0 and index is not None else None
                model.add_coord(name=dname, values=values, length=x.shape[i])
    model.register_data_var(x, dims=dims)
    return x
