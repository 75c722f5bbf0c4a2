"""``pymc_dlm.fit_many``: one structural model fitted to many series, locally or on Dask.

Every series gets its own maximum likelihood (or EM) fit.  For MLE the log-likelihood and
gradient are compiled once per model structure with the data as an *input* (not a constant),
so thousands of fits share one compiled function; the per-series work is SciPy's optimiser
calling the fused numba filter and its adjoint.  With a ``dask.distributed.Client`` the
series are split into chunks that run as Dask tasks (each worker compiles once; Dask does the
scheduling).  A series that fails (all missing, a non-finite start...) gets its error recorded
in the table; the others go on.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..estimation.em import fit_em
from ..estimation.mle import _blas_one_thread, _numbers, maximize
from ..estimation.structure import variance_parameterization
from ..numeric import forecast as np_forecast
from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from ..estimation.checks import check_data, data_scale, is_log_variance
from ..estimation.transforms import natural_scale
from .fit import formula_start, model_function
from .formula import parse_formula

__all__ = ["ManyResult", "fit_many", "series_table"]


@dataclass(frozen=True, eq=False)
class ManyResult:
    """Result of :func:`fit_many`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per series (index: the series ids): the estimates (columns named as in
        :func:`fit_mle` / :func:`fit_em`), ``log_likelihood``, ``converged``, ``n_iter``,
        ``nobs`` and ``error`` (empty when the fit ran).
    models : dict
        Series id to the fitted numeric StateSpaceModel (absent for failed series).
    data : dict
        Series id to the series fitted (trailing missing values removed).
    method : str
    """

    table: pd.DataFrame
    models: dict
    data: dict
    method: str

    def forecast(self, steps: int, alpha: float = 0.05) -> pd.DataFrame:
        """Forecasts of every fitted series as one long DataFrame.

        Columns ``id``, ``time`` (each series' index continued), ``mean``, ``mean_se``,
        ``mean_ci_lower``, ``mean_ci_upper``.

        Examples
        --------
        >>> import numpy as np, pymc_dlm as dlm
        >>> y = dlm.datasets.load_nile()
        >>> wide = pd.DataFrame({"a": y, "b": y * 1.1})
        >>> res = dlm.fit_many("level", wide, progress=False)
        >>> res.forecast(2).shape
        (4, 6)
        """
        frames = []
        for sid, model in self.models.items():
            fc = np_forecast(model, self.data[sid], steps).summary_frame(alpha)
            fc = fc.rename_axis("time").reset_index()
            fc.insert(0, "id", sid)
            frames.append(fc)
        return pd.concat(frames, ignore_index=True)


def series_table(data: Any, *, id_col: str | None = None, time_col: str | None = None,
                 value_col: str | None = None) -> dict:
    """Many series as ``{id: pandas.Series}``, trailing missing values removed.

    ``data`` is a (B, n) array (ids 0..B-1), a wide DataFrame (one column per series, the
    index is time) or a long DataFrame with an ``id_col`` column (and optionally ``time_col``
    and ``value_col``; the value column defaults to the one numeric column left).
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
        idx = time_col if time_col is not None else data.groupby(id_col).cumcount()
        data = data.assign(_t=data[time_col] if time_col else idx).pivot(
            index="_t", columns=id_col, values=value_col).rename_axis(time_col or None)
    if isinstance(data, pd.DataFrame):
        out = {c: data[c].astype(float) for c in data.columns}
    else:
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"an array of many series must be (B, n); got shape {arr.shape}")
        out = {i: pd.Series(arr[i]) for i in range(arr.shape[0])}
    trimmed = {}
    for sid, s in out.items():
        observed = np.flatnonzero(np.isfinite(s.to_numpy()))
        trimmed[sid] = s.iloc[: observed[-1] + 1] if observed.size else s
    return trimmed


# --- one compiled log-likelihood per model structure, per process ---------------------------

_CACHE: dict = {}
_LOCK = threading.Lock()


class _Compiled:
    """log-likelihood and gradient of ``model_fn`` with y as an input, per diffuse plan."""

    def __init__(self, model_fn: Callable, init: np.ndarray):
        import pytensor
        import pytensor.tensor as pt

        from .. import symbolic

        self.psi = pt.dvector("psi")
        self.y = pt.dmatrix("y")
        self.spec = model_fn(self.psi)
        if not isinstance(self.spec, StateSpaceModel):
            raise TypeError(f"model_fn must return a StateSpaceModel; got {type(self.spec).__name__}")
        self.sys = symbolic.system_tensors(self.spec)
        self.Z, self.T = (_numbers([self.psi], [x], init)[0] for x in (self.sys.Z, self.sys.T))
        self.found = symbolic.leaves(self.spec)
        mode = pytensor.compile.mode.Mode(linker="py", optimizer=None)
        self.leaf_fn = pytensor.function([self.psi], self.found, mode=mode, on_unused_input="ignore")
        self.by_plan: dict = {}
        self.lock = threading.Lock()

    def function(self, y: np.ndarray) -> Callable:
        import pytensor
        import pytensor.tensor as pt

        from .. import fused, symbolic

        plan = symbolic.diffuse_plan(self.Z, self.T, np.diag(np.asarray(self.spec.diffuse, float)),
                                     ~np.isnan(y))
        if plan not in self.by_plan:
            ll = fused.loglike(self.sys, self.y, plan)
            self.by_plan[plan] = pytensor.function([self.psi, self.y], [ll, pt.grad(ll, self.psi)],
                                                   on_unused_input="ignore")
        return self.by_plan[plan]

    def model(self, x: np.ndarray) -> StateSpaceModel:
        values = self.leaf_fn(x) if self.found else []
        return self.spec.substitute({id(leaf): np.asarray(v)
                                     for leaf, v in zip(self.found, values, strict=True)})


def _resolve(model: Any, method: str, init_params: Any, first: pd.Series):
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


def _fit_chunk(model: Any, method: str, init_params: Any, items: list, kwargs: dict) -> list:
    """Fit the (id, series) pairs of one chunk; returns (id, row, model or None) triples.

    A formula's starting values come from each series' own data; a model's or a function's
    start is shared.
    """
    out = []
    with _blas_one_thread():
        for sid, s in items:
            y = s.to_numpy(dtype=np.float64)
            row: dict = {"nobs": int(np.isfinite(y).sum()), "error": ""}
            try:
                if row["nobs"] == 0:
                    raise ValueError("the series has no observed value")
                spec, init, names = _resolve(model, method, init_params, s)
                if method == "mle":
                    check_data(y[:, None], n_params=len(init))  # constant, too short: an error
                    compiled = _compiled_for(model, spec, init)
                    y2 = np.ascontiguousarray(y[:, None])
                    with compiled.lock:
                        fn = compiled.function(y2)
                        fit = maximize(lambda x, fn=fn, y2=y2: fn(x, y2),
                                       np.asarray(init, dtype=np.float64),
                                       variances=[is_log_variance(n) for n in names],
                                       scale=data_scale(y2), **kwargs)
                        fitted = compiled.model(fit.x)
                    # on each parameter's own scale (variances), as fit_em's columns
                    natural, values, _ = natural_scale(names, fit.x)
                    row.update(zip(natural, values, strict=True))
                    row.update(log_likelihood=fit.log_likelihood, converged=fit.converged,
                               n_iter=fit.n_iter)
                else:
                    res = fit_em(s, spec, **kwargs)
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


def _compiled_for(model: Any, model_fn: Callable, init: Any) -> _Compiled:
    """The process's compiled log-likelihood for this model (one per formula or object)."""
    key = model if isinstance(model, str) else id(model)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is None or entry[0] is not model:  # the entry holds the model: no id reuse
            entry = _CACHE[key] = (model, _Compiled(model_fn, np.asarray(init, dtype=np.float64)))
            while len(_CACHE) > 8:
                del _CACHE[next(iter(_CACHE))]
        return entry[1]


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
        (``id_col``, [``time_col``], ``value_col``).
    method : {"mle", "em"}
    init_params : array_like, optional
        Start for a function ``model`` (shared by every series).
    id_col, time_col, value_col : str, optional
        Column names of a long DataFrame.
    n_jobs : int, optional
        Worker processes on this machine (``None`` or 1: in this process).  Needs a picklable
        ``model`` (a formula, a StateSpaceModel or a module-level function).
    client : dask.distributed.Client, optional
        Run the chunks as Dask tasks on that cluster instead.
    chunk_size : int, optional
        Series per task (default: the series split evenly over the workers, at most 250).
    progress : bool
        Print the number of series done to stderr as chunks finish.
    **kwargs
        To the optimiser (``method``, ``maxiter``, ``tol``; MLE) or to :func:`fit_em`.

    Returns
    -------
    ManyResult

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> res = dlm.fit_many("level", np.stack([y, y[::-1], np.full(100, np.nan)]), progress=False)
    >>> res.table["log_likelihood"].round(4).tolist()[:1], res.table["error"].iloc[2]
    ([-633.4646], 'ValueError: the series has no observed value')
    """
    check_option("method", method, ("mle", "em"))
    series = series_table(data, id_col=id_col, time_col=time_col, value_col=value_col)
    if not series:
        raise ValueError("no series to fit")
    items = list(series.items())
    workers = 1
    if client is not None:
        workers = max(1, sum(client.nthreads().values()))
    elif n_jobs is not None and n_jobs > 1:
        workers = int(n_jobs)
    size = chunk_size or max(1, min(250, -(-len(items) // workers)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    done = 0

    def report(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            print(f"fit_many: {done}/{len(items)} series", file=sys.stderr, flush=True)

    results: list = []
    if client is not None:
        futures = client.map(_fit_chunk, [model] * len(chunks), [method] * len(chunks),
                             [init_params] * len(chunks), chunks, [kwargs] * len(chunks),
                             pure=False)
        from dask.distributed import as_completed

        for fut in as_completed(futures):
            part = fut.result()
            results += part
            report(len(part))
    elif workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed as done_iter

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_fit_chunk, model, method, init_params, c, kwargs) for c in chunks]
            for fut in done_iter(futs):
                part = fut.result()
                results += part
                report(len(part))
    else:
        for c in chunks:
            part = _fit_chunk(model, method, init_params, c, kwargs)
            results += part
            report(len(part))
    order = {sid: i for i, (sid, _) in enumerate(items)}
    results.sort(key=lambda r: order[r[0]])
    table = pd.DataFrame([r[1] for r in results], index=pd.Index([r[0] for r in results],
                                                                 name="id"))
    front = [c for c in table.columns if c not in ("log_likelihood", "converged", "n_iter",
                                                    "nobs", "error")]
    table = table[front + ["log_likelihood", "converged", "n_iter", "nobs", "error"]]
    models = {sid: m for sid, _, m in results if m is not None}
    return ManyResult(table=table, models=models, data=series, method=method)
