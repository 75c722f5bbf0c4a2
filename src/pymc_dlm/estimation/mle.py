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

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
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
from .checks import SMALL_VARIANCE, apply_fixed, check_data, data_scale, is_log_variance
from .report import FitStatistics
from .structure import variance_parameterization
from .transforms import natural_scale

__all__ = ["MLEResult", "Maximum", "OPTIMIZERS", "fit_mle", "maximize"]


@dataclass(frozen=True, eq=False, repr=False)
class MLEResult(FitStatistics):
    r"""Result of :func:`fit_mle`.

    Attributes
    ----------
    model : StateSpaceModel
        The fitted model, with numbers.
    params : (k,) ndarray
        The maximiser :math:`\hat\psi` (unconstrained parameters; ``-inf`` for a
        log-variance at zero).
    log_likelihood : float
    converged : bool
        True only when the first-order conditions hold at ``params``: every interior free
        parameter has max |gradient| <= 1e-5 max(1, |log-likelihood|), every log-variance at
        zero satisfies the KKT sign condition (the log-likelihood does not rise when it leaves
        zero), every singular full covariance block of H or Q satisfies the condition on the
        cone of positive semi-definite matrices (:func:`fit_mle`, Notes), and the observed
        information of the interior parameters is positive definite; ``message`` says what
        was measured.
    n_iter : int
    bse : (k,) ndarray
        Standard errors of ``params``: square roots of the diagonal of the inverse observed
        information of the interior free parameters; NaN for fixed ones and for those at zero.
    cov_params : (k, k) ndarray
    hessian_method : str
        How the Hessian was taken ("central differences of the exact gradient").
    nobs : int
        Number of observed entries of y.
    df_model : int
        Free parameters (not fixed) plus the number w of diffuse initial states (D&K 2012,
        section 7.4).
    aic, bic : float
        :math:`-2\ell + 2(k + w)` and :math:`-2\ell + (k + w)\log n_{obs}`,
        as statsmodels.
    message : str
    param_names : tuple of str
    data : array_like, Series or DataFrame
        The observations (for :meth:`filter`, :meth:`smooth`, :meth:`forecast`, :meth:`plot`).
    boundary : (k,) bool ndarray
        Log-variances returned at zero.
    fixed : (k,) bool ndarray
        Parameters held at their given value.
    restarts : int
        Restarts from the data-based grid (:func:`maximize`).
    convention : {"statsmodels", "kfas"}
        The convention of ``log_likelihood`` (and so of AIC and BIC).
    burn : int
        Steps t <= burn left out of the likelihood.
    n_diffuse_obs : int
        Diffuse observation elements in the likelihood (after the burn-in): those whose
        :math:`\tfrac12\log 2\pi` the KFAS convention drops.
    estimates, estimates_bse : pandas.Series
        The parameters on their own scale (``sigma2.obs`` for ``log sigma2.obs``,
        ``phi.ar`` for ``atanh phi.ar``) with delta-method standard errors.
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
    boundary: Any = None
    fixed: Any = None
    restarts: int = 0
    convention: str = "statsmodels"
    burn: int = 0
    n_diffuse_obs: int = 0

    def _mask(self, which: Any) -> np.ndarray:
        return np.zeros(self.params.size, bool) if which is None else np.asarray(which, bool)

    @property
    def df_model(self) -> int:
        """Free parameters plus diffuse initial states (D&K 2012, section 7.4; statsmodels)."""
        return int(np.sum(~self._mask(self.fixed))) + int(np.sum(self.model.diffuse))

    def _natural(self) -> tuple:
        names, values, cov = natural_scale(self.param_names, self.params, self.cov_params)
        return names, values, np.sqrt(np.diag(cov))

    @property
    def estimates(self) -> Any:
        """The parameters on their own scale, as a pandas Series (names without the map)."""
        import pandas as pd

        names, values, _ = self._natural()
        return pd.Series(values, index=list(names), name="estimate")

    @property
    def estimates_bse(self) -> Any:
        """Delta-method standard errors of :attr:`estimates` (NaN at zero and when fixed)."""
        import pandas as pd

        names, _, se = self._natural()
        return pd.Series(se, index=list(names), name="std err")

    def summary(self, alpha: float = 0.05) -> str:
        """A table like statsmodels': each parameter on its own scale (a variance, not its
        log) with its delta-method standard error, z-test of zero and ``1 - alpha``
        confidence interval; "0 (at boundary)" without a test for a variance at zero,
        "fixed" for a fixed one; then residual diagnostics (Ljung-Box, Jarque-Bera, H)."""
        from scipy import special

        names, values, se = self._natural()
        zq = float(-special.ndtri(alpha / 2.0))
        lines = self._header("Maximum likelihood (pymc-dlm fit_mle)")
        lines.append(f"log-likelihood convention {self.convention}   diffuse observation "
                     f"elements {self.n_diffuse_obs}"
                     + (f"   burn-in: t <= {self.burn} left out" if self.burn else ""))
        lines += [
            f"{'parameter':<24}{'estimate':>14}{'std err':>12}{'z':>9}{'P>|z|':>9}"
            f"{'[' + format(alpha / 2, 'g'):>12}{format(1 - alpha / 2, 'g') + ']':>12}",
        ]
        at_zero, fixed = self._mask(self.boundary), self._mask(self.fixed)
        for i, name in enumerate(names):
            if at_zero[i]:
                lines.append(f"{name:<24}{'0 (at boundary)':>26}")
                continue
            if fixed[i]:
                lines.append(f"{name:<24}{values[i]:>14.6g}{'fixed':>12}")
                continue
            z = values[i] / se[i] if se[i] > 0 else np.nan
            p = 2.0 * float(special.ndtr(-abs(z)))
            lo, hi = values[i] - zq * se[i], values[i] + zq * se[i]
            lines.append(f"{name:<24}{values[i]:>14.6g}{se[i]:>12.4g}{z:>9.3f}{p:>9.3f}"
                         f"{lo:>12.5g}{hi:>12.5g}")
        lines.append(f"standard errors: {self.hessian_method}, delta method to each "
                     "parameter's scale")
        lines += self._diagnostic_lines()
        return "\n".join(lines + self._coefficient_lines())


def _compile(model_fn: Callable[[Any], StateSpaceModel], y: Any, init: np.ndarray, *,
             convention: str = "statsmodels", burn: int = 0):
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
        ll = fused.loglike(sys, y_arr, plan, convention=convention, burn=burn)
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


_LOG = logging.getLogger("pymc_dlm")
_ANNOUNCED: list = []
#: the numba kernels a likelihood and its gradient need (module, function prefix)
_KERNELS = (("fused", "native._c_grad-"), ("numeric", "adjoint._backward_loop-"),
            ("numeric", "kernels."))


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds the likelihood kernels (an index file newer than
    its source for each); a first compile without them takes tens of seconds."""
    from numba.core import config as numba_config
    from numba.core.caching import UserProvidedCacheLocator

    root = Path(__file__).resolve().parent.parent
    for package, prefix in _KERNELS:
        source = root / package / (prefix.split(".")[0] + ".py")
        where = root / package / "__pycache__"
        if numba_config.CACHE_DIR:  # NUMBA_CACHE_DIR: numba's own place for the source file
            where = Path(numba_config.CACHE_DIR) / UserProvidedCacheLocator \
                .get_suitable_cache_subpath(str(source))
        index = list(where.glob(prefix + "*.nbi"))
        if not index or max(f.stat().st_mtime for f in index) < source.stat().st_mtime:
            return False
    return True


def announce_first_compile() -> None:
    """Say once per process, on the ``pymc_dlm`` logger (WARNING, so Python's default handler
    prints it), that the coming compile builds the numba kernels and will take a while."""
    if _ANNOUNCED or kernels_cached():
        return
    _ANNOUNCED.append(True)
    _LOG.warning("pymc_dlm: compiling the Kalman filter kernels for the first time (numba's "
                 "on-disk cache is empty): this takes about 30 s to 2 minutes, once; later "
                 "fits load them in well under a second")


#: seconds a compile may take before :func:`compile_notice` says what is happening
NOTICE_AFTER = 3.0


@contextlib.contextmanager
def compile_notice(after: float | None = None) -> Any:
    """Log (``pymc_dlm`` logger, WARNING) once the body has run ``after`` seconds
    (:data:`NOTICE_AFTER`): a new model structure's likelihood is being compiled, which
    happens once per structure and is cached on disk (a newcomer should not think it hangs)."""
    timer = threading.Timer(NOTICE_AFTER if after is None else after, _LOG.warning, args=(
        "pymc_dlm: compiling the likelihood and gradient of a new model structure (once per "
        "structure, then cached on disk); this can take up to a minute or two",))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


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
    announce_first_compile()
    with compile_notice():
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


def _entries_read(node: Any, k: int) -> set | None:
    """The entries of psi that a ``Subtensor`` node reads (an integer index or a slice with
    constant bounds); ``None`` when that is not known from the graph."""
    from pytensor.tensor.subtensor import get_idx_list

    idx = get_idx_list(node.inputs, node.op.idx_list)
    if len(idx) != 1:
        return None

    def const(x: Any) -> Any:
        if x is None:
            return None
        return int(pytensor.tensor.get_underlying_scalar_constant_value(x))

    try:
        if isinstance(idx[0], slice):
            return set(range(k)[slice(const(idx[0].start), const(idx[0].stop),
                                      const(idx[0].step))])
        i = const(idx[0])
    except Exception:  # a symbolic index or bound
        return None
    if not -k <= i < k:
        raise ValueError(f"init_params has {k} entries, but model_fn reads psi[{i}]")
    return {i % k}


def _check_parameters_used(psi: Any, sys: Any, k: int) -> None:
    """Raise when some entry of psi does not enter the model (it would stay at its start,
    with a singular information matrix): the entries read by constant indexing or slicing
    must cover 0..k-1 unless psi is also used as a whole."""
    from pytensor.graph.traversal import ancestors, applys_between
    from pytensor.tensor.subtensor import Subtensor

    outs = [x for x in sys[:9] if isinstance(x, pytensor.graph.basic.Variable)]
    if psi not in set(ancestors(outs)):
        raise ValueError("model_fn does not use its parameter vector")
    used: set = set()
    for node in applys_between([psi], outs):
        if psi not in node.inputs:
            continue
        read = (_entries_read(node, k)
                if isinstance(node.op, Subtensor) and node.inputs[0] is psi else None)
        if read is None:
            return  # psi used as a whole (or by a symbolic index): every entry may enter
        used |= read
    missing = sorted(set(range(k)) - used)
    if missing:
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


def _scaled(model_fn: Callable) -> Callable:
    r"""``psi -> model_fn(psi[:-1])`` with H, Q and P1 times :math:`e^{\psi_{-1}}`."""
    def scaled_fn(psi: Any) -> StateSpaceModel:
        spec = model_fn(psi[:-1])
        sys = symbolic.system_tensors(spec)
        e = pt.exp(psi[-1])
        return spec.replace(H=sys.H * e, Q=sys.Q * e, P1=sys.P1 * e)

    return scaled_fn


def _fit_concentrated(model_fn: Callable, y: Any, init: np.ndarray, fixed: np.ndarray,
                      variances: np.ndarray, optimizer: str, maxiter: int,
                      tol: float | None, options: dict) -> tuple:
    r"""fit_mle's ``concentrate_scale=True``: maximise the profile
    :math:`\ell_c(\psi) = \max_{\sigma^2}\ell(\psi, \sigma^2)`.

    With :math:`s = \log\sigma^2`, :math:`\ell(\psi, s) = C(\psi) - n_* s/2 - S(\psi)e^{-s}/2`
    (Harvey 1989, eq. 3.4.5: the diffuse steps' :math:`\log|F_\infty|` do not depend on the
    scale), so :math:`\partial\ell/\partial s` at :math:`s = 0` gives :math:`S = 2g_s + n_*`,
    :math:`\hat s = \log(S/n_*)`, and by the envelope theorem
    :math:`
abla\ell_c(\psi) = 
abla_\psi\ell(\psi, \hat s)`.  :math:`n_*` is read once from
    :math:`g_s` at two scales.
    """
    full_init = np.append(init, 0.0)
    spec, y_arr, plan, fn_full, found, leaf_fn = _compile(_scaled(model_fn), y, full_init,
                                                          **options)
    check_data(y_arr, n_params=int(np.sum(~fixed)) + 1, n_diffuse=int(np.sum(spec.diffuse)))
    g0 = float(fn_full(full_init)[1][-1])
    g1 = float(fn_full(np.append(init, np.log(2.0)))[1][-1])
    S = 4.0 * (g0 - g1)
    n_star = S - 2.0 * g0
    if not (abs(n_star - round(n_star)) <= 1e-6 * max(1.0, abs(n_star)) and round(n_star) > 0):
        raise ValueError("the log-likelihood is not of the form C - n log(sigma2)/2 - "
                         f"S/(2 sigma2) in the scale (got n = {n_star}); concentrate_scale "
                         "needs H, Q and P1 all proportional to it")
    n_star = float(round(n_star))

    def s_hat(x: np.ndarray) -> float:
        g = float(fn_full(np.append(x, 0.0))[1][-1])
        S = 2.0 * g + n_star
        return float(np.log(S / n_star)) if S > 0 else np.nan

    def profile(x: np.ndarray) -> tuple:
        s = s_hat(x)
        if not np.isfinite(s):
            return -np.inf, np.zeros_like(x)
        ll, g = fn_full(np.append(x, s))
        return ll, np.asarray(g, dtype=np.float64)[:-1]

    with _blas_one_thread():
        fit = maximize(profile, init, optimizer=optimizer, maxiter=maxiter, tol=tol,
                       variances=variances, scale=1.0, fixed=fixed)
        x = np.where(fit.boundary, _ZERO, fit.x)
        full = np.append(x, s_hat(x))
        idx = np.append(np.flatnonzero(~fit.boundary & ~fit.fixed), init.size)
        cov, bse, pd_ok = _information(fn_full, full, idx)
    full[:-1] = fit.x
    converged = fit.converged and pd_ok
    fit = fit._replace(x=full, cov=cov, bse=bse, converged=converged,
                       boundary=np.append(fit.boundary, False),
                       fixed=np.append(fit.fixed, False),
                       message=fit.message + f"; scale concentrated out (n* = {n_star:.0f})")
    return fit, spec, y_arr, leaf_fn, found, plan


def _information(fn: Callable, x: np.ndarray, idx: np.ndarray) -> tuple:
    """(cov, bse, positive definite) from the observed information of the entries ``idx``
    of x (central differences of the exact gradient); NaN elsewhere."""
    k = x.size
    cov = np.full((k, k), np.nan)
    bse = np.full(k, np.nan)
    if not idx.size:
        return cov, bse, True

    def grad_sub(z: np.ndarray) -> np.ndarray:
        full = x.copy()
        full[idx] = z
        return np.asarray(fn(full)[1], dtype=np.float64)[idx]

    H = _hessian(grad_sub, x[idx])
    try:
        c = scipy.linalg.cho_factor(-H)
    except np.linalg.LinAlgError:
        return cov, bse, False
    sub = scipy.linalg.cho_solve(c, np.eye(idx.size))
    cov[np.ix_(idx, idx)] = sub
    bse[idx] = np.sqrt(np.diag(sub))
    return cov, bse, True


def _zero_variances_to_leave(model: StateSpaceModel, moved: StateSpaceModel, y: np.ndarray,
                             scale: float, ll: float, options: dict) -> list[str]:
    """The free diagonal entries of constant H and Q that sit below ``_SMALL * scale`` while
    the log-likelihood rises when they grow by 1e-4 scale (KKT sign condition violated,
    measured with the NumPy engine).  Free: the entry changes when psi moves."""
    from ..numeric import loglike as np_loglike

    bad, tol = [], _GRAD_TOL * max(1.0, abs(ll)) * 1e-4
    for name in ("H", "Q"):
        if model.time_varying(name) or not model.is_numeric:
            continue
        A = np.asarray(getattr(model, name), dtype=np.float64)
        B = np.asarray(getattr(moved, name), dtype=np.float64)
        for i in range(A.shape[0]):
            if A[i, i] >= _SMALL * scale or A[i, i] == B[i, i]:
                continue
            A2 = A.copy()
            A2[i, i] += 1e-4 * scale
            if np_loglike(model.replace(**{name: A2}), y, **options) > ll + tol:
                bad.append(f"{name}[{i}, {i}]")
    return bad


class ConeCheck(NamedTuple):
    r"""The first-order condition at one singular covariance block of H or Q.

    ``matrix`` ("H" or "Q") and ``index`` (its rows and columns) name the block
    :math:`\Sigma`; ``eigenvalues`` are Sigma's (ascending) and ``null`` (k, q) the orthonormal
    basis U of its near-null space (eigenvalues below ``_SMALL`` times the data's scale);
    ``gradient`` (k, k) is :math:`G = \partial\ell/\partial\Sigma` (symmetrised);
    ``derivative`` the largest eigenvalue of :math:`U'GU`, i.e. the largest
    :math:`d\ell/d\epsilon` along :math:`\Sigma + \epsilon uu'` over unit u in the null space,
    attained at ``direction`` (k,).
    """

    matrix: str
    index: tuple
    eigenvalues: np.ndarray
    null: np.ndarray
    gradient: np.ndarray
    derivative: float
    direction: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.matrix} block {tuple(int(i) for i in self.index)}"


def _singular_blocks(model: StateSpaceModel, moved: Callable[[], StateSpaceModel],
                     scale: float | Callable[[], float], min_size: int = 2,
                     elsewhere: Callable[[], list] | None = None) -> list[tuple]:
    """(matrix, index, eigenvalues, null basis) of each block of constant numeric H and Q
    with at least ``min_size`` rows whose smallest eigenvalue is below ``_SMALL * scale`` and
    that a free parameter moves (it differs in ``moved()``, called only when some block is
    singular).  Blocks: the connected pattern of non-zero entries, as
    :func:`~pymc_dlm.estimation.structure.variance_groups` reads them.

    A block that is singular in every model of ``elsewhere()`` too (the model at parameter
    values far from the estimate, called only when some block is singular) is singular by
    design, e.g. a rank-one covariance ``l l'`` or one held singular by ``fixed=``, and is
    left out: the parameterisation cannot leave the singular matrices, so there is no
    boundary to check (relative test: smallest eigenvalue <= 1e-10 times the largest)."""
    from .structure import _blocks

    far: list | None = None

    def by_design(name: str, ix: Any) -> bool:
        nonlocal far
        if elsewhere is None:
            return False
        if far is None:
            try:
                far = elsewhere()
            except Exception:  # a model function need not accept arbitrary values
                far = []
        for other in far:
            if other.time_varying(name):
                return False
            B = np.asarray(getattr(other, name), dtype=np.float64)[ix]
            w = np.linalg.eigvalsh(0.5 * (B + B.T))
            if not np.all(np.isfinite(w)) or w[0] > 1e-10 * max(abs(w[-1]), 1e-300):
                return False
        return bool(far)

    out: list[tuple] = []
    if not model.is_numeric:
        return out
    other = None
    for name in ("H", "Q"):
        if model.time_varying(name):
            continue
        A = np.asarray(getattr(model, name), dtype=np.float64)
        if A.shape[0] < min_size or (min_size > 1 and not np.any(A - np.diag(np.diag(A)))):
            continue  # scalar variances only: the log-variance path of maximize
        for block in _blocks(A):
            ix = np.ix_(block, block)
            if len(block) < min_size:
                continue
            w, V = np.linalg.eigh(0.5 * (A[ix] + A[ix].T))
            scale = scale() if callable(scale) else scale  # only where a block has 2+ rows
            if w[0] >= _SMALL * scale:
                continue
            other = moved() if other is None else other
            B = getattr(other, name)
            if other.time_varying(name) or np.array_equal(A[ix], np.asarray(B, float)[ix]):
                continue  # held where it is: singular by construction, not at a boundary
            if by_design(name, ix):
                continue
            out.append((name, block, w, V[:, w < _SMALL * scale]))
    return out


def _covariance_gradients(model: StateSpaceModel, y: np.ndarray, plan: Any, blocks: list,
                          options: dict) -> list[np.ndarray]:
    r"""The exact :math:`\partial\ell/\partial\Sigma` of each block ``(matrix, index, ...)``
    of constant H or Q at ``model``, everything else held: the fused engine's adjoint pass
    through ``pt.grad``.

    The blocks' entries and then every numeric matrix of the model (a1, P1, or a0, P0 when
    the initial state sits one step before y_1: P1 then follows Q, as does a stationary
    block's) are read from one input vector, so one compiled graph (memoised as the fits'
    are, :func:`_compiled`) serves every fit of a structure on the same data, whatever its
    values; a diagonal H enters as ``pt.diag`` of its diagonal, structurally diagonal for the
    diffuse steps."""
    from ..spec import matrix as mx

    before = model.a0 is not None or model.P0 is not None
    names = ("Z", "d", "H", "T", "c", "R", "Q") + (("a0", "P0") if before else ("a1", "P1"))
    values = {k: np.asarray(mx.evaluate(getattr(model, k), mx.NUMPY_OPS, k), dtype=np.float64)
              for k in names}
    theta = pt.dvector("theta")
    flat, spans, j = [], [], 0
    for name, block, *_ in blocks:
        rows, cols = (x.ravel() for x in np.meshgrid(block, block, indexing="ij"))
        flat.append(values[name][rows, cols])
        spans.append((name, rows, cols, j, len(block)))
        j += rows.size
    mats = {}
    for k in names:
        x = values[k]
        if k == "H" and x.ndim == 2 and not np.any(x - np.diag(np.diag(x))):
            x = np.diag(x)
            mats[k] = pt.diag(theta[j:j + x.size])
        else:
            mats[k] = theta[j:j + x.size].reshape(x.shape)
        flat.append(x.ravel())
        j += x.size
    for name, rows, cols, a, _ in spans:
        mats[name] = pt.set_subtensor(mats[name][rows, cols], theta[a:a + rows.size])
    with pytensor.config.change_flags(traceback__limit=0):
        ll = fused.loglike(symbolic.system_tensors(model.replace(**mats)), y, plan, **options)
        fn = _compiled(theta, ll)
    g = np.asarray(fn(np.concatenate(flat))[1], dtype=np.float64)
    return [g[a:a + k * k].reshape(k, k) for _, _, _, a, k in spans]


def _cone_conditions(model: StateSpaceModel, moved: Callable[[], StateSpaceModel],
                     y: np.ndarray, plan: Any, scale: float | Callable[[], float],
                     options: dict, min_size: int = 2,
                     elsewhere: Callable[[], list] | None = None) -> list[ConeCheck]:
    r"""The first-order condition on the cone of positive semi-definite matrices at each
    singular free block of H and Q (:func:`_singular_blocks`).

    At a singular :math:`\Sigma` with null space U the feasible directions D have
    :math:`U'DU \succeq 0`; the log-likelihood does not rise to first order along them when
    :math:`U'GU \preceq 0`, :math:`G = \partial\ell/\partial\Sigma` (the other directions are
    the interior condition, which the gradient in psi covers where psi moves there).  Empty,
    at no cost beyond the eigen-decompositions, when no block is singular.
    """
    blocks = _singular_blocks(model, moved, scale, min_size, elsewhere)
    if not blocks:
        return []
    out = []
    for (name, block, w, U), G in zip(blocks, _covariance_gradients(model, y, plan, blocks,
                                                                      options), strict=True):
        G = 0.5 * (G + G.T)
        mu, z = np.linalg.eigh(U.T @ G @ U)
        out.append(ConeCheck(name, tuple(block), w, U, G, float(mu[-1]), U @ z[:, -1]))
    return out


def _check_cone(fit: Maximum, fitted: StateSpaceModel, at: Callable, y: np.ndarray,
                plan: Any, options: dict) -> tuple[Maximum, list[ConeCheck]]:
    r"""fit_mle's first-order check of the full covariance blocks at the returned point
    (:func:`_cone_conditions`): ``converged`` becomes False when the log-likelihood rises as
    variance is added along a null direction u of a singular block,
    :math:`s\,u'Gu > 10^{-5}\max(1, |\ell|)` (s the data's scale, as for a scalar variance
    at zero); the message names the block, u and the value.  Also returns the blocks that
    fail (with a finite value)."""
    scale: list = []  # the data's scale, computed only when some block has 2+ rows

    def data_scale_once() -> float:
        if not scale:
            scale.append(data_scale(y))
        return scale[0]

    x = np.where(np.isfinite(fit.x), fit.x, _ZERO)

    def elsewhere() -> list:
        """The model at two parameter vectors far from the estimate (free entries standard
        normal, fixed ones kept; a fixed seed): where a block is singular in both too, the
        parameterisation keeps it singular (by design, not at a boundary)."""
        rng = np.random.default_rng(20261207)
        return [at(np.where(fit.fixed, x, rng.standard_normal(x.size))) for _ in range(2)]

    checks = _cone_conditions(fitted, lambda: at(x + 1e-3 * ~fit.fixed), y, plan,
                              data_scale_once, options, elsewhere=elsewhere)
    if not checks:
        return fit, []
    tol_ll = _GRAD_TOL * max(1.0, abs(fit.log_likelihood))
    converged, notes, failed = fit.converged, [], []
    for c in checks:
        kappa = c.derivative * scale[0]
        u = np.array2string(c.direction, precision=3, separator=", ")
        note = (f"{c.label} singular (smallest eigenvalue {c.eigenvalues[0]:.2g}), max scaled "
                f"d loglik along u u' over its null space {kappa:.3g} at u = {u} ")
        if kappa <= tol_ll:
            notes.append(note + f"(KKT on the covariance cone: <= {tol_ll:.2g})")
        elif not np.isfinite(kappa):
            converged = False
            notes.append(note + "(not finite: the condition on the covariance cone could not "
                         "be checked)")
        else:
            converged = False
            failed.append(c)
            notes.append(note + f"> {tol_ll:.2g}: the log-likelihood rises as variance is "
                         "added along u (KKT on the covariance cone fails); start that block "
                         "at full rank")
    return fit._replace(converged=bool(converged),
                        message=fit.message + "; " + "; ".join(notes)), failed


def _inflated_start(model: StateSpaceModel, x: np.ndarray, fixed: np.ndarray,
                    failed: list[ConeCheck], fn: Callable, scale: float) -> np.ndarray | None:
    r"""A restart for fit_mle's automatic parameterisation of ``model``
    (:func:`~pymc_dlm.estimation.structure.variance_parameterization`, whose full blocks are
    log-Cholesky factors, so a direction of :math:`\Sigma` maps back to psi): each failed
    block :math:`\Sigma` that is a free full group becomes the best (by log-likelihood) of
    :math:`\Sigma + c\,s\,uu'`, c in ``_GRID``, u its failing direction.  None when no
    failed block is such a group."""
    from .structure import variance_groups

    x = np.where(np.isfinite(x), x, _ZERO)
    changed = False
    j = 0
    for g in variance_groups(model, ("H", "Q")):
        span = slice(j, j + g.n_free)
        j += g.n_free
        match = [c for c in failed if g.full and (c.matrix, c.index) == (g.matrix, g.index)]
        if not match or fixed[span].any():
            continue
        k = len(g.index)
        rows, cols = np.tril_indices(k, -1)
        L = np.diag(np.exp(x[span][:k]))
        L[rows, cols] = x[span][k:]
        trials = []
        for c in _GRID:
            Lc = np.linalg.cholesky(L @ L.T + c * scale * np.outer(match[0].direction,
                                                                   match[0].direction))
            z = x.copy()
            z[span] = np.concatenate([np.log(np.diag(Lc)), Lc[rows, cols]])
            ll = float(fn(z)[0])
            trials.append((ll if np.isfinite(ll) else -np.inf, z[span]))
        best = max(trials, key=lambda t: t[0])
        if np.isfinite(best[0]):
            x[span] = best[1]
            changed = True
    return x if changed else None


def fit_mle(model_fn: Callable[[Any], StateSpaceModel] | StateSpaceModel, y: Any,
            init_params: Any = None, *, optimizer: str = "L-BFGS-B",
            param_names: Any = None, fixed: dict | None = None,
            concentrate_scale: bool = False, convention: str = "statsmodels", burn: int = 0,
            maxiter: int = 1000, tol: float | None = None,
            method: str | None = None) -> MLEResult:
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
    optimizer : str, default "L-BFGS-B"
        A :func:`scipy.optimize.minimize` method: "L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP",
        "trust-constr" (with the exact gradient) or "Nelder-Mead", "Powell" (without).
    param_names : sequence of str, optional
        Names of the unconstrained parameters (``psi[0]``... by default).  A name
        ``"log X"`` says that X = exp(psi) and ``"atanh X"`` that X = tanh(psi): the summary
        then reports X with delta-method standard errors; a name ``"log sigma2.X"`` marks a
        log-variance, which may end at zero and is checked and restarted there (Notes).
    fixed : dict, optional
        Parameters held at a value during the fit, by name: the natural name
        (``{"sigma2.obs": 15099.0}``, on its own scale) or the unconstrained one
        (``{"log sigma2.obs": 9.62}``).
    concentrate_scale : bool, default False
        Concentrate a scale :math:`\sigma^2` out of the likelihood (Harvey 1989, section 3.4;
        the KALMAN procedure's :math:`-2L_c`): H, Q and the known part of P1 are
        :math:`\sigma^2` times those of ``model_fn`` and :math:`\hat\sigma^2 = S/n_*`
        (:math:`S = \sum v_t' F_t^{*-1} v_t` over the :math:`n_*` non-diffuse observation
        elements) at every step, so the optimiser works on one parameter less.  A numeric
        model's first free variance (``sigma2.obs``) is held at 1, the others become ratios
        to it; a function's model is taken as the model relative to the scale.  The result
        has one more parameter, ``log scale`` (estimate ``scale``, with its standard error
        from the full likelihood's information); the maximum is the full likelihood's.
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        The log-likelihood's convention for the diffuse observation elements
        (:mod:`pymc_dlm.numeric.filter`): "kfas" drops their :math:`\tfrac12\log 2\pi`, as
        KFAS and R's ``arima`` do (Nile: -632.54563 against -633.46456).  The same maximiser;
        the log-likelihood, AIC and BIC are reported in it, with ``n_diffuse_obs``.
    burn : int, default 0
        Maximise :math:`\log p(y_{burn+1:n} \mid y_{1:burn})`: the steps t <= burn
        contribute nothing (Kim and Nelson's burn-in); ``nobs`` counts the rest.
    maxiter : int
    tol : float, optional
        Passed to :func:`scipy.optimize.minimize`.
    method : str, optional
        Old name of ``optimizer`` (kept for existing callers).

    Returns
    -------
    MLEResult

    Raises
    ------
    ValueError
        Bad options; data that cannot identify the model (all missing, constant, fewer
        observations than parameters plus diffuse states: :func:`~pymc_dlm.estimation.checks.check_data`).

    Notes
    -----
    Robustness (:func:`maximize`): a log-variance that ends near zero is put at exactly zero
    and its Karush-Kuhn-Tucker condition (the likelihood does not rise when the variance
    leaves zero) is checked with the exact gradient; when it fails the variance restarts on a
    grid of values scaled by the data's variance.  ``converged`` is True only when the
    first-order conditions hold at the returned point.

    Full covariance blocks (H or Q with free off-diagonal entries: a SUTSE model's
    :math:`\Sigma = LL'`, a VAR's innovation covariance) have their boundary at singular
    matrices, where the gradient with respect to a vanishing Cholesky diagonal (or its log)
    vanishes too, so the test in psi cannot see whether the likelihood would rise by adding
    variance.  At the returned point every constant block of H and Q (the connected pattern
    of its non-zero entries) with two or more rows that some free parameter moves is
    eigen-decomposed; when its smallest eigenvalue is below :math:`10^{-7} s` (s the data's
    variance scale, as for a scalar variance) the block :math:`\Sigma` is at the boundary of
    the cone of positive semi-definite matrices, with null space U (the eigenvectors below
    that bound).  Adding variance along a unit :math:`u = Uz` changes the log-likelihood at
    the rate :math:`d\ell/d\epsilon\,[\Sigma + \epsilon uu'] = u'Gu`, with
    :math:`G = \partial\ell/\partial\Sigma` exact (the fused engine's adjoint pass, every
    other system matrix held), so the condition is
    :math:`s\,\lambda_{\max}(U'GU) \le 10^{-5}\max(1, |\ell|)`, the scalar KKT condition
    when the block is 1x1.  When it fails and ``model_fn`` is a numeric model (its full
    blocks are then log-Cholesky factors, which map a direction back to psi), the block
    restarts at the best of :math:`\Sigma + c\,s\,uu'`, :math:`c \in \{10^{-4}, 10^{-2},
    1\}`, and the better of the two fits is returned; with a function (which cannot be
    inverted) ``converged`` is False and the message names the block, the direction u and
    the value: start that block at full rank.  Time-varying H and Q are not checked.  A
    block that no free parameter moves is the model's own structure and is not checked
    either; rank-deficient disturbances belong in R (D&K's Q is positive definite).
    Scalar variances do not take this path, and a model without full blocks pays only a
    look at H's and Q's off-diagonal entries (about 20-40 us per fit).

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
    >>> res.param_names
    ('log sigma2.obs', 'log sigma2.level')
    >>> res.estimates.round().to_dict()
    {'sigma2.obs': 15099.0, 'sigma2.level': 1469.0}
    """
    if method is not None:
        optimizer = method
    auto, source = False, None
    if isinstance(model_fn, StateSpaceModel):
        source = model_fn
        if init_params is not None:
            raise ValueError("init_params is read off the model when model_fn is a "
                             "StateSpaceModel; pass the starting values in the model")
        model_fn, init_params, auto_names = variance_parameterization(model_fn)
        param_names = auto_names if param_names is None else param_names
        auto = True
    elif init_params is None:
        raise ValueError("init_params is required when model_fn is a function")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
    if isinstance(init_params, pytensor.graph.basic.Variable):  # e.g. pt.zeros(2), as jnp
        init_params = init_params.eval()
    init = np.atleast_1d(np.asarray(init_params, dtype=np.float64))
    if init.ndim != 1 or not np.all(np.isfinite(init)):
        raise ValueError(f"init_params must be a finite vector; got {init_params!r}")
    k = init.size
    names = tuple(f"psi[{i}]" for i in range(k)) if param_names is None else tuple(param_names)
    if len(names) != k:
        raise ValueError(f"param_names has {len(names)} names for {k} parameters")
    if concentrate_scale and auto and not fixed:
        fixed = {names[0]: 0.0}  # the reference variance: sigma2.obs = 1 times the scale
    init, fixed_mask = apply_fixed(names, init, fixed)
    variances = np.array([is_log_variance(n) for n in names], bool)
    options = {"convention": convention, "burn": burn}
    if concentrate_scale:
        fit, spec, y_arr, leaf_fn, found, plan = _fit_concentrated(
            model_fn, y, init, fixed_mask, variances, optimizer, maxiter, tol, options)
        names = names + ("log scale",)
    else:
        spec, y_arr, plan, fn, found, leaf_fn = _compile(model_fn, y, init, **options)
        check_data(y_arr, n_params=int(np.sum(~fixed_mask)),
                   n_diffuse=int(np.sum(spec.diffuse)))
        with _blas_one_thread():
            fit = maximize(fn, init, optimizer=optimizer, maxiter=maxiter, tol=tol,
                           variances=variances, scale=data_scale(y_arr), fixed=fixed_mask)
    def at(x: np.ndarray) -> StateSpaceModel:
        values = leaf_fn(x) if found else []
        return spec.substitute({id(leaf): np.asarray(v)
                                for leaf, v in zip(found, values, strict=True)})

    def checked(fit: Maximum) -> tuple:
        fitted = at(fit.x)
        if fit.converged and not variances.any() and np.all(np.isfinite(fit.x)):
            # a function whose parameters are not named as log-variances: no restarts, but no
            # "converged" at a variance near zero that the likelihood wants to leave either
            bad = _zero_variances_to_leave(fitted, at(fit.x + 1e-3 * ~fit.fixed), y_arr,
                                           data_scale(y_arr), fit.log_likelihood, options)
            if bad:
                fit = fit._replace(converged=False, message=fit.message + (
                    f"; {', '.join(bad)} near zero, but the log-likelihood rises as it leaves "
                    "zero (KKT fails): start it larger, or name the parameter 'log sigma2.*' "
                    "for restarts"))
        return (*_check_cone(fit, fitted, at, y_arr, plan, options), fitted)

    fit, failed, fitted = checked(fit)
    start = (_inflated_start(source, fit.x, fit.fixed, failed, fn, data_scale(y_arr))
             if failed and source is not None and not concentrate_scale else None)
    if start is not None:  # the automatic parameterisation maps the direction back to psi
        with _blas_one_thread():
            again = maximize(fn, start, optimizer=optimizer, maxiter=maxiter, tol=tol,
                             variances=variances, scale=data_scale(y_arr), fixed=fixed_mask)
        again = again._replace(
            n_iter=fit.n_iter + again.n_iter, restarts=fit.restarts + again.restarts + 1,
            message=again.message + "; restarted with the singular block(s) inflated along "
            "the failing direction")
        again, _, fitted_again = checked(again)
        if again.log_likelihood > fit.log_likelihood:
            fit, fitted = again, fitted_again
        else:
            fit = fit._replace(message=fit.message + "; a restart with the block(s) inflated "
                               f"ended lower ({again.log_likelihood:.6f})")
    return MLEResult(
        model=fitted, params=fit.x, log_likelihood=fit.log_likelihood, converged=fit.converged,
        n_iter=fit.n_iter, bse=fit.bse, cov_params=fit.cov,
        hessian_method="central differences of the exact gradient",
        nobs=int(np.count_nonzero(~np.isnan(y_arr[burn:]))),
        message=fit.message, param_names=names, data=y, boundary=fit.boundary,
        fixed=fit.fixed, restarts=fit.restarts, convention=convention, burn=int(burn),
        n_diffuse_obs=int(plan.diffuse_counts[burn:].sum()),
    )


class Maximum(NamedTuple):
    """What :func:`maximize` found.

    ``boundary`` marks the log-variances returned at zero (``x`` is ``-inf`` there) and
    ``fixed`` the entries held at their start; ``bse`` and the rows and columns of ``cov``
    are NaN for both.  ``restarts`` counts the restarts from the data-based grid.
    """

    x: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    message: str
    bse: np.ndarray
    cov: np.ndarray
    boundary: np.ndarray
    fixed: np.ndarray
    restarts: int = 0


_GRADIENT_METHODS = ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr")
OPTIMIZERS = _GRADIENT_METHODS + ("Nelder-Mead", "Powell")
#: psi of a log-variance held at zero: exp(-700) = 1e-304 adds nothing to any variance above
#: 1e-288, so the filter sees exactly 0 and the gradient of the other entries is exact there
_ZERO = -700.0
#: a log-variance below log(_SMALL * scale) is treated as a candidate for the boundary
_SMALL = SMALL_VARIANCE
#: restart values of a log-variance that violates the KKT condition, times the data's scale
_GRID = (1e-4, 1e-2, 1.0)
_MAX_RESTARTS = 6


def _local(fn: Callable, x0: np.ndarray, free: np.ndarray, optimizer: str, maxiter: int,
           tol: float | None) -> tuple[np.ndarray, Any]:
    """One run of SciPy's optimiser over the ``free`` entries of x (the others held)."""
    x_full = np.array(x0, dtype=np.float64)

    def objective(z: np.ndarray) -> Any:
        x_full[free] = z
        ll, g = fn(x_full)
        if optimizer not in _GRADIENT_METHODS:
            return -float(ll) if np.isfinite(ll) else np.inf
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(z)
        return -float(ll), -np.asarray(g, dtype=np.float64)[free]

    options: dict[str, Any] = {"maxiter": maxiter}
    if optimizer == "L-BFGS-B" and tol is None:
        # SciPy's default ftol (2.2e-9 relative) stops early on flat likelihoods, e.g.
        # variances of order 1e4 under softplus; ask for a stationary point instead
        options.update(ftol=1e-15, gtol=1e-7)
    kwargs = {"jac": True} if optimizer in _GRADIENT_METHODS else {}
    opt = scipy.optimize.minimize(objective, x_full[free], method=optimizer, tol=tol,
                                  options=options, **kwargs)
    out = np.array(x0, dtype=np.float64)
    out[free] = opt.x
    return out, opt


def _kkt(fn: Callable, x: np.ndarray, free: np.ndarray, variances: np.ndarray,
         scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    r"""Split the free log-variances of x into interior and boundary ones and measure the
    first-order conditions.

    A free log-variance below ``log(_SMALL * scale)`` is put at zero (:data:`_ZERO`).  Returns
    (x with those at zero, the boundary mask, ll there, kappa): ``kappa_i`` is
    :math:`\partial\ell/\partial\sigma^2_i \cdot s_i` at the boundary (from the exact gradient
    at :math:`\sigma^2_i = 10^{-3} \cdot` ``_SMALL`` :math:`s_i`, where it equals the value at
    0 to first order), the KKT sign condition asks ``kappa_i <= 0``; NaN elsewhere.
    """
    k = x.size
    at_zero = np.zeros(k, bool)
    var_idx = np.flatnonzero(variances & free)
    small = x[var_idx] < np.log(_SMALL * scale[var_idx])
    at_zero[var_idx[small]] = True
    x = x.copy()
    x[at_zero] = _ZERO
    ll, _ = fn(x)
    kappa = np.full(k, np.nan)
    if at_zero.any():
        probe = x.copy()
        delta = 1e-3 * _SMALL * scale[at_zero]
        probe[at_zero] = np.log(delta)
        _, g = fn(probe)
        kappa[at_zero] = np.asarray(g, dtype=np.float64)[at_zero] / delta * scale[at_zero]
    return x, at_zero, float(ll), kappa


def _first_order(fn: Callable, point: tuple, free: np.ndarray) -> bool:
    """Whether the first-order conditions hold at a point from :func:`_climb`."""
    x, ll, at_zero, kappa = point
    tol_ll = _GRAD_TOL * max(1.0, abs(ll))
    interior = free & ~at_zero
    g = np.asarray(fn(x)[1], dtype=np.float64)
    return bool((not interior.any() or np.max(np.abs(g[interior])) <= tol_ll)
                and (not at_zero.any() or np.max(kappa[at_zero]) <= tol_ll))


def _climb(fn: Callable, x: np.ndarray, free: np.ndarray, variances: np.ndarray,
           scale: np.ndarray, optimizer: str, maxiter: int, tol: float | None,
           counts: dict) -> tuple | None:
    """Steps 1-3 of :func:`maximize` from one start: the best (x, ll, at_zero, kappa) seen."""
    best: tuple | None = None

    def run(x: np.ndarray, which: np.ndarray) -> np.ndarray:
        # L-BFGS-B's line search sometimes stops far from a stationary point (e.g. from
        # variances 1e6 times the data's); a fresh run from its end point goes on
        for _ in range(3):
            x, opt = _local(fn, x, which, optimizer, maxiter, tol)
            counts["n_iter"] += int(getattr(opt, "nit", 0))
            counts["messages"].append(str(opt.message))
            ll, g = fn(x)
            g = np.asarray(g, dtype=np.float64)[which]
            if not np.isfinite(ll) or np.max(np.abs(g)) <= _GRAD_TOL * max(1.0, abs(ll)):
                break
        return x

    while True:
        if free.any():
            x = run(x, free)
        x, at_zero, ll, kappa = _kkt(fn, x, free, variances, scale)
        interior = free & ~at_zero
        if at_zero.any() and interior.any():  # re-optimise the others with these at zero
            x = run(x, interior)
            x, at_zero, ll, kappa = _kkt(fn, x, interior | at_zero, variances, scale)
        if not np.isfinite(ll):
            return best
        if best is None or ll > best[1] + 1e-12 * max(1.0, abs(ll)):
            best = (x.copy(), ll, at_zero.copy(), kappa.copy())
        violated = np.flatnonzero(at_zero & (kappa > _GRAD_TOL * max(1.0, abs(ll))))
        if violated.size == 0 or counts["restarts"] >= _MAX_RESTARTS:
            return best
        counts["restarts"] += 1
        for i in violated:  # restart the variance at the best value of the data-based grid
            trial = []
            for c in _GRID:
                z = x.copy()
                z[i] = np.log(c * scale[i])
                trial.append((fn(z)[0], z[i]))
            x[i] = max(trial, key=lambda t: t[0] if np.isfinite(t[0]) else -np.inf)[1]


def maximize(fn: Callable[[np.ndarray], tuple], init: np.ndarray, *, optimizer: str = "L-BFGS-B",
             maxiter: int = 1000, tol: float | None = None, variances: Any = None,
             scale: Any = None, fixed: Any = None, method: str | None = None) -> Maximum:
    r"""Maximise a log-likelihood given ``fn(x) -> (ll, gradient)``, with first-order checks.

    Parameters
    ----------
    fn : callable
        ``fn(x) -> (log-likelihood, gradient)`` for a (k,) float64 vector.
    init : (k,) ndarray
        Starting point.
    optimizer : str
        A :func:`scipy.optimize.minimize` method (:data:`OPTIMIZERS`).
    maxiter, tol
        Passed to SciPy.
    variances : (k,) bool array_like, optional
        Entries that are log-variances, :math:`\sigma^2_i = e^{x_i}`: these may end at the
        boundary :math:`\sigma^2_i = 0`, and are restarted when they violate its KKT condition.
    scale : (k,) array_like, optional
        The data's variance :math:`s_i` for each log-variance (sets what "near zero" means and
        the restart grid; 1 by default).
    fixed : (k,) bool array_like, optional
        Entries held at ``init``.
    method : str, optional
        Old name of ``optimizer``.

    Returns
    -------
    Maximum

    Notes
    -----
    The design (``docs/estimation.md``, "Robust maximum likelihood"):

    1. SciPy's optimiser from ``init``.
    2. A log-variance that ended below :math:`10^{-7} s_i` is put at exactly zero and the
       others re-optimised there.  Its KKT condition is the sign of
       :math:`\partial\ell/\partial\sigma^2_i \le 0` at zero, taken from the exact gradient.
    3. If it fails (the likelihood rises when the variance leaves zero: the trap of a small
       start, where :math:`\partial\ell/\partial\log\sigma^2 = \sigma^2\,\partial\ell/\partial\sigma^2`
       vanishes and the optimiser stops), the variance restarts at the best of
       :math:`\{10^{-4}, 10^{-2}, 1\}\,s_i` and step 1 runs again (at most 6 times).
    4. ``converged`` is True only when every interior free entry has
       :math:`|\partial\ell/\partial x_i| \le 10^{-5}\max(1, |\ell|)` and every boundary one
       :math:`s_i\,\partial\ell/\partial\sigma^2_i \le 10^{-5}\max(1, |\ell|)`.

    Standard errors come from the observed information over the interior free entries
    (central differences of the exact gradient).

    Raises ``ValueError`` when the log-likelihood is not finite at ``init``.
    """
    if method is not None:
        optimizer = method
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
    x = np.array(init, dtype=np.float64)
    k = x.size
    variances = np.zeros(k, bool) if variances is None else np.asarray(variances, bool)
    scale = np.ones(k) if scale is None else np.broadcast_to(np.asarray(scale, float), (k,))
    fixed = np.zeros(k, bool) if fixed is None else np.asarray(fixed, bool)
    free = ~fixed
    ll0, _ = fn(x)
    if not np.isfinite(ll0):
        raise ValueError(f"the log-likelihood is not finite at init_params ({ll0}); choose "
                         "a starting point where every F_t is positive definite")
    counts = {"n_iter": 0, "restarts": 0, "messages": []}
    best = _climb(fn, x, free, variances, scale, optimizer, maxiter, tol, counts)
    # a start far from the data's scale (or a climb that did not end at a first-order point)
    # is also tried from the data-based start; the better end point is kept
    var_free = variances & free
    extreme = np.any(np.abs(x[var_free] - np.log(scale[var_free])) > np.log(1e4))
    if var_free.any() and (extreme or best is None or not _first_order(fn, best, free)):
        x2 = x.copy()
        x2[var_free] = np.log(0.1 * scale[var_free])
        if np.isfinite(fn(x2)[0]):
            counts["restarts"] += 1
            other = _climb(fn, x2, free, variances, scale, optimizer, maxiter, tol, counts)
            if other is not None and (best is None or other[1] > best[1]):
                best = other
    n_iter, restarts, messages = counts["n_iter"], counts["restarts"], counts["messages"]
    x, ll, at_zero, kappa = best
    ll_x, g = fn(x)
    g = np.asarray(g, dtype=np.float64)
    interior = free & ~at_zero
    tol_ll = _GRAD_TOL * max(1.0, abs(ll))
    g_max = float(np.max(np.abs(g[interior]))) if interior.any() else 0.0
    k_max = float(np.max(kappa[at_zero])) if at_zero.any() else -np.inf
    converged = bool(np.isfinite(ll) and g_max <= tol_ll and k_max <= tol_ll)
    message = messages[-1] if messages else "every parameter fixed"
    message += f"; max |gradient| {g_max:.2g} over the interior"
    if at_zero.any():
        message += (f"; {int(at_zero.sum())} variance(s) at zero, max scaled "
                    f"d loglik / d variance there {k_max:.2g} (KKT: <= {tol_ll:.2g})")
    if restarts:
        message += f"; {restarts} restart(s) from the data-based grid"
    cov, bse, pd_ok = _information(fn, x, np.flatnonzero(interior))
    if not pd_ok:
        converged = False
        message += "; the observed information is not positive definite"
    x_out = x.copy()
    x_out[at_zero] = -np.inf
    return Maximum(x_out, float(ll), converged, n_iter, message, bse, cov, at_zero, fixed,
                   restarts)
