"""``pymc_dlm.fit_many``: one structural model fitted to many series, locally or on Dask.

Every series gets its own maximum likelihood (or EM) fit.  For MLE the log-likelihood and
gradient are compiled once per model structure and process with the data as an *input* (not a
constant), so thousands of fits share one compiled function; the per-series work is SciPy's
optimiser calling the fused numba filter and its adjoint.  The cache is keyed by structure
(a formula's terms, the graph from the parameters to the system matrices), not by object, and
is thread-safe, so multi-threaded Dask workers compile once too.  With a
``dask.distributed.Client`` the series are scattered in chunks that run as Dask tasks; results
stream back and are kept as they finish, so a run stopped by a timeout, a lost worker or an
interrupt returns what finished.  A series that fails (all missing, inf, a non-finite
start...) gets its error recorded in the table; the others go on.  Forecasts of all series
run as one batched filter (:func:`pymc_dlm.numeric.batch.forecast_many`).  Bayesian fits per
series: the posterior mode under priors (``method="map"``) or NUTS (``method="nuts"``,
nutpie, one compiled PyMC model per process with each series' data swapped in).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..estimation.em import fit_em
from ..estimation.mle import _MODE, _blas_one_thread, _numbers, maximize
from ..estimation.structure import variance_groups, variance_parameterization
from ..numeric.assemble import SystemArrays, system_arrays
from ..numeric.batch import (CHUNK_SIZE, forecast_draws, forecast_many, mixture_moments,
                             mixture_quantiles)
from ..numeric.forecast import extend_index
from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from ..estimation.checks import check_data, data_scale, is_log_variance
from ..estimation.transforms import natural_scale
from .fit import formula_start, model_function
from .formula import parse_formula, to_argument

__all__ = ["ManyResult", "fit_many", "series_table"]


@dataclass(frozen=True, eq=False)
class ManyResult:
    """Result of :func:`fit_many`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per series (index: the series ids, in input order): the estimates (columns
        named as in :func:`fit_mle` / :func:`fit_em`), ``log_likelihood``, ``converged``,
        ``n_iter``, ``nobs`` and ``error`` (empty when the fit ran; "not run: <cause>" for the
        series of a run that stopped early).
    models : dict
        Series id to the fitted numeric StateSpaceModel (absent for failed series).
    data : dict
        Series id to the series fitted (trailing missing values removed).
    method : str
        "mle", "em", "map" or "nuts" (no models: posterior summaries in the table, the
        draws in ``posterior``).
    cause : str
        Why the run stopped early (a timeout, ``KilledWorker``...); empty when every chunk ran.
    posterior : dict
        For method="nuts": series id to its (S, k) posterior draws (chains after one another)
        of the formula's parameters, in the order of ``param_names``.
    model : object
        The model fitted (the formula for "map" and "nuts").
    param_names : tuple of str
        The formula's parameter names (method="nuts"), the columns of ``posterior``'s draws.
    """

    table: pd.DataFrame
    models: dict
    data: dict
    method: str
    cause: str = ""
    posterior: dict = field(default_factory=dict)
    model: Any = None
    param_names: tuple = ()

    @property
    def complete(self) -> bool:
        """True when every series was attempted (failed fits included)."""
        return not self.cause

    def forecast(self, steps: int, alpha: float = 0.05, *, quantiles: Any = (),
                 n_draws: int | None = None, client: Any = None,
                 chunk_size: int = CHUNK_SIZE) -> pd.DataFrame:
        r"""Forecasts of every fitted series as one long DataFrame, in one compiled pass.

        MLE, EM and MAP fits: the filter of each series over its data and ``steps`` missing
        rows (D&K 2012, section 4.11) runs in :func:`~pymc_dlm.numeric.batch.forecast_many`,
        a numba loop over the series; the numbers are those of :func:`pymc_dlm.forecast` on
        each series at its estimates (MAP: at its posterior mode).

        NUTS fits: the posterior predictive distribution of each series.  Given the draw
        :math:`\theta_s` the forecast :math:`y_{n+j}` is normal with the mean and variance of
        :func:`pymc_dlm.forecast` at :math:`\theta_s`
        (:func:`~pymc_dlm.numeric.batch.forecast_draws`, all draws of a series in one compiled
        pass), so over the S draws it is the equal mixture of those normals: ``mean`` is the
        average of the means, ``mean_se`` the mixture's standard deviation
        (:math:`\sqrt{\bar{\sigma^2_s} + \mathrm{var}_s(\mu_s)}`), the interval and the
        ``quantiles`` the mixture's quantiles
        (:func:`~pymc_dlm.numeric.batch.mixture_quantiles`).  Exact for the sample: no paths
        are simulated.

        Parameters
        ----------
        steps : int
            Horizon h >= 1.
        alpha : float
            The intervals are mean :math:`\mp z_{1-\alpha/2}` se (NUTS: the mixture's
            :math:`\alpha/2` and :math:`1-\alpha/2` quantiles).
        quantiles : sequence of float in (0, 1), optional
            Add a column ``q<p>`` (``q0.1``, ``q0.5``...) per probability: the normal
            forecast's quantiles (NUTS: the mixture's).
        n_draws : int, optional
            NUTS fits: use this many of each series' draws, evenly spaced (default all).
        client : dask.distributed.Client, optional
            Run the chunks of series on that cluster's workers (fitted models and data
            scattered, ``chunk_size`` series per task).
        chunk_size : int
            Series per compiled call (per task with a client).

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``time`` (each series' index continued, or 1..h when it cannot
            be), ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` and the
            ``quantiles`` columns; h rows per fitted series, in the table's order.

        Raises
        ------
        ValueError
            A series whose diffuse period has not ended within its data (infinite forecast
            variances), a bad ``steps`` or ``alpha``.

        Examples
        --------
        >>> import numpy as np, pymc_dlm as dlm
        >>> y = dlm.datasets.load_nile()
        >>> wide = pd.DataFrame({"a": y, "b": y * 1.1})
        >>> res = dlm.fit_many("level", wide, progress=False)
        >>> res.forecast(2).shape
        (4, 6)
        """
        if not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
        qs = [float(q) for q in np.atleast_1d(np.asarray(quantiles, dtype=np.float64))]
        if not all(0.0 < q < 1.0 for q in qs):
            raise ValueError(f"quantiles must lie in (0, 1); got {qs}")
        if n_draws is not None and (not isinstance(n_draws, int | np.integer) or n_draws < 1):
            raise ValueError(f"n_draws must be an integer >= 1; got {n_draws!r}")
        probs = [alpha / 2.0, 1.0 - alpha / 2.0, *qs]
        columns = ["id", "time", "mean", "mean_se", "mean_ci_lower", "mean_ci_upper",
                   *(f"q{q:g}" for q in qs)]
        nuts = self.method == "nuts"
        found = self.posterior if nuts else self.models
        ids = list(found)
        if not ids:
            return pd.DataFrame(columns=columns)
        fitted = [found[sid] for sid in ids]
        if nuts:
            fitted = [_thin(d, n_draws) for d in fitted]
        ys = [self.data[sid].to_numpy(dtype=np.float64) for sid in ids]
        spec = (self.model, self.param_names) if nuts else None
        if client is None:
            mean, sd, qv, n_diffuse = _forecast_part(spec, fitted, ys, steps, probs, chunk_size)
        else:
            mean, sd, qv, n_diffuse = _forecast_dask(client, spec, fitted, ys, steps, probs,
                                                     chunk_size)
        lengths = np.array([y.shape[0] for y in ys])
        late = np.flatnonzero(n_diffuse > lengths)
        if late.size:
            raise ValueError(
                f"series {[ids[i] for i in late[:5]]}: the diffuse initialisation has not "
                "ended within the data, so forecast variances are infinite")
        times = [_future_times(self.data[sid].index, steps) for sid in ids]
        cols = {"id": np.repeat(np.asarray(ids, dtype=object), steps), "time": _concat(times),
                "mean": mean.ravel(), "mean_se": sd.ravel(),
                "mean_ci_lower": qv[:, 0].ravel(), "mean_ci_upper": qv[:, 1].ravel()}
        for j, name in enumerate(columns[6:]):
            cols[name] = qv[:, 2 + j].ravel()
        return pd.DataFrame(cols, columns=columns)


def _thin(draws: np.ndarray, n: int | None) -> np.ndarray:
    """``n`` of the draws, evenly spaced (all when n is None or at least their number)."""
    if n is None or n >= draws.shape[0]:
        return draws
    return draws[np.linspace(0, draws.shape[0] - 1, n).round().astype(int)]


def _forecast_part(spec: tuple | None, fitted: list, ys: list, steps: int, probs: list,
                   chunk_size: int) -> tuple:
    """(B, h) means and standard deviations, (B, len(probs), h) quantiles and (B,) diffuse
    lengths (the largest over a series' draws) of univariate series' forecasts: at the fitted
    models (``spec`` None) or mixed over each series' posterior draws (``spec`` = (formula,
    parameter names), ``fitted`` the (S, k) draws)."""
    from scipy.special import ndtri

    if spec is None:
        out = forecast_many(fitted, ys, steps, chunk_size=chunk_size)
        mean, sd = out.y_mean[:, :, 0], np.sqrt(out.y_cov[:, :, 0, 0])
        qv = mean[:, None] + ndtri(np.asarray(probs))[None, :, None] * sd[:, None]
        return mean, sd, qv, out.n_diffuse
    systems = _draw_systems(spec[0], spec[1])
    B = len(ys)
    mean, sd = np.empty((B, steps)), np.empty((B, steps))
    qv, n_diffuse = np.empty((B, len(probs), steps)), np.empty(B, dtype=np.int64)
    for b, (draws, y) in enumerate(zip(fitted, ys, strict=True)):
        out = forecast_draws(systems(draws), y, steps, chunk_size=chunk_size)
        mu, var = out.y_mean[:, :, 0], out.y_cov[:, :, 0, 0]  # (S, h)
        m, v = mixture_moments(mu, var)
        mean[b], sd[b] = m, np.sqrt(v)
        qv[b] = mixture_quantiles(mu, var, probs)
        n_diffuse[b] = -1 if (out.n_diffuse < 0).any() else out.n_diffuse.max()
    return mean, sd, qv, n_diffuse


#: (formula terms, parameter names) -> function of (S, k) draws to stacked SystemArrays
_DRAW_SYSTEMS: dict = {}


def _draw_systems(formula_text: str, names: tuple) -> Callable[[np.ndarray], SystemArrays]:
    """A function of a formula's (S, k) parameter draws (standard deviations, AR
    coefficients, in ``names`` order) to its system arrays stacked over the draws.  The map
    from the parameters to the system matrices is vectorised over the draws
    (``vectorize_graph``) and compiled once per formula and process (Python linker: NumPy
    calls on whole (S, ...) arrays, no loop over the draws, no numeric model built)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from .. import symbolic

    formula = parse_formula(formula_text)
    if tuple(formula.param_names) != tuple(names):
        raise ValueError(f"the draws are of {list(names)}; the formula {formula_text!r} has "
                         f"{list(formula.param_names)}")
    base = (2, 1, 2, 2, 1, 2, 2, 1, 2)  # ndim of Z d H T c R Q a1 P1 when constant
    key = (formula.terms, tuple(names))
    with _LOCK:
        entry = _DRAW_SYSTEMS.get(key)
        if entry is None:
            theta = pt.dvector("theta")
            spec = formula.build([theta[i] for i in range(len(names))])
            sys = symbolic.system_tensors(spec)
            if any(x.ndim != k for x, k in zip(sys[:9], base, strict=True)):
                raise ValueError(f"forecasts of NUTS fits need constant system matrices; the "
                                 f"formula {formula_text!r} has time-varying ones")
            draws = pt.dmatrix("draws")
            outs = vectorize_graph(list(sys[:9]), replace={theta: draws})
            mode = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")
            fn = pytensor.function([draws], outs, mode=mode, on_unused_input="ignore")
            entry = _DRAW_SYSTEMS[key] = (threading.Lock(), fn, sys.P1inf)
    lock, fn, P1inf = entry

    def systems(draws: np.ndarray) -> SystemArrays:
        draws = np.ascontiguousarray(draws, dtype=np.float64)
        S = draws.shape[0]
        with lock:
            values = [np.asarray(x, dtype=np.float64) for x in fn(draws)]
        arrays = []
        for i, (x, k) in enumerate(zip(values, base, strict=True)):
            x = x if x.ndim > k else np.broadcast_to(x, (S,) + x.shape)  # constant in theta
            arrays.append(x[:, None] if i < 7 else x)  # Z..Q: a time axis of length 1
        arrays.append(np.broadcast_to(P1inf, (S,) + P1inf.shape))
        return SystemArrays(*(np.ascontiguousarray(a) for a in arrays))

    return systems


def _forecast_dask(client: Any, spec: tuple | None, fitted: list, ys: list, steps: int,
                   probs: list, chunk_size: int) -> tuple:
    """:func:`_forecast_part` on a Dask cluster, ``chunk_size`` series per task."""
    bounds = range(0, len(fitted), chunk_size)
    data = client.scatter([(fitted[i : i + chunk_size], ys[i : i + chunk_size]) for i in bounds],
                          hash=False)
    futs = [client.submit(_forecast_task, spec, d, steps, probs, chunk_size, pure=False)
            for d in data]
    try:
        parts = client.gather(futs)
    finally:
        client.cancel(futs + data, force=True)
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def _forecast_task(spec: tuple | None, part: tuple, steps: int, probs: list,
                   chunk_size: int) -> tuple:
    return _forecast_part(spec, part[0], part[1], steps, probs, chunk_size)


def _future_times(index: pd.Index, steps: int) -> np.ndarray:
    """The index continued by ``steps`` periods (:func:`~pymc_dlm.numeric.extend_index`), or
    1..steps when it cannot be; integer indexes without building a pandas index."""
    if pd.api.types.is_integer_dtype(index) and len(index):
        last = int(index[-1])
        step = int(index[-1] - index[-2]) if len(index) > 1 else 1
        return last + step * np.arange(1, steps + 1)
    ext = extend_index(index, steps)
    return np.arange(1, steps + 1) if ext is None else np.asarray(ext)


def _concat(parts: list) -> np.ndarray:
    kinds = {p.dtype for p in parts}
    return np.concatenate(parts) if len(kinds) == 1 else np.concatenate(
        [p.astype(object) for p in parts])


def series_table(data: Any, *, id_col: str | None = None, time_col: str | None = None,
                 value_col: str | None = None) -> dict:
    """Many series as ``{id: pandas.Series}``, trailing missing values removed.

    ``data`` is a (B, n) array (ids 0..B-1), a wide DataFrame (one column per series, the
    index is time) or a long DataFrame with an ``id_col`` column (and optionally ``time_col``
    and ``value_col``; the value column defaults to the one numeric column left).  The series
    come in input order (a long frame's ids in order of first appearance).

    Raises
    ------
    ValueError
        Duplicate ids (wide columns) or duplicate (id, time) rows of a long frame; a missing
        id column; an array that is not (B, n).

    Examples
    --------
    >>> long = pd.DataFrame({"store": ["b", "b", "a", "a"], "sales": [1.0, 2.0, 3.0, np.inf]})
    >>> {k: v.tolist() for k, v in series_table(long, id_col="store").items()}
    {'b': [1.0, 2.0], 'a': [3.0, inf]}
    """
    if isinstance(data, pd.DataFrame) and id_col is not None:
        if id_col not in data.columns:
            raise ValueError(f"no id column {id_col!r}; columns are {list(data.columns)}")
        rest = [c for c in data.columns if c not in (id_col, time_col)]
        if value_col is None:
            numeric = [c for c in rest if pd.api.types.is_numeric_dtype(data[c])]
            if len(numeric) != 1:
                raise ValueError(f"name the value column (value_col=...); candidates {numeric}")
            value_col = numeric[0]
        if time_col is not None:
            dup = data.duplicated([id_col, time_col])
            if dup.any():
                first = data.loc[dup, [id_col, time_col]].iloc[0]
                raise ValueError(f"{int(dup.sum())} duplicate ({id_col}, {time_col}) rows, e.g. "
                                 f"({first.iloc[0]}, {first.iloc[1]}); expected one value per "
                                 "series and time")
        idx = data[time_col] if time_col is not None else data.groupby(id_col).cumcount()
        order = pd.unique(data[id_col])
        data = data.assign(_t=idx).pivot(index="_t", columns=id_col, values=value_col)
        data = data[order].rename_axis(time_col)
    if isinstance(data, pd.DataFrame):
        dup = data.columns[data.columns.duplicated()]
        if len(dup):
            raise ValueError(f"duplicate series ids {list(dict.fromkeys(dup))[:5]}; expected "
                             "unique column names (one column per series)")
        out = {c: data[c].astype(float) for c in data.columns}
    else:
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"an array of many series must be (B, n); got shape {arr.shape}")
        out = {i: pd.Series(arr[i]) for i in range(arr.shape[0])}
    trimmed = {}
    for sid, s in out.items():  # NaN is missing; inf is kept (an error of its series)
        observed = np.flatnonzero(~np.isnan(s.to_numpy()))
        trimmed[sid] = s.iloc[: observed[-1] + 1] if observed.size else s
    return trimmed


# --- one compiled log-likelihood per model structure, per process ---------------------------

#: structure key -> _Compiled, newest last (at most 8 kept)
_CACHE: dict = {}
_LOCK = threading.Lock()
#: Log-likelihood + gradient functions compiled in this process (read by the tests).
_STATS = {"compiles": 0}


class _Unkeyable(Exception):
    """A graph with an input other than psi or an Op without hashable properties."""


def _signature(inputs: list, outputs: list) -> tuple:
    """A hashable description of the graph from ``inputs`` to ``outputs``: each node's Op
    (equal Ops compare equal by their properties), where its inputs come from, and the type
    and bytes of every constant.  Equal signatures mean the same computation (as
    ``fit_mle``'s cache)."""
    from pytensor.graph.basic import Constant, Variable
    from pytensor.graph.traversal import io_toposort

    ids: dict = {x: ("input", k) for k, x in enumerate(inputs)}

    def ref(x: Any) -> tuple:
        if not isinstance(x, Variable):
            data = np.asarray(x)
            return ("array", data.dtype.str, data.shape, data.tobytes())
        if x in ids:
            return ids[x]
        if isinstance(x, Constant):
            data = np.asarray(x.data)
            return ("const", x.type, data.dtype.str, data.shape, data.tobytes())
        raise _Unkeyable(x)

    parts = []
    graph_outs = [x for x in outputs if isinstance(x, Variable)]
    for i, node in enumerate(io_toposort(list(inputs), graph_outs)):
        parts.append((node.op, tuple(ref(x) for x in node.inputs)))
        for j, out in enumerate(node.outputs):
            ids[out] = ("node", i, j)
    key = (tuple(parts), tuple(ref(x) for x in outputs))
    try:
        hash(key)
    except TypeError as err:
        raise _Unkeyable(err) from None
    return key


class _Compiled:
    """log-likelihood and gradient of one model structure with y as an input, per diffuse plan.

    Thread-safe: the functions compiled per plan are built under ``lock`` and every call of a
    compiled function holds it (a PyTensor function keeps its inputs in shared storage).
    """

    def __init__(self, psi: Any, spec: StateSpaceModel, sys: Any, init: np.ndarray):
        import pytensor
        import pytensor.tensor as pt

        from .. import symbolic

        self.psi, self.spec, self.sys = psi, spec, sys
        self.y = pt.dmatrix("y")
        self.Z, self.T = (_numbers([psi], [x], init)[0] for x in (sys.Z, sys.T))
        self.found = symbolic.leaves(spec)
        mode = pytensor.compile.mode.Mode(linker="py", optimizer=None)
        self.leaf_fn = pytensor.function([psi], self.found, mode=mode, on_unused_input="ignore")
        self.by_plan: dict = {}
        self.lock = threading.RLock()

    def objective(self, y: np.ndarray) -> Callable[[np.ndarray], tuple]:
        """``x -> (log-likelihood, gradient)`` at the data ``y`` (n, p); compiles the
        function of y's diffuse plan the first time it is needed in this process."""
        import pytensor
        import pytensor.tensor as pt

        from .. import fused, symbolic

        plan = symbolic.diffuse_plan(self.Z, self.T, np.diag(np.asarray(self.spec.diffuse, float)),
                                     ~np.isnan(y))
        with self.lock:
            fn = self.by_plan.get(plan)
            if fn is None:
                ll = fused.loglike(self.sys, self.y, plan)
                fn = self.by_plan[plan] = pytensor.function(
                    [self.psi, self.y], [ll, pt.grad(ll, self.psi)], on_unused_input="ignore",
                    mode=_MODE)
                with _LOCK:
                    _STATS["compiles"] += 1

        def call(x: np.ndarray) -> tuple:
            with self.lock:
                ll, g = fn(x, y)
                return float(ll), np.array(g)

        return call

    def model(self, x: np.ndarray) -> StateSpaceModel:
        with self.lock:
            values = self.leaf_fn(x) if self.found else []
        return self.spec.substitute({id(leaf): np.asarray(v)
                                     for leaf, v in zip(self.found, values, strict=True)})


def _model_key(model: StateSpaceModel) -> tuple:
    """The structure of a numeric model under :func:`variance_parameterization`: its free
    variance groups, every system array with the free entries zeroed (their values are only
    the start: the parameterisation overwrites them), its flags, names and components."""
    groups = tuple(variance_groups(model, ("H", "Q")))
    sys = system_arrays(model)._asdict()
    for name in ("H", "Q"):
        sys[name] = sys[name].copy()
    for g in groups:
        idx = np.asarray(g.index)
        if g.full:
            sys[g.matrix][:, idx[:, None], idx[None, :]] = 0.0
        else:
            sys[g.matrix][:, idx, idx] = 0.0
    arrays = tuple((k, a.shape, a.tobytes()) for k, a in sys.items())
    return (groups, arrays, tuple(model.stationary), tuple(model.state_names),
            tuple(model.components))


def _compiled_for(model: Any, model_fn: Callable, init: Any) -> _Compiled:
    """The process's compiled log-likelihood for this model's structure.

    The key is the structure, not the object: a formula by its parsed terms (so equal strings
    unpickled separately by two Dask tasks share one entry), a StateSpaceModel or a function by
    the signature of the graph from psi to the system matrices plus the model's diffuse and
    stationary flags, state names and components.  A graph that cannot be keyed (a shared
    variable in it) is cached by object identity.
    """
    import pytensor.tensor as pt

    from .. import symbolic

    init = np.asarray(init, dtype=np.float64)
    built = None
    if isinstance(model, str):
        key: Any = ("formula", parse_formula(model).terms)
    elif isinstance(model, StateSpaceModel):
        key = ("model",) + _model_key(model)
    else:
        psi = pt.dvector("psi")
        spec = model_fn(psi)
        if not isinstance(spec, StateSpaceModel):
            raise TypeError(f"model_fn must return a StateSpaceModel; got {type(spec).__name__}")
        sys = symbolic.system_tensors(spec)
        built = (psi, spec, sys)
        try:
            key = ("graph", _signature([psi], list(sys[:9])), tuple(spec.diffuse),
                   tuple(spec.stationary), tuple(spec.state_names), tuple(spec.components))
            hash(key)
        except (_Unkeyable, TypeError):
            key = ("id", id(model))
    with _LOCK:
        entry = _CACHE.pop(key, None)
        if entry is not None and key[0] == "id" and entry[0] is not model:
            entry = None  # an id reused by another object
        if entry is None:
            if built is None:
                psi = pt.dvector("psi")
                spec = model_fn(psi)
                built = (psi, spec, symbolic.system_tensors(spec))
            entry = (model, _Compiled(*built, init))
        _CACHE[key] = entry  # newest last
        while len(_CACHE) > 8:
            del _CACHE[next(iter(_CACHE))]
        return entry[1]


#: prior signature -> (lock, compiled log-prior), newest last (at most 8 kept)
_PRIORS: dict = {}


def _default_prior(name: str, n: int, scale: Any) -> Any:
    """dlm.bayesian's default prior of a formula parameter: Uniform(-1, 1) for an AR
    coefficient, Uniform(0, 1) for a cycle's damping, Uniform(2, n) for its period,
    HalfNormal(scale) for a standard deviation."""
    import pymc as pm

    if name.startswith("phi"):
        return pm.Uniform.dist(-1.0, 1.0)
    if name == "rho.cycle":
        return pm.Uniform.dist(0.0, 1.0)
    if name == "period.cycle":
        return pm.Uniform.dist(2.0, float(n))
    return pm.HalfNormal.dist(sigma=scale)


def _prior_for(formula_text: str, priors: dict | None, n: int) -> Callable:
    r"""``(x, scale) -> (log prior, gradient)`` of a formula's parameters for method="map".

    The priors are on the formula's parameters (standard deviations, AR coefficients), read
    at :math:`\sigma = \exp(x / 2)`, :math:`\phi = \tanh(x)`, without the Jacobian of that
    map (as ``pymc.find_MAP``, which maximises the density of the parameters themselves).
    Defaults, as :func:`pymc_dlm.bayesian`: ``HalfNormal(sigma=scale)`` for a standard
    deviation, scale being the series' standard deviation, and ``Uniform(-1, 1)`` for an AR
    coefficient.  Compiled once per prior graph and process (Python linker: a few scalars).
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    formula = parse_formula(formula_text)
    psi, scale = pt.dvector("psi"), pt.dscalar("scale")
    lp = pt.constant(0.0, dtype="float64")
    for i, name in enumerate(formula.param_names):
        prior = (priors or {}).get(name)
        if prior is None:
            prior = _default_prior(name, n, scale)
        # model_function's map (a log variance for sigma: sigma = exp(psi / 2); tanh, logit...)
        value = to_argument(name, psi[i])
        lp = lp + pm.logp(prior, value).sum()
    try:
        key: Any = _signature([psi, scale], [lp])
    except _Unkeyable:
        key = None
    with _LOCK:
        entry = _PRIORS.pop(key, None) if key is not None else None
        if entry is None:
            mode = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")
            entry = (threading.Lock(), pytensor.function(
                [psi, scale], [lp, pt.grad(lp, psi)], mode=mode, on_unused_input="ignore"))
        if key is not None:
            _PRIORS[key] = entry
            while len(_PRIORS) > 8:
                del _PRIORS[next(iter(_PRIORS))]
    lock, fn = entry

    def call(x: np.ndarray, s: float) -> tuple:
        with lock:
            v, g = fn(x, s)
            return float(v), np.array(g)

    return call


#: (formula terms, priors signature, n, observed mask) -> (lock, compiled sampler), newest last
_SAMPLERS: dict = {}
#: NUTS options of method="nuts" (the rest of **kwargs is refused)
_NUTS_OPTIONS = ("draws", "tune", "chains", "random_seed", "target_accept")


def _sampler_for(formula_text: str, priors: dict | None, y: np.ndarray) -> tuple:
    """(lock, nutpie compiled model) of the formula with its priors for series like y.

    The PyMC model (:func:`pymc_dlm.bayesian`'s priors; the data and the default prior scale
    as ``pm.Data``) is built and compiled once per structure, series length and pattern of
    missing values (the exact diffuse period is planned from it) in each process; a series
    swaps its data in (``with_data``), so nothing is recompiled.
    """
    import nutpie
    import pymc as pm

    from ..bayes import DLM
    from .pymc_model import _register

    formula = parse_formula(formula_text)
    mask = ~np.isnan(y)
    prior_key: Any = ()
    for name in sorted(priors or {}):
        try:
            prior_key += ((name, _signature([], [priors[name]])),)
        except _Unkeyable:
            prior_key += ((name, id(priors[name])),)
    key = (formula.terms, prior_key, y.shape[0], mask.tobytes())
    with _LOCK:
        entry = _SAMPLERS.pop(key, None)
        if entry is None:
            with pm.Model() as model:
                data = pm.Data("y", y)
                scale = pm.Data("scale", 1.0)
                values = []
                for name in formula.param_names:
                    prior = (priors or {}).get(name)
                    values.append(_register(model, name, prior if prior is not None
                                            else _default_prior(name, y.shape[0], scale)))
                DLM("obs", formula.build(values), observed=data)
            entry = (threading.Lock(), nutpie.compile_pymc_model(model))
        _SAMPLERS[key] = entry
        while len(_SAMPLERS) > 8:
            del _SAMPLERS[next(iter(_SAMPLERS))]
    return entry


def _nuts_row(formula_text: str, priors: dict | None, y: np.ndarray, options: dict,
              store: str | None = None) -> tuple:
    """Posterior summary of one series by NUTS (nutpie): per parameter mean, sd, the 94% HDI,
    r_hat, bulk and tail ESS, plus the number of divergences; ``converged`` when every r_hat
    is at most 1.01 and no transition diverged.  Returns (row, (S, k) draws of the
    parameters, chains after one another); the whole trace is written to the zarr store
    ``store`` when given."""
    import arviz_stats
    import nutpie

    lock, compiled = _sampler_for(formula_text, priors, y)
    opts = {"draws": 500, "tune": 500, "chains": 2, **options}
    seed = opts.pop("random_seed", None)
    with lock:
        model = compiled.with_data(y=y, scale=float(np.nanstd(y)) or 1.0)
    trace = nutpie.sample(model, seed=seed, progress_bar=False, **opts)
    names = list(parse_formula(formula_text).param_names)
    post = trace["posterior"]
    draws = np.stack([np.asarray(post[n]).reshape(-1) for n in names], axis=1)
    if store is not None:
        trace.to_zarr(store, mode="w", consolidated=False)
    table = arviz_stats.summary(trace, var_names=names, kind="all", ci_prob=0.94,
                                ci_kind="hdi", round_to="none")
    row: dict = {}
    for name in names:
        for col in table.columns:
            row[f"{name} {col}"] = float(table.loc[name, col])
    div = trace["sample_stats"]["diverging"] if "diverging" in trace["sample_stats"] else None
    row["divergences"] = int(np.asarray(div).sum()) if div is not None else 0
    rhat = [row[f"{n} r_hat"] for n in names]
    row.update(log_likelihood=np.nan, converged=bool(np.all(np.asarray(rhat) <= 1.01)
                                                      and row["divergences"] == 0),
               n_iter=int(opts["draws"]))
    return row, draws


def _check_priors(model: Any, method: str, priors: dict | None) -> None:
    """method="map" and "nuts" take a formula; priors name its parameters."""
    if method not in ("map", "nuts"):
        if priors is not None:
            raise ValueError(f"priors are for method='map' or 'nuts'; got method={method!r}")
        return
    if not isinstance(model, str):
        raise TypeError(f"method={method!r} takes a formula (its parameters are named for the "
                        f"priors), e.g. 'level'; got {type(model).__name__}")
    if priors is None:
        return
    if not isinstance(priors, dict):
        raise TypeError(f"priors must be a dict of parameter name to distribution; got "
                        f"{type(priors).__name__}")
    names = parse_formula(model).param_names
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise ValueError(f"priors for {unknown}: not parameters of {model!r}; expected some "
                         f"of {list(names)}")


def _resolve(model: Any, method: str, init_params: Any, first: np.ndarray):
    """(model_fn, init, names) for MLE, or (initial model, None, None) for EM."""
    if isinstance(model, str):
        formula = parse_formula(model)
        start = formula.start(first)
        if method == "em":
            return formula.build(start), None, None
        init = formula_start(formula, first)
        return (model_function(formula), init if init_params is None else init_params,
                formula.unconstrained_names)
    if method == "em":
        if not isinstance(model, StateSpaceModel):
            raise TypeError("method='em' needs a numeric StateSpaceModel or a formula")
        return model, None, None
    if isinstance(model, StateSpaceModel):
        fn, init, names = variance_parameterization(model)
        return fn, init, names
    if init_params is None:
        raise ValueError("init_params is required when model is a function")
    init = np.atleast_1d(np.asarray(init_params, dtype=np.float64))
    return model, init, tuple(f"psi[{i}]" for i in range(init.size))


def _fit_chunk(model: Any, method: str, init_params: Any, items: tuple, kwargs: dict,
               priors: dict | None = None) -> list:
    """Fit the series of one chunk, ``items = (ids, arrays)``; returns (id, row, model or None)
    triples.

    A formula's starting values come from each series' own data; a model's or a function's
    start is shared.  The compiled log-likelihood is looked up once per chunk (by structure);
    MAP adds the compiled log-prior, NUTS samples the compiled PyMC model.
    """
    out = []
    compiled = shared = prior = None
    with _blas_one_thread():
        for sid, y in zip(*items, strict=True):
            # aligned and contiguous: data deserialised by Dask may sit unaligned in a buffer,
            # which the compiled function refuses
            y = np.require(y, dtype=np.float64, requirements=["C", "A"])
            row: dict = {"nobs": int(np.isfinite(y).sum()), "error": ""}
            try:
                _check_series(y)
                if method == "nuts":  # a posterior summary and the draws, no point estimate
                    opts = dict(kwargs)
                    save = opts.pop("save", None)
                    store = None if save is None else str(Path(save) / _store_name(sid))
                    summary, draws = _nuts_row(model, priors, y, opts, store)
                    row.update(summary)
                    out.append((sid, row, draws))
                    continue
                if isinstance(model, str):  # the start from the series' own data
                    spec, init, names = _resolve(model, method, init_params, y)
                else:
                    shared = shared or _resolve(model, method, init_params, y)
                    spec, init, names = shared
                if method in ("mle", "map"):
                    if compiled is None:
                        compiled = _compiled_for(model, spec, init)
                    y2 = np.ascontiguousarray(y[:, None])
                    objective = loglike = compiled.objective(y2)
                    if method == "map":
                        prior = prior or _prior_for(model, priors, y.shape[0])
                        s = float(np.nanstd(y)) or 1.0

                        def objective(x, ll=loglike, lp=prior, s=s):
                            v, g = ll(x)
                            w, h = lp(x, s)
                            return v + w, g + h

                    check_data(y2, n_params=len(init))  # constant, too short: an error
                    fit = maximize(objective, np.asarray(init, dtype=np.float64),
                                   variances=[is_log_variance(n) for n in names],
                                   scale=data_scale(y2), **kwargs)
                    fitted = compiled.model(fit.x)
                    # on each parameter's own scale (variances), as fit_em's columns
                    natural, values, _ = natural_scale(names, fit.x)
                    row.update(zip(natural, values, strict=True))
                    if method == "map":
                        row["log_prior"] = prior(fit.x, s)[0]
                        row["log_likelihood"] = loglike(fit.x)[0]
                    else:
                        row["log_likelihood"] = fit.log_likelihood
                    row.update(converged=fit.converged, n_iter=fit.n_iter)
                else:
                    res = fit_em(y, spec, **kwargs)
                    fitted = res.model
                    row.update({k: v for k, v in res.params.items() if np.ndim(v) == 0})
                    row.update(log_likelihood=res.log_likelihood, converged=res.converged,
                               n_iter=res.n_iter)
                out.append((sid, row, fitted))
            except Exception as err:  # noqa: BLE001 - one series' failure is recorded, never raised
                row.update(log_likelihood=np.nan, converged=False, n_iter=0,
                           error=f"{type(err).__name__}: {err}")
                out.append((sid, row, None))
    return out


def _check_series(y: np.ndarray) -> None:
    """A series' own errors: no observation at all, or inf (NaN is the missing value)."""
    bad = np.flatnonzero(np.isinf(y))
    if bad.size:
        where = ", ".join(str(i) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise ValueError(f"the series contains inf at position {where} (of {y.size}); expected "
                         "finite numbers, NaN for missing values")
    if not np.isfinite(y).any():
        raise ValueError("the series has no observed value")


def fit_many(
    model: StateSpaceModel | str | Callable[[Any], StateSpaceModel],
    data: Any,
    method: str = "mle",
    *,
    init_params: Any = None,
    id_col: str | None = None,
    time_col: str | None = None,
    value_col: str | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    chunk_size: int | None = None,
    timeout: float | None = None,
    priors: dict | None = None,
    save: str | Path | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> ManyResult:
    r"""Fit one structural model to each of many series.

    Parameters
    ----------
    model : StateSpaceModel, str or callable
        As in :func:`pymc_dlm.fit`: a numeric model (variances estimated, its values the
        start), a formula (``"level"``, ``"trend + seasonal(12)"``; starting values from each
        series' own data) or a function ``psi -> StateSpaceModel`` with ``init_params``.
    data : (B, n) array, wide DataFrame or long DataFrame
        Wide: one column per series (NaN-padded), index = time.  Long: rows of
        (``id_col``, [``time_col``], ``value_col``).  Series ids must be unique.
    method : {"mle", "em", "map", "nuts"}
        Maximum likelihood, EM, the posterior mode (MAP) of a formula's parameters under
        ``priors`` (as ``pymc.find_MAP`` of :func:`pymc_dlm.bayesian`'s model: the density of
        the standard deviations themselves, no Jacobian; the table adds ``log_prior``), or
        NUTS (nutpie) per series with those priors: the table has, per parameter, ``mean``,
        ``sd``, ``hdi_3%``, ``hdi_97%``, ``ess_bulk``, ``ess_tail``, ``r_hat``, ``mcse_*``
        and ``divergences``; ``converged`` when every r_hat <= 1.01 and nothing diverged;
        ``log_likelihood`` is NaN.  The PyMC model is compiled once per process, series
        length and missing pattern, and each series swaps its data in.
    init_params : array_like, optional
        Start for a function ``model`` (shared by every series).
    id_col, time_col, value_col : str, optional
        Column names of a long DataFrame.
    save : str or path, optional
        For method="nuts": a directory (created if needed) where each series' whole trace
        (posterior, sample stats, observed data) is written as the zarr store
        ``<id>.zarr`` (characters of the id other than letters, digits, ``.``, ``_``, ``-``
        replaced by ``_``), by the worker that sampled it (on Dask: a path all workers
        share); read one back with ``xarray.open_datatree(path, engine="zarr",
        consolidated=False)``.
    priors : dict, optional
        For method="map" or "nuts": formula parameter name (``"sigma.level"``, ``"sigma.obs"``,
        ``"phi.ar"``) to an unnamed PyMC distribution, e.g. ``pm.HalfNormal.dist(2.0)``
        (``pm.HalfFlat.dist()`` for none).  Defaults as :func:`pymc_dlm.bayesian`:
        ``HalfNormal(sigma=std(y))`` per standard deviation, ``Uniform(-1, 1)`` per AR
        coefficient.
    n_jobs : int, optional
        Worker processes on this machine (``None`` or 1: in this process).  Needs a picklable
        ``model`` (a formula, a StateSpaceModel or a module-level function).
    client : dask.distributed.Client, optional
        Run the chunks as Dask tasks on that cluster instead.  The data are scattered to the
        workers (not put in the task graph), each chunk's result is gathered and released as
        soon as it finishes.
    chunk_size : int, optional
        Series per task (default: the series split evenly over the workers, at most 250).
    timeout : float, optional
        Seconds after which the run stops: pending chunks are cancelled and the series not
        fitted are recorded as "not run".  Without it a run waits as long as it takes (on a
        Dask cluster with no worker, until one joins).
    progress : bool
        Report progress on stderr: a bar with the rate and the time left when stderr is a
        terminal, a line per finished chunk otherwise.
    **kwargs
        To the optimiser (``method``, ``maxiter``, ``tol``; MLE and MAP), to :func:`fit_em`,
        or, for NUTS, ``draws``, ``tune``, ``chains`` (default 500, 500, 2), ``random_seed``
        and ``target_accept``.

    Returns
    -------
    ManyResult
        ``complete`` is False when the run stopped early (timeout, a lost Dask worker or
        ``KilledWorker``, a broken process pool, a closed cluster): the finished series are
        kept, the others have ``error`` "not run: <cause>", and a ``RuntimeWarning`` says so.
        NUTS fits keep each series' parameter draws in ``posterior`` (8 S k bytes a series:
        16 kB for 1,000 draws of two standard deviations) for the posterior predictive
        ``forecast``.

    Raises
    ------
    ValueError
        Duplicate series ids, an unknown method, data of the wrong shape.
    KeyboardInterrupt
        On an interrupt, after cancelling the pending chunks (and terminating the process
        pool); the partial ManyResult is attached as the exception's ``partial`` attribute.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> res = dlm.fit_many("level", np.stack([y, y[::-1], np.full(100, np.nan)]), progress=False)
    >>> res.table["log_likelihood"].round(4).tolist()[:1], res.table["error"].iloc[2]
    ([-633.4646], 'ValueError: the series has no observed value')
    """
    check_option("method", method, ("mle", "em", "map", "nuts"))
    _check_priors(model, method, priors)
    if method == "nuts":
        unknown = sorted(set(kwargs) - set(_NUTS_OPTIONS))
        if unknown:
            raise ValueError(f"method='nuts' takes {list(_NUTS_OPTIONS)}; got {unknown}")
        import importlib.util

        if importlib.util.find_spec("nutpie") is None:
            raise ImportError("method='nuts' samples with nutpie, which is not installed "
                              "(pip install 'pymc-dlm[nutpie]')")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0; got {timeout!r}")
    if save is not None and method != "nuts":
        raise ValueError(f"save= writes NUTS posteriors (method='nuts'); got method={method!r}")
    series = series_table(data, id_col=id_col, time_col=time_col, value_col=value_col)
    if not series:
        raise ValueError("no series to fit")
    ids = list(series)
    if save is not None:
        names = [_store_name(sid) for sid in ids]
        clash = [n for n in dict.fromkeys(names) if names.count(n) > 1]
        if clash:
            raise ValueError(f"series ids that make the same store name {clash[:5]} in save=; "
                             "expected ids distinct after replacing characters other than "
                             "letters, digits, '.', '_' and '-' by '_'")
        Path(save).mkdir(parents=True, exist_ok=True)
        kwargs = {**kwargs, "save": str(Path(save).resolve())}
    arrays = [s.to_numpy(dtype=np.float64) for s in series.values()]
    workers = 1
    if client is not None:
        workers = max(1, sum(client.nthreads().values()))
    elif n_jobs is not None and n_jobs > 1:
        workers = int(n_jobs)
    size = chunk_size or max(1, min(250, -(-len(ids) // workers)))
    chunks = [(ids[i : i + size], arrays[i : i + size]) for i in range(0, len(ids), size)]
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = _Progress(len(ids), progress)
    parts: dict = {}

    def finished(i: int, part: list) -> None:
        parts[i] = part
        bar.update(len(part))

    args = (model, method, init_params, kwargs, priors)
    cause = ""
    try:
        if client is not None:
            cause = _run_dask(client, args, chunks, deadline, finished)
        elif workers > 1:
            cause = _run_pool(workers, args, chunks, deadline, finished)
        else:
            cause = _run_here(args, chunks, deadline, finished)
    except BaseException as err:  # an interrupt: keep what finished, then re-raise
        bar.close()
        err.partial = _assemble(series, chunks, parts, method, f"{type(err).__name__}",
                                model)
        raise
    bar.close()
    if cause.startswith("timeout"):
        cause = f"timeout after {timeout} s" + cause[len("timeout"):]
    result = _assemble(series, chunks, parts, method, cause, model)
    if cause:
        missing = int((result.table["error"].str.startswith("not run")).sum())
        warnings.warn(f"fit_many stopped early ({cause}); {missing} of {len(ids)} series not "
                      "run (see ManyResult.table['error'])", RuntimeWarning, stacklevel=2)
    return result


def _assemble(series: dict, chunks: list, parts: dict, method: str, cause: str,
              model: Any = None) -> ManyResult:
    """The ManyResult of the finished chunks; the series of the others recorded as not run."""
    rows: dict = {}
    models: dict = {}
    for i, (ids, arrays) in enumerate(chunks):
        if i in parts:
            for sid, row, fitted in parts[i]:
                rows[sid] = row
                if fitted is not None:
                    models[sid] = fitted
        else:
            for sid, y in zip(ids, arrays, strict=True):
                rows[sid] = {"nobs": int(np.isfinite(y).sum()), "error": f"not run: {cause}",
                             "log_likelihood": np.nan, "converged": False, "n_iter": 0}
    order = list(series)
    table = pd.DataFrame([rows[sid] for sid in order], index=pd.Index(order, name="id"))
    tail = ["log_likelihood", "converged", "n_iter", "nobs", "error"]
    table = table[[c for c in table.columns if c not in tail] + tail]
    table["converged"] = table["converged"].astype(bool)
    table["n_iter"] = table["n_iter"].astype(int)
    kept = {sid: models[sid] for sid in order if sid in models}
    if method == "nuts":  # the "models" of NUTS fits are their posterior draws
        names = tuple(parse_formula(model).param_names)
        return ManyResult(table=table, models={}, data=series, method=method, cause=cause,
                          posterior=kept, model=model, param_names=names)
    return ManyResult(table=table, models=kept, data=series, method=method, cause=cause,
                      model=model)


def _store_name(sid: Any) -> str:
    """The zarr store of a series in ``save``: its id with characters other than letters,
    digits, ``.``, ``_`` and ``-`` replaced by ``_``, and ``.zarr``."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "_", str(sid)) + ".zarr"


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _run_here(args: tuple, chunks: list, deadline: float | None, finished: Callable) -> str:
    """The chunks in this process, in order; the timeout is checked between chunks."""
    for i, chunk in enumerate(chunks):
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout"
        finished(i, _fit_chunk(args[0], args[1], args[2], chunk, args[3], args[4]))
    return ""


def _run_pool(workers: int, args: tuple, chunks: list, deadline: float | None,
              finished: Callable) -> str:
    """The chunks in a pool of spawned processes; on a timeout, a broken pool or an interrupt
    the pending chunks are cancelled and the worker processes terminated."""
    import multiprocessing as mp
    from concurrent import futures as cf

    pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    cause, clean = "", False
    try:
        index = {pool.submit(_fit_chunk, args[0], args[1], args[2], c, args[3], args[4]): i
                 for i, c in enumerate(chunks)}
        pending = set(index)
        while pending and not cause:
            done, pending = cf.wait(pending, timeout=_remaining(deadline),
                                    return_when=cf.FIRST_COMPLETED)
            if not done:
                cause = "timeout"
            for fut in done:
                try:
                    finished(index.pop(fut), fut.result())
                except Exception as err:  # noqa: BLE001 - BrokenProcessPool, unpicklable...
                    cause = cause or f"{type(err).__name__}: {err}"
        clean = not cause
    finally:
        if not clean:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
    return cause


#: What a failed Dask task or a lost cluster raises (asyncio's CancelledError is not an
#: Exception); KeyboardInterrupt is not among them.
_TASK_ERRORS = (Exception, asyncio.CancelledError)


def _task_cause(err: BaseException) -> str:
    """What stopped a Dask chunk, for the table.  A chunk's task runs where its scattered data
    live, so a worker that dies usually takes both: the scheduler forgets the task and the
    client sees it cancelled rather than ``KilledWorker``."""
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, asyncio.CancelledError | concurrent.futures.CancelledError):
        return f"chunk cancelled by the cluster (a worker holding its data died, or the " \
               f"cluster closed); {text}"
    return text


def _run_dask(client: Any, args: tuple, chunks: list, deadline: float | None,
              finished: Callable) -> str:
    """The chunks as Dask tasks on the client's cluster, their data scattered; results are
    gathered and released as they finish.

    A chunk whose scattered data died with a worker (the scheduler forgets its task, the
    client sees it cancelled) is scattered and submitted again, at most the scheduler's
    ``allowed-failures`` times, as Dask retries a task whose worker died.  On a timeout, a
    chunk Dask gave up on (``KilledWorker``), a lost cluster or an interrupt the pending tasks
    and the scattered data are cancelled."""
    from distributed import wait
    from distributed.client import FuturesCancelledError

    data: list = []
    index: dict = {}
    cause = ""

    def submit(i: int) -> None:
        index[client.submit(_fit_chunk, args[0], args[1], args[2], data[i], args[3], args[4],
                            pure=False)] = i

    try:
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=_remaining(deadline))
            except TimeoutError:
                return "timeout (no Dask worker)"
        retries = _allowed_failures(client)
        tries = [0] * len(chunks)
        data = client.scatter([c for c in chunks], hash=False)
        for i in range(len(chunks)):
            submit(i)
        while index and not cause:
            try:
                done = wait(list(index), timeout=_remaining(deadline),
                            return_when="FIRST_COMPLETED").done
            except TimeoutError:
                return "timeout"
            except FuturesCancelledError:  # wait raises for cancelled ones; handled below
                done = {f for f in index if f.status != "pending"}
            for fut in done:
                i = index.pop(fut)
                try:
                    part = fut.result()
                except _TASK_ERRORS as err:  # KilledWorker, lost data, a closed cluster...
                    lost = isinstance(err, concurrent.futures.CancelledError | asyncio.CancelledError)
                    if lost and tries[i] < retries and not cause:
                        tries[i] += 1
                        data[i].release()
                        data[i] = client.scatter([chunks[i]], hash=False)[0]
                        submit(i)
                        continue
                    cause = cause or _task_cause(err)
                else:
                    finished(i, part)
                fut.release()
                data[i].release()
                data[i] = None
    except _TASK_ERRORS as err:  # the cluster went away
        cause = cause or f"{type(err).__name__}: {err}"
    finally:
        left = [f for f in index] + [d for d in data if d is not None]
        if left:
            try:
                client.cancel(left, force=True)
            except Exception:  # noqa: BLE001, S110 - the client is already closed
                pass
    return cause


def _allowed_failures(client: Any) -> int:
    """The scheduler's ``distributed.scheduler.allowed-failures`` (this process's config when
    the scheduler cannot be asked)."""
    try:  # a lambda travels by value: the scheduler need not have pymc_dlm
        return int(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
    except Exception:  # noqa: BLE001
        import dask

        return int(dask.config.get("distributed.scheduler.allowed-failures"))


class _Progress:
    """Progress on stderr: a bar with rate and time left on a terminal (redrawn at most ten
    times a second), else one line per finished chunk."""

    def __init__(self, total: int, enabled: bool, stream: Any = None):
        self.total, self.enabled = total, bool(enabled)
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.tty = self.enabled and callable(isatty) and bool(isatty())
        self.t0 = time.monotonic()
        self.shown = -np.inf
        self.done = 0
        self.open = False

    def text(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = "?" if not np.isfinite(left) else _clock(left)
        return f"{self.done}/{self.total} series, {rate:.1f}/s, {eta} left"

    def update(self, k: int) -> None:
        self.done += k
        if not self.enabled:
            return
        now = time.monotonic()
        last = self.done >= self.total
        if self.tty:
            if now - self.shown < 0.1 and not last:
                return
            width = 30
            fill = int(width * self.done / max(self.total, 1))
            self.stream.write(f"\rfit_many |{'#' * fill}{'.' * (width - fill)}| {self.text()}")
            self.open = True
        else:
            self.stream.write(f"fit_many: {self.text()}\n")
        self.shown = now
        self.stream.flush()

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
