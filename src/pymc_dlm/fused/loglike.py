r"""The log-likelihood graph of the fused engine: one Op for the whole series.

Same arguments, conventions and numbers as :func:`pymc_dlm.symbolic.loglike_t` (the scan
reference): one :class:`~pymc_dlm.fused.KalmanLoglike` Op runs the exact diffuse steps of the
plan (D&K 2012 sections 5.2 and 6.4) and then the filter from :math:`a_{d+1}, P_{*,d+1}`
(eqs. 4.21-4.26 and 7.2, missing rows dropped as in section 4.10), in numba, and its gradient
is the adjoint pass.  With an H that is not diagonal in the diffuse period, the diffuse steps
are the symbolic engine's :func:`pymc_dlm.symbolic.diffuse_steps` (which decorrelates it) and
the Op runs the rest of the series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant

from ..numeric.filter import TOL
from ..symbolic.assemble import SystemTensors
from ..symbolic.filter import TOL_DIFFUSE, DiffusePlan, diffuse_steps, loglike_options
from .op import KalmanLoglike, plan_arrays

__all__ = ["loglike", "loglike_t", "structurally_diagonal"]

_BASE = dict(Z=2, d=1, H=2, T=2, c=1, R=2, Q=2)


def loglike_t(sys: SystemTensors, y: Any, plan: DiffusePlan, *, h_diagonal: bool | None = None,
              tol_diffuse: float = TOL_DIFFUSE, tol: float = TOL, convention: str = "statsmodels",
              burn: int = 0) -> pt.TensorVariable:
    r"""Per-time-step log-likelihood :math:`\log p(y_t \mid y_{1:t-1})`, fused engine.

    Parameters
    ----------
    sys, y, plan, h_diagonal, tol_diffuse
        As :func:`pymc_dlm.symbolic.loglike_t`.
    tol : float
        Relative Cholesky pivot tolerance for :math:`F_t` (the NumPy engine's ``TOL``).
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        "kfas" drops the :math:`\tfrac12\log 2\pi` of each diffuse observation element
        (:func:`pymc_dlm.symbolic.filter.loglike_options`).
    burn : int, default 0
        The steps t <= burn contribute 0: the sum is :math:`\log p(y_{burn+1:n} \mid
        y_{1:burn})`.

    Returns
    -------
    (n,) tensor
        NaN from the first step whose :math:`F_t` is not positive definite on;
        :func:`loglike` turns the total into ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.symbolic import diffuse_plan, system_tensors
    >>> y = dlm.datasets.load_nile().to_numpy()[:, None]
    >>> plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    >>> ll = loglike_t(system_tensors(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5)), y, plan)
    >>> round(float(ll.sum().eval()), 4)
    -633.4646
    >>> ll = loglike_t(system_tensors(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5)), y, plan,
    ...                convention="kfas")
    >>> round(float(ll.sum().eval()), 4)
    -632.5456
    """
    ll_t = _loglike_t(sys, y, plan, h_diagonal, tol_diffuse, tol)
    return loglike_options(ll_t, plan, convention=convention, burn=burn,
                           n=pt.as_tensor_variable(y).type.shape[0])


def _loglike_t(sys, y, plan, h_diagonal, tol_diffuse, tol):
    """:func:`loglike_t` in statsmodels' convention, without burn-in."""
    nd = plan.n_steps
    p = int(sys.Z.type.shape[-2])
    if h_diagonal is None:
        h_diagonal = p == 1 or structurally_diagonal(sys.H, p)
    if nd == 0 or h_diagonal:  # one Op: the diffuse steps, then the filter
        return KalmanLoglike(tol, tol_diffuse)(
            y, *(_part(sys, k, slice(None)) for k in _BASE), sys.a1, sys.P1, sys.P1inf,
            *plan_arrays(plan, p))[0]
    # a non-diagonal H is decorrelated in the diffuse steps: the symbolic engine's graph
    y, a, P, parts = diffuse_steps(sys, y, plan, h_diagonal=h_diagonal, tol_diffuse=tol_diffuse)
    ll_r = KalmanLoglike(tol)(y[nd:], *(_part(sys, k, slice(nd, None)) for k in _BASE), a, P)[0]
    return pt.concatenate([*parts, ll_r])


def _part(sys: SystemTensors, name: str, span: slice) -> Any:
    """A system tensor over the time steps ``span`` (a constant one gets a time axis of 1).
    A constant stays a :class:`~pytensor.graph.basic.Constant` (the Ops skip gradients of
    constants, see :class:`~pymc_dlm.fused.KalmanLoglikeGrad`)."""
    x = getattr(sys, name)
    if isinstance(x, Constant):
        return pt.constant(x.data[span] if x.ndim == _BASE[name] + 1 else x.data[None])
    return x[span] if x.ndim == _BASE[name] + 1 else x[None]


def structurally_diagonal(H: Any, p: int) -> bool:
    """Whether the graph of a constant H (2-D) is diagonal whatever its inputs' values: a
    constant with zero off-diagonal entries, ``pt.diag(vector)``, or such a constant with only
    diagonal entries set (how :func:`pymc_dlm.symbolic.system_tensors` assembles entry lists).

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> s = pt.dvector("s")
    >>> structurally_diagonal(pt.diag(s ** 2), 2), structurally_diagonal(pt.outer(s, s), 2)
    (True, False)
    """
    from pytensor.graph.basic import Constant
    from pytensor.tensor.basic import AllocDiag
    from pytensor.tensor.subtensor import AdvancedIncSubtensor

    if H.ndim != 2:
        return False
    if isinstance(H, Constant):
        return bool(np.all(np.asarray(H.data) * (1 - np.eye(p)) == 0))
    node = H.owner
    if node is None:
        return False
    if isinstance(node.op, AllocDiag):
        return node.op.offset == 0 and node.inputs[0].ndim == 1
    if isinstance(node.op, AdvancedIncSubtensor) and node.op.set_instead_of_inc:
        base, _, *idx = node.inputs
        return (len(idx) == 2 and all(isinstance(i, Constant) for i in idx)
                and np.array_equal(np.asarray(idx[0].data), np.asarray(idx[1].data))
                and structurally_diagonal(base, p))
    return False


def loglike(sys: SystemTensors, y: Any, plan: DiffusePlan, **kwargs: Any) -> pt.TensorVariable:
    """Total log-likelihood; ``-inf`` when some :math:`F_t` is not positive definite (never NaN).

    Parameters, conventions and options (``convention``, ``burn``) as :func:`loglike_t`.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.symbolic import diffuse_plan, system_tensors
    >>> y = dlm.datasets.load_nile().to_numpy()[:, None]
    >>> plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    >>> round(float(loglike(system_tensors(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5)), y,
    ...                     plan).eval()), 4)
    -633.4646
    """
    total = pt.sum(loglike_t(sys, y, plan, **kwargs))
    return pt.switch(pt.isnan(total), -np.inf, total)
