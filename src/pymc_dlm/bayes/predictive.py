r"""The random draws of a ``DLM`` variable: what ``pm.sample_posterior_predictive`` replicates.

Three kinds (the ``predictive`` argument of :class:`~pymc_dlm.DLM`), each a graph of the
system tensors at one parameter draw :math:`\theta`:

``"one_step"`` (the default)
    :math:`y^{rep}_t \sim N(Z_t a_t + d_t, F_t)`, :math:`F_t = Z_t P_t Z_t' + H_t`, the
    one-step-ahead predictive :math:`p(y_t \mid y_{1:t-1}, \theta)` of the Kalman filter
    (D&K 2012, eqs. 4.21-4.26; the prequential check of Dawid 1984).  The filter is the fused
    numba Op of the log-likelihood, so a draw costs one filter pass.  Missing :math:`y_t` get
    their predictive draw too (the filter predicts all p rows).
``"states"``
    :math:`y^{rep} = Z\alpha + d + \varepsilon` with :math:`\alpha \sim p(\alpha \mid y, \theta)`
    from the simulation smoother (Durbin and Koopman 2002) and a fresh
    :math:`\varepsilon_t \sim N(0, H_t)`: replicates of the data given the states.
``"simulate"``
    Unconditional simulation from :math:`a_1 \sim N(a_1, P_1)` (eq. 3.1); a diffuse state has
    no proper distribution to start from, so this kind refuses diffuse models.

The steps of the exact diffuse period (``plan.n_steps`` of them: one for a local level,
13 for trend + seasonal(12)) have no proper one-step prediction: :math:`F_t` is infinite.
There the one-step replicate is a placeholder, the observed value itself (NaN where y_t is
missing): those observations are spent on fixing the diffuse states and carry no check, as
statsmodels' residual diagnostics skip the same steps.  :func:`pymc_dlm.add_residuals`
drops them from ``observed_data`` and the predictive groups (the output of a PyMC random
function must have the variable's shape, so they cannot be left out here), after which every
ArviZ check (PPC plots, ``loo_pit``) compares an observation with its own one-step
predictive.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import (
    generate_fallback_impl,
    numba_njit,
    register_funcify_and_cache_key,
    register_funcify_default_op_cache_key,
)

from ..fused import KalmanLoglike, plan_arrays
from ..fused.loglike import structurally_diagonal
from ..numeric.filter import TOL, TOL_DIFFUSE
from ..numeric.simulate import _sqrt_psd, simulation_smoother
from ..spec.model import StateSpaceModel
from ..symbolic.filter import diffuse_steps

__all__ = ["KINDS", "CheckObserved", "SimulationSmootherDraw", "one_step_moments",
           "one_step_graph", "states_graph", "simulate_graph"]

KINDS = ("one_step", "states", "simulate")
_BASE = dict(Z=2, d=1, H=2, T=2, c=1, R=2, Q=2)


def _part(sys: Any, name: str, start: int = 0) -> Any:
    """A system matrix with a leading time axis (length 1 when constant), from step start."""
    x = getattr(sys, name)
    return x[start:] if x.ndim == _BASE[name] + 1 else x[None]


def one_step_moments(sys: Any, y: Any, plan: Any) -> tuple[Any, Any, Any]:
    r"""The one-step-ahead predictive moments after the diffuse period, as tensors.

    .. math:: \hat y_t = Z_t a_t + d_t, \qquad F_t = Z_t P_t Z_t' + H_t,
              \qquad t = d + 1, \dots, n

    (D&K 2012, eqs. 4.21-4.24), all p rows (missing ones too), from the fused filter's
    predicted moments :math:`a_t, P_t`.

    Parameters
    ----------
    sys : SystemTensors
    y : (n, p) tensor
        NaN marks missing values.
    plan : DiffusePlan
        The exact diffuse period (d = ``plan.n_steps`` steps).

    Returns
    -------
    yhat : (n - d, p) tensor
    F : (n - d, p, p) tensor
    ll_t : (n,) tensor
        The per-step log-likelihood of the same filter pass.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.symbolic import diffuse_plan, system_tensors
    >>> y = dlm.datasets.load_nile().to_numpy()[:, None]
    >>> plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    >>> yhat, F, _ = one_step_moments(system_tensors(dlm.LocalLevel(38.3, 122.9)), y, plan)
    >>> yhat.eval().shape, F.eval().shape
    ((99, 1), (99, 1, 1))
    """
    nd = plan.n_steps
    p = int(sys.Z.type.shape[-2])
    y = pt.as_tensor_variable(y)
    h_diagonal = p == 1 or structurally_diagonal(sys.H, p)
    if nd == 0 or h_diagonal:
        ll, a, P = KalmanLoglike(TOL, TOL_DIFFUSE)(
            y, *(_part(sys, k) for k in _BASE), sys.a1, sys.P1, sys.P1inf, *plan_arrays(plan, p))
    else:
        y, a0, P0, parts = diffuse_steps(sys, y, plan, h_diagonal=False)
        ll_r, a, P = KalmanLoglike(TOL)(y[nd:], *(_part(sys, k, nd) for k in _BASE), a0, P0)
        ll = pt.concatenate([*parts, ll_r])
    Z, d, H = _part(sys, "Z", nd), _part(sys, "d", nd), _part(sys, "H", nd)
    yhat = pt.matmul(Z, a[:, :, None])[:, :, 0] + d
    F = pt.matmul(pt.matmul(Z, P), Z.mT) + H
    return yhat, 0.5 * (F + F.mT), ll


def _sqrt_F(F: Any, p: int) -> Any:
    """A square root S of each F (S S' = F): sqrt for p = 1, else eigh (zero eigenvalues ok)."""
    if p == 1:
        return pt.sqrt(pt.maximum(F, 0.0))
    lam, V = pt.linalg.eigh(F)
    return V * pt.sqrt(pt.maximum(lam, 0.0))[..., None, :]


def one_step_graph(sys: Any, y: Any, plan: Any, p: int) -> Any:
    """One draw of the one-step-ahead predictive replicate, (n, p) (see the module docstring)."""
    nd = plan.n_steps
    yhat, F, _ = one_step_moments(sys, y, plan)
    eps = pm.Normal.dist(0.0, 1.0, size=(y.shape[0] - nd, p))
    rep = yhat + pt.matmul(_sqrt_F(F, p), eps[:, :, None])[:, :, 0]
    return pt.concatenate([y[:nd], rep], axis=0) if nd else rep


def simulate_graph(sys: Any, n: Any, p: int, m: int, r: int) -> Any:
    """Unconditional simulation of y_1..y_n, (n, p) (D&K 2012, eq. 3.1; a proper start)."""
    names = list(_BASE)
    tv = [k for k in names if getattr(sys, k).ndim == _BASE[k] + 1]
    const = [k for k in names if k not in tv]
    x0 = pm.Normal.dist(0.0, 1.0, size=(m,))
    eps = pm.Normal.dist(0.0, 1.0, size=(n, p))
    eta = pm.Normal.dist(0.0, 1.0, size=(n, r))
    alpha1 = sys.a1 + _psd_sqrt(sys.P1) @ x0
    Hs, Qs = _psd_sqrt(sys.H), _psd_sqrt(sys.Q)  # once when constant, per step when time-varying

    def step(*args: Any) -> Any:
        k = len(tv)
        e, h = args[0], args[1]
        mt = dict(zip(tv, args[2: 2 + k], strict=True))
        alpha = args[2 + k]
        mt.update(zip(const, args[3 + k: 3 + k + len(const)], strict=True))
        hs, qs = args[-2], args[-1]
        Hst = _psd_sqrt(mt["H"]) if "H" in tv else hs
        Qst = _psd_sqrt(mt["Q"]) if "Q" in tv else qs
        y = mt["Z"] @ alpha + mt["d"] + Hst @ e
        return mt["T"] @ alpha + mt["c"] + mt["R"] @ (Qst @ h), y

    _, ys = pytensor.scan(
        step,
        sequences=[eps, eta, *[getattr(sys, k) for k in tv]],
        outputs_info=[alpha1, None],
        non_sequences=[*[getattr(sys, k) for k in const], Hs, Qs],
        return_updates=False,
        strict=True,
    )
    return ys


def _psd_sqrt(S: Any) -> Any:
    """A square root of a symmetric PSD matrix (eigh; zero eigenvalues allowed)."""
    lam, V = pt.linalg.eigh(S)
    return V * pt.sqrt(pt.maximum(lam, 0.0))[..., None, :]


def states_graph(sys: Any, y: Any, diffuse: tuple) -> Any:
    """One replicate given the states: y = Z alpha + d + eps, alpha from the simulation smoother."""
    seed = pt.floor(pm.Uniform.dist(0.0, 2.0**31 - 1.0))
    return SimulationSmootherDraw(tuple(bool(x) for x in diffuse))(
        y, *(_part(sys, k) for k in _BASE), sys.a1, sys.P1, seed)


class SimulationSmootherDraw(Op):
    r"""One replicate :math:`y^{rep} = Z\alpha + d + \varepsilon` given a draw of the states.

    Inputs: y (n, p); Z, d, H, T, c, R, Q with a leading time axis (n or 1); a1 (m,), P1
    (m, m) the proper part of the start; a seed (int).  The states come from
    :func:`pymc_dlm.numeric.simulate.simulation_smoother` (Durbin and Koopman 2002, exact
    diffuse start for the states flagged in ``diffuse``), the observation noise from the same
    seeded generator.  The NumPy engine runs in Python: under the numba backend the Op runs in
    object mode (registered below, so there is no fallback warning); the kind is not the
    default and costs about one smoother pass per draw.
    """

    __props__ = ("diffuse",)

    def __init__(self, diffuse: tuple):
        self.diffuse = tuple(diffuse)

    def make_node(self, y, Z, d, H, T, c, R, Q, a1, P1, seed) -> Apply:
        inputs = [pt.cast(pt.as_tensor_variable(x), "float64")
                  for x in (y, Z, d, H, T, c, R, Q, a1, P1)]
        inputs.append(pt.cast(pt.as_tensor_variable(seed), "int64"))
        return Apply(self, inputs, [pt.matrix(dtype="float64")])

    def perform(self, node, inputs, output_storage) -> None:
        y, *mats, a1, P1, seed = inputs
        n = y.shape[0]
        one = {k: (x if x.shape[0] == n and n > 1 else x[0]) for k, x in zip(_BASE, mats, strict=True)}
        model = StateSpaceModel(**one, a1=a1, P1=P1, diffuse=self.diffuse)
        rng = np.random.default_rng(int(seed))
        alpha = simulation_smoother(model, y, rng)
        p = y.shape[1]
        out = np.empty((n, p))
        for t in range(n):
            at = {k: x[t] if x.shape[0] == n else x[0] for k, x in zip(_BASE, mats, strict=True)}
            out[t] = at["Z"] @ alpha[t] + at["d"] + _sqrt_psd(at["H"]) @ rng.standard_normal(p)
        output_storage[0][0] = out

    def infer_shape(self, node, shapes):
        return [shapes[0]]


@register_funcify_and_cache_key(SimulationSmootherDraw)
def _numba_simulation_smoother_draw(op, node=None, **kwargs):
    with warnings.catch_warnings():  # object mode on purpose (see the class docstring)
        warnings.simplefilter("ignore", UserWarning)
        return generate_fallback_impl(op, node, **kwargs), None


class CheckObserved(Op):
    r"""Pass y through after checking it fits the plan the graph was built with.

    The exact diffuse period is planned when the graph is built, from where y is observed in
    its first ``len(observed)`` steps; data set later (``pm.set_data``) must keep that pattern
    there, and be at least that long (exactly ``n_time`` long for a time-varying model).
    Otherwise :class:`ValueError` says that the model must be rebuilt; the likelihood is never
    silently wrong.
    """

    __props__ = ("observed", "n_time")

    def __init__(self, observed: tuple, n_time: int | None):
        self.observed = tuple(tuple(bool(v) for v in row) for row in observed)
        self.n_time = n_time

    def make_node(self, y) -> Apply:
        y = pt.as_tensor_variable(y)
        return Apply(self, [y], [y.type()])

    def _message(self) -> str:
        return (f"the data's pattern of missing values in the first {len(self.observed)} steps "
                "(the exact diffuse period the DLM was built for) or its length changed; "
                "rebuild the model with the new data (pm.set_data cannot change these)")

    def perform(self, node, inputs, output_storage) -> None:
        y = np.asarray(inputs[0]).reshape(inputs[0].shape[0], -1)
        nd = len(self.observed)
        if (y.shape[0] < max(nd, 1) or (self.n_time is not None and y.shape[0] != self.n_time)
                or (nd and not np.array_equal(~np.isnan(y[:nd]), np.array(self.observed)))):
            raise ValueError(self._message())
        output_storage[0][0] = inputs[0].copy()

    def infer_shape(self, node, shapes):
        return [shapes[0]]


@register_funcify_default_op_cache_key(CheckObserved)
def _numba_check_observed(op, node=None, **kwargs):
    nd = len(op.observed)
    p = len(op.observed[0]) if nd else 1
    expected = np.array(op.observed, dtype=np.bool_).reshape(nd, p)
    n_time = -1 if op.n_time is None else int(op.n_time)
    message = op._message()
    two_d = node.inputs[0].ndim == 2

    @numba_njit
    def check_observed(y):
        y2 = y.reshape((y.shape[0], -1)) if two_d else y.reshape((y.shape[0], 1))
        bad = y2.shape[0] < max(nd, 1) or (n_time >= 0 and y2.shape[0] != n_time)
        if not bad:
            for t in range(nd):
                for i in range(p):
                    if (not np.isnan(y2[t, i])) != expected[t, i]:
                        bad = True
        if bad:
            raise ValueError(message)
        return y.copy()

    return check_observed, 1  # the salt of PyTensor's on-disk cache key (bump on edits)
