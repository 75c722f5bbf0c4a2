r"""Maximum likelihood with exact gradients: ``fit_mle``.

The user's ``model_fn`` maps an unconstrained parameter vector (a PyTensor vector) to a
:class:`~pymc_dlm.spec.StateSpaceModel`; the log-likelihood (the fused engine: numba filter
and its adjoint pass, D&K 2012 eqs. 4.21-4.26, 7.2, exact diffuse steps of sections 5.2 and
6.4) and its gradient are compiled once, and SciPy's optimiser maximises it.  Standard
errors come from the observed information :math:`-\partial^2 \ell / \partial\psi^2` at the
optimum, taken by central differences of the exact gradient (the adjoint Op has no second
derivative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.linalg
import scipy.optimize
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import io_toposort
from threadpoolctl import ThreadpoolController

from .. import fused, symbolic
from ..numeric.filter import prepare_y
from ..spec.model import StateSpaceModel
from .report import FitStatistics
from .structure import variance_parameterization

__all__ = ["MLEResult", "Maximum", "fit_mle", "maximize"]


@dataclass(frozen=True, eq=False, repr=False)
class MLEResult(FitStatistics):
    """Result of :func:`fit_mle`.

    Attributes
    ----------
    model : StateSpaceModel
        The fitted model, with numbers.
    params : (k,) ndarray
        The maximiser :math:`\\hat\\psi` (unconstrained parameters).
    log_likelihood : float
    converged : bool
        What the optimiser reported or, when it stopped without success, whether the end
        point is stationary: max |gradient| <= 1e-5 max(1, |log-likelihood|) (L-BFGS-B's line
        search gives up on flat optima, e.g. a variance going to zero on the log scale);
        ``message`` says which.
    n_iter : int
    bse : (k,) ndarray
        Standard errors of ``params``: square roots of the diagonal of the inverse observed
        information; NaN when the information matrix is not positive definite.
    cov_params : (k, k) ndarray
    hessian_method : str
        How the Hessian was taken ("central differences of the exact gradient").
    nobs : int
        Number of observed entries of y.
    df_model : int
        k parameters plus the number w of diffuse initial states (D&K 2012, section 7.4).
    aic, bic : float
        :math:`-2\\ell + 2(k + w)` and :math:`-2\\ell + (k + w)\\log n_{obs}`,
        as statsmodels.
    message : str
    param_names : tuple of str
    data : array_like, Series or DataFrame
        The observations (for :meth:`filter`, :meth:`smooth`, :meth:`forecast`, :meth:`plot`).
    """

    model: StateSpaceModel
    params: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    bse: np.ndarray
    cov_params: np.ndarray
    hessian_method: str
    nobs: int
    message: str
    param_names: tuple = field(default=())
    data: Any = None

    @property
    def df_model(self) -> int:
        """Parameters plus diffuse initial states (D&K 2012, section 7.4; statsmodels)."""
        return self.params.size + int(np.sum(self.model.diffuse))


    def summary(self) -> str:
        """A table like statsmodels': estimate, standard error, z, p-value per parameter."""
        from scipy import stats

        z = self.params / self.bse
        p = 2.0 * stats.norm.sf(np.abs(z))
        lines = self._header("Maximum likelihood (pymc-dlm fit_mle)")
        lines += [
            f"{'parameter':<16}{'estimate':>14}{'std err':>12}{'z':>9}{'P>|z|':>9}",
        ]
        for name, est, se, zi, pi in zip(self.param_names, self.params, self.bse, z, p, strict=True):
            lines.append(f"{name:<16}{est:>14.6g}{se:>12.4g}{zi:>9.3f}{pi:>9.3f}")
        lines.append(f"standard errors: {self.hessian_method}")
        return "\n".join(lines + self._coefficient_lines())



def _compile(model_fn: Callable[[Any], StateSpaceModel], y: Any, init: np.ndarray):
    psi = pt.dvector("psi")
    spec = model_fn(psi)
    if not isinstance(spec, StateSpaceModel):
        raise TypeError(f"model_fn must return a StateSpaceModel; got {type(spec).__name__}")
    y_arr, _ = prepare_y(spec, y)
    # our own graph: no creation tracebacks on its nodes (they cost a third of a small fit)
    with pytensor.config.change_flags(traceback__limit=0):
        sys = symbolic.system_tensors(spec)
        _check_parameters_used(psi, sys, init.size)
        Z, T = (_numbers([psi], [x], init)[0] for x in (sys.Z, sys.T))
        plan = symbolic.diffuse_plan(Z, T, np.diag(np.asarray(spec.diffuse, float)),
                                     ~np.isnan(y_arr))
        ll = fused.loglike(sys, y_arr, plan)
        fn = _compiled(psi, ll)
    found = symbolic.leaves(spec)
    return spec, y_arr, plan, fn, found, lambda x: _numbers([psi], found, x)


_GRAD_TOL = 1e-5  # relative gradient size accepted as stationary when the optimiser gives up
_CONTROLLER: list = []


def _blas_one_thread() -> Any:
    """BLAS held to one thread (the controller scans the loaded libraries once per process,
    ~5 ms, instead of on every fit)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")
_FUNCTIONS: dict = {}  # graph key -> compiled function, newest last
#: How fit_mle compiles: numba, with PyTensor's FAST_COMPILE rewrites.  The graph is the small
#: map from the parameters to the matrices and one likelihood Op, so FAST_RUN's rewrites buy
#: nothing at run time (Nile: 10-15 us per log-likelihood + gradient either way) and cost
#: ~0.15 s of a first fit in a new process (measured: 0.49 s -> 0.31 s, median of 5).
_MODE = Mode(linker="numba", optimizer="fast_compile")


def _graph_key(psi: Any, ll: Any) -> Any:
    """A hashable description of the graph from ``psi`` to ``ll``: each node's Op (equal
    Ops compare equal by their properties), where its inputs come from, and the type and
    bytes of every constant.  Equal keys mean the same computation; ``None`` when the graph
    reads an input other than psi (a shared variable), which is not memoised."""
    ids: dict = {psi: ("psi",)}
    parts = []
    for i, node in enumerate(io_toposort([psi], [ll])):
        ins = []
        for x in node.inputs:
            if x in ids:
                ins.append(ids[x])
            elif isinstance(x, Constant):
                data = np.asarray(x.data)
                ins.append(("const", x.type, data.dtype.str, data.shape, data.tobytes()))
            else:
                return None
        parts.append((node.op, tuple(ins)))
        for j, out in enumerate(node.outputs):
            ids[out] = ("node", i, j)
    return tuple(parts), ids.get(ll)


def _compiled(psi: Any, ll: Any) -> Any:
    """The compiled log-likelihood and gradient; reused when an earlier fit built the same
    graph (same model structure, data and constants: :func:`_graph_key`), so repeated fits
    skip PyTensor's graph rewriting, the bulk of a small fit's time."""
    try:
        key = _graph_key(psi, ll)
        hash(key)
    except TypeError:  # an Op without hashable properties: compile afresh
        key = None
    if key is not None and key in _FUNCTIONS:
        return _FUNCTIONS[key]
    fn = pytensor.function([psi], [ll, pt.grad(ll, psi)], on_unused_input="ignore",
                           mode=_MODE)
    if key is not None:
        _FUNCTIONS[key] = fn
        while len(_FUNCTIONS) > 8:
            del _FUNCTIONS[next(iter(_FUNCTIONS))]
    return fn


def _numbers(inputs: list, outputs: list, value: np.ndarray) -> list:
    """Values of a few small expressions at ``value``: each node's ``perform`` in
    topological order (PyTensor's Python implementation, no compilation, no rewrites)."""
    env: dict = dict(zip(inputs, [np.asarray(value, dtype=np.float64)], strict=False))
    for node in io_toposort(inputs, outputs):
        args = [env[x] if x in env else _root_value(x) for x in node.inputs]
        storage = [[None] for _ in node.outputs]
        node.op.perform(node, args, storage)
        env.update(zip(node.outputs, (cell[0] for cell in storage), strict=True))
    return [env[x] if x in env else _root_value(x) for x in outputs]


def _root_value(x: Any) -> Any:
    if isinstance(x, Constant):
        return x.data
    if isinstance(x, SharedVariable):
        return x.get_value(borrow=True)
    raise ValueError(f"model_fn's model depends on {x}, which is neither its parameter "
                     "vector nor a constant")


def _check_parameters_used(psi: Any, sys: Any, k: int) -> None:
    """Raise when some entry of psi does not enter the model (it would stay at its start,
    with a singular information matrix): the entries read by constant indexing must cover
    0..k-1 unless psi is also used as a whole."""
    from pytensor.graph.traversal import ancestors, applys_between
    from pytensor.tensor.subtensor import Subtensor

    outs = [x for x in sys[:9] if isinstance(x, pytensor.graph.basic.Variable)]
    if psi not in set(ancestors(outs)):
        raise ValueError("model_fn does not use its parameter vector")
    used, whole = set(), False
    for node in applys_between([psi], outs):
        if psi not in node.inputs:
            continue
        if isinstance(node.op, Subtensor) and node.inputs[0] is psi and len(node.inputs) == 2:
            try:
                i = int(pytensor.tensor.get_underlying_scalar_constant_value(node.inputs[1]))
            except Exception:  # a symbolic index: assume every entry is used
                whole = True
                continue
            if not -k <= i < k:
                raise ValueError(f"init_params has {k} entries, but model_fn reads psi[{i}]")
            used.add(i % k)
            continue
        whole = True
    missing = sorted(set(range(k)) - used)
    if not whole and missing:
        raise ValueError(f"init_params has {k} entries, but model_fn never uses psi{missing}; "
                         "pass one starting value per parameter")


def _hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Central differences of the exact gradient, step 1e-5 * max(1, |x_j|); symmetrised."""
    k = x.size
    H = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(x[j]))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (grad(x + e) - grad(x - e)) / (2.0 * h)
    return 0.5 * (H + H.T)


def fit_mle(model_fn: Callable[[Any], StateSpaceModel] | StateSpaceModel, y: Any,
            init_params: Any = None, *,
            method: str = "L-BFGS-B", param_names: Any = None, maxiter: int = 1000,
            tol: float | None = None) -> MLEResult:
    r"""Maximum likelihood estimate of the parameters of ``model_fn`` (exact gradients).

    Parameters
    ----------
    model_fn : callable or StateSpaceModel
        ``model_fn(psi) -> StateSpaceModel`` with ``psi`` a PyTensor vector of unconstrained
        parameters, e.g. ``lambda p: LocalLevel(pt.exp(p[0]), pt.exp(p[1]))`` (any
        differentiable expression; see :mod:`pymc_dlm.estimation.transforms`).  A numeric
        StateSpaceModel instead estimates its free variances (the structure kept as in
        :func:`fit_em`), as log-variances or log-Cholesky factors
        (:func:`~pymc_dlm.estimation.structure.variance_parameterization`), starting from its
        values.
    y : (n,) or (n, p) array_like, Series or DataFrame
        Observations, NaN for missing.
    init_params : (k,) array_like
        Starting point; required with a function, taken from the model otherwise.
    method : str, default "L-BFGS-B"
        A gradient-based :func:`scipy.optimize.minimize` method ("L-BFGS-B", "BFGS", "CG",
        "Newton-CG" is not offered: no exact Hessian).
    param_names : sequence of str, optional
        Names for the summary (``psi[0]``... by default).
    maxiter : int
    tol : float, optional
        Passed to :func:`scipy.optimize.minimize`.

    Returns
    -------
    MLEResult

    Notes
    -----
    The compiled log-likelihood and gradient of the last few distinct graphs are kept: a
    repeated fit of the same model structure on the same data (any parameter values) skips
    PyTensor's compilation (Nile: about 20 ms per fit instead of 0.3 s).

    Examples
    --------
    Durbin and Koopman's Nile local level, standard deviations as exp of the parameters:

    >>> import numpy as np, pytensor.tensor as pt
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.estimation import fit_mle
    >>> res = fit_mle(lambda p: dlm.LocalLevel(pt.exp(p[0]), pt.exp(p[1])),
    ...               dlm.datasets.load_nile(), [np.log(30.0), np.log(100.0)])
    >>> round(float(np.exp(2 * res.params[0]))), round(float(np.exp(2 * res.params[1])))
    (1469, 15099)
    >>> round(res.log_likelihood, 4)
    -633.4646

    Or hand it the model itself: its variances are estimated, starting from its values.

    >>> res = fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
    >>> res.param_names, np.round(np.exp(res.params))
    (('log sigma2.obs', 'log sigma2.level'), array([15099.,  1469.]))
    """
    if isinstance(model_fn, StateSpaceModel):
        if init_params is not None:
            raise ValueError("init_params is read off the model when model_fn is a "
                             "StateSpaceModel; pass the starting values in the model")
        model_fn, init_params, auto_names = variance_parameterization(model_fn)
        param_names = auto_names if param_names is None else param_names
    elif init_params is None:
        raise ValueError("init_params is required when model_fn is a function")
    allowed = ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr")
    if method not in allowed:
        raise ValueError(f"method must be one of {allowed}; got {method!r}")
    init = np.atleast_1d(np.asarray(init_params, dtype=np.float64))
    if init.ndim != 1 or not np.all(np.isfinite(init)):
        raise ValueError(f"init_params must be a finite vector; got {init_params!r}")
    k = init.size
    names = tuple(f"psi[{i}]" for i in range(k)) if param_names is None else tuple(param_names)
    if len(names) != k:
        raise ValueError(f"param_names has {len(names)} names for {k} parameters")
    spec, y_arr, plan, fn, found, leaf_fn = _compile(model_fn, y, init)

    with _blas_one_thread():
        fit = maximize(fn, init, method=method, maxiter=maxiter, tol=tol)
    values = leaf_fn(fit.x) if found else []
    fitted = spec.substitute({id(leaf): np.asarray(v) for leaf, v in zip(found, values, strict=True)})
    return MLEResult(
        model=fitted, params=fit.x, log_likelihood=fit.log_likelihood, converged=fit.converged,
        n_iter=fit.n_iter, bse=fit.bse, cov_params=fit.cov,
        hessian_method="central differences of the exact gradient",
        nobs=int(np.count_nonzero(~np.isnan(y_arr))),
        message=fit.message, param_names=names, data=y,
    )


class Maximum(NamedTuple):
    """What :func:`maximize` found."""

    x: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    message: str
    bse: np.ndarray
    cov: np.ndarray


def maximize(fn: Callable[[np.ndarray], tuple], init: np.ndarray, *, method: str = "L-BFGS-B",
             maxiter: int = 1000, tol: float | None = None) -> Maximum:
    """Maximise a log-likelihood given ``fn(x) -> (ll, gradient)`` with SciPy; standard errors
    from the observed information (central differences of the gradient).

    Raises ``ValueError`` when the log-likelihood is not finite at ``init``.
    """
    k = init.size
    ll0, _ = fn(init)
    if not np.isfinite(ll0):
        raise ValueError(f"the log-likelihood is not finite at init_params ({ll0}); choose "
                         "a starting point where every F_t is positive definite")

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = fn(x)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(x)
        return -float(ll), -np.asarray(g, dtype=np.float64)

    options: dict[str, Any] = {"maxiter": maxiter}
    if method == "L-BFGS-B" and tol is None:
        # SciPy's default ftol (2.2e-9 relative) stops early on flat likelihoods, e.g.
        # variances of order 1e4 under softplus; ask for a stationary point instead
        options.update(ftol=1e-15, gtol=1e-7)
    opt = scipy.optimize.minimize(objective, init, jac=True, method=method, tol=tol,
                                  options=options)
    x = np.asarray(opt.x, dtype=np.float64)
    ll, g_end = fn(x)
    converged, message = bool(opt.success), str(opt.message)
    g_max = float(np.max(np.abs(g_end))) if k else 0.0
    if not converged and np.isfinite(ll) and g_max <= _GRAD_TOL * max(1.0, abs(float(ll))):
        # L-BFGS-B's line search gives up on flat optima (a variance going to zero under a
        # log parameterisation) although the point is stationary
        converged = True
        message += f" (stationary point accepted: max |gradient| = {g_max:.2g})"
    H = _hessian(lambda z: np.asarray(fn(z)[1], dtype=np.float64), x)
    try:
        c = scipy.linalg.cho_factor(-H)
        cov = scipy.linalg.cho_solve(c, np.eye(k))
        bse = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
        bse = np.full(k, np.nan)
    return Maximum(x, float(ll), converged, int(getattr(opt, "nit", 0)), message, bse, cov)
