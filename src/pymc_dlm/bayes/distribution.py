r"""``DLM``: a PyMC distribution whose log-probability is the Kalman filter likelihood.

The log-probability is the Kalman filter (the fused numba Op of :mod:`pymc_dlm.fused` by
default, or the scan graph of :mod:`pymc_dlm.symbolic`; the exact diffuse
likelihood in statsmodels' convention, missing values masked), returned per time step so
that ``pm.compute_log_likelihood`` and ArviZ's LOO/WAIC see one term per t.  Random draws
simulate the state-space model (D&K 2012, eq. 3.1), so prior and posterior predictive
sampling give arrays of the observed shape.

Every symbolic entry of the :class:`~pymc_dlm.spec.StateSpaceModel` (a PyMC random variable
or any PyTensor expression of several) becomes a parameter of the distribution, so PyMC
sees the dependence and replaces random variables by their values as usual.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Constant

from ..spec.model import StateSpaceModel
from .. import fused, symbolic
from ..symbolic import diffuse_plan, leaves, system_tensors

__all__ = ["DLM"]


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


def _psd_sqrt(S: Any) -> Any:
    """A square root of a symmetric PSD matrix (eigh; zero eigenvalues allowed)."""
    lam, V = pt.linalg.eigh(S)
    return V * pt.sqrt(pt.maximum(lam, 0.0))[..., None, :]


class DLM:
    r"""A dynamic linear model as a PyMC distribution.

    ``DLM(name, model, observed=y, dims="time")`` inside a ``pm.Model``; ``DLM.dist(model, n)``
    for an unregistered variable.  The value is y, (n,) when p = 1 or (n, p).

    log-probability: :math:`\log p(y_t \mid y_{1:t-1}, \theta)` for each t (shape (n,)),
    from the Kalman filter (fused Op or scan, see ``engine``) (D&K 2012, eqs. 4.21-4.26, 7.2), exact diffuse initialisation
    (statsmodels' convention), NaN in ``observed`` masked as missing.  A point where some
    :math:`F_t` is not positive definite gets ``-inf`` (samplers reject it), never NaN.

    Random draws: :math:`\alpha_1 \sim N(a_1, P_*)`, :math:`y_t = Z_t\alpha_t + d_t + \varepsilon_t`,
    :math:`\alpha_{t+1} = T_t\alpha_t + c_t + R_t\eta_t`.  A diffuse state has no proper
    distribution; simulation starts it at its ``a1`` entry (so give ``a1`` near the data for
    prior predictive checks in the data's units; :func:`pymc_dlm.sample_states` and
    :func:`pymc_dlm.sample_forecast` condition on the data instead).

    Parameters
    ----------
    name : str
        Variable name.
    model : StateSpaceModel
        Entries may be numbers, PyMC random variables or PyTensor expressions of them.
    observed : (n,) or (n, p) array_like, pandas Series/DataFrame
        The data; NaN marks missing values.
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
        or holds inf; an entry of the model has the wrong shape.

    Examples
    --------
    >>> import pymc as pm, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> with pm.Model(coords={"time": y.index}) as m:
    ...     s_level = pm.HalfNormal("s_level", 100.0)
    ...     s_obs = pm.HalfNormal("s_obs", 200.0)
    ...     flow = dlm.DLM("flow", dlm.LocalLevel(s_level, s_obs), observed=y, dims="time")
    >>> round(float(m.compile_logp(sum=False)({"s_level_log__": 3.6, "s_obs_log__": 4.8})[-1]
    ...       .sum()), 3) < 0
    True
    """

    def __new__(cls, name: str, model: StateSpaceModel, *, observed: Any = None,
                engine: str = "fused", **kwargs: Any):
        if observed is None:
            raise ValueError(
                "DLM needs observed=...; for a variable without data use DLM.dist(model, n) "
                "and register it with pm.Model.register_rv, or simulate with pymc_dlm.simulate"
            )
        raw = observed.get_value() if hasattr(observed, "get_value") else observed
        y = _observed_array(raw, _check_model(model).p)
        if model.n_time is not None and model.n_time != y.shape[0]:
            raise ValueError(
                f"the model is time-varying over n = {model.n_time} steps but observed has "
                f"{y.shape[0]}"
            )
        one_d = np.ndim(raw) == 1
        dist = cls.dist(model, y.shape[0], observed_mask=~np.isnan(y), engine=engine,
                        _squeeze=one_d)
        if hasattr(observed, "get_value"):  # pm.Data: keep the shared variable
            values = observed
        else:
            # a constant, not an array: PyMC would turn NaN into a masked array and impute
            # it, but NaN here means missing and the Kalman filter handles it
            values = pt.constant(y[:, 0] if one_d else y, dtype="float64")
        dims = kwargs.pop("dims", None)
        if isinstance(dims, str):  # register_rv takes a tuple (a string would be its letters)
            dims = (dims,)
        if dims is not None and len(dims) != dist.ndim:
            raise ValueError(f"dims must name the {dist.ndim} axes of {name}; got {dims}")
        return pm.Model.get_context().register_rv(dist, name, observed=values, dims=dims, **kwargs)

    @classmethod
    def dist(cls, model: StateSpaceModel, n: int | None = None, *,
             observed_mask: np.ndarray | None = None, engine: str = "fused",
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
        plan = diffuse_plan(_numeric_pattern(model, "Z"), _numeric_pattern(model, "T"),
                            np.diag(np.asarray(model.diffuse, float)), mask)
        squeeze = (p == 1) if _squeeze is None else (_squeeze and p == 1)
        found = leaves(model)
        params = [pt.as_tensor_variable(x) for x in found]
        keys = [id(x) for x in found]

        def rebuild(args: tuple) -> Any:
            return system_tensors(model, dict(zip(keys, args, strict=True)))

        def logp(value: Any, *args: Any) -> Any:
            y2 = value.reshape((n, p)) if squeeze else value
            ll_t = loglike_t(rebuild(args), y2, plan)
            return pt.switch(pt.isnan(pt.sum(ll_t)), -np.inf, ll_t)

        def simulate(*args: Any) -> Any:
            *args, _size = args
            return _simulate_graph(rebuild(tuple(args)), n, p, m, model.r, squeeze)

        out_ndim = 1 if squeeze else 2
        rv = pm.CustomDist.dist(
            *params,
            dist=simulate,
            logp=logp,
            ndim_supp=out_ndim,
            ndims_params=[x.ndim for x in params],
            class_name="DLM",
        )
        # what sample_states / sample_forecast need to rebuild the numeric model per draw
        rv.owner.op.dlm_info = DLMInfo(model, tuple(keys), n, p, squeeze, plan)
        return rv


_ENGINES = {"fused": fused.loglike_t, "scan": symbolic.loglike_t}


class DLMInfo(NamedTuple):
    """The specification behind a DLM variable (kept on its Op)."""

    model: StateSpaceModel
    keys: tuple
    n: int
    p: int
    squeeze: bool
    plan: Any


def _check_model(model: Any) -> StateSpaceModel:
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    return model


def _simulate_graph(sys: Any, n: int, p: int, m: int, r: int, squeeze: bool) -> Any:
    """Symbolic simulation of y_1..y_n (diffuse states start at a1)."""
    base = dict(Z=2, d=1, H=2, T=2, c=1, R=2, Q=2)
    names = list(base)
    tv = [k for k in names if getattr(sys, k).ndim == base[k] + 1]
    const = [k for k in names if k not in tv]
    x0 = pm.Normal.dist(0.0, 1.0, size=(m,))
    eps = pm.Normal.dist(0.0, 1.0, size=(n, p))
    eta = pm.Normal.dist(0.0, 1.0, size=(n, r))
    alpha1 = sys.a1 + _psd_sqrt(sys.P1) @ x0
    # square roots of the covariances: once when constant, per step when time-varying
    Hs = _psd_sqrt(sys.H)
    Qs = _psd_sqrt(sys.Q)

    def step(*args: Any) -> Any:
        k = len(tv)
        e, h = args[0], args[1]
        mt = dict(zip(tv, args[2 : 2 + k], strict=True))
        alpha = args[2 + k]
        mt.update(zip(const, args[3 + k : 3 + k + len(const)], strict=True))
        hs, qs = args[-2], args[-1]
        Hst = _psd_sqrt(mt["H"]) if "H" in tv else hs
        Qst = _psd_sqrt(mt["Q"]) if "Q" in tv else qs
        y = mt["Z"] @ alpha + mt["d"] + Hst @ e
        alpha_next = mt["T"] @ alpha + mt["c"] + mt["R"] @ (Qst @ h)
        return alpha_next, y

    _, ys = pytensor.scan(
        step,
        sequences=[eps, eta, *[getattr(sys, k) for k in tv]],
        outputs_info=[alpha1, None],
        non_sequences=[*[getattr(sys, k) for k in const], Hs, Qs],
        return_updates=False,
        strict=True,
    )
    return ys[:, 0] if squeeze else ys

