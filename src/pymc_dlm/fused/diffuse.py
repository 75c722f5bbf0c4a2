r"""``DiffuseSteps``: the planned exact diffuse steps as one PyTensor Op with an adjoint gradient.

``DiffuseSteps(tol)(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags)`` returns the
log-likelihood of each diffuse step and :math:`a_{d+1}, P_{*,d+1}` (D&K 2012, sections 5.2 and
6.4, univariate form, diagonal H), computed by :func:`pymc_dlm.numeric.adjoint_diffuse.diffuse_forward`;
its gradient is :func:`~pymc_dlm.numeric.adjoint_diffuse.diffuse_backward`.  Written as an Op
instead of a graph, the diffuse period costs PyTensor nothing to compile: the kernels are numba
functions cached on disk, whatever the model.  ``rows``/``flags`` encode a
:class:`~pymc_dlm.symbolic.DiffusePlan` (:func:`plan_arrays`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.gradient import DisconnectedType
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from ..numeric.adjoint_diffuse import diffuse_backward, diffuse_forward
from ..symbolic.filter import DiffusePlan
from . import native
from .op import KERNEL_VERSION, _canonical, _inputs

__all__ = ["DiffuseSteps", "DiffuseStepsGrad", "plan_arrays"]


def plan_arrays(plan: DiffusePlan, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows (d, p)`` (the planned observed rows, -1 padding) and ``flags (d, p)`` (1: diffuse)."""
    d = plan.n_steps
    rows = np.full((d, max(p, 1)), -1, dtype=np.int64)
    flags = np.zeros((d, max(p, 1)), dtype=np.int64)
    for t, step in enumerate(plan.steps):
        for q, (i, diffuse) in enumerate(step):
            rows[t, q] = i
            flags[t, q] = int(diffuse)
    return rows, flags


def _all_inputs(args) -> list:
    base = _inputs(args[:10])
    P1inf = pt.cast(pt.as_tensor_variable(args[10]), "float64")
    rows, flags = (x if isinstance(x, pt.TensorVariable) else
                   pt.as_tensor_variable(np.asarray(x, dtype=np.int64)) for x in args[11:13])
    return base + [P1inf, rows, flags]


class DiffuseSteps(Op):
    """Log-likelihood of the planned diffuse steps, and the state after them.

    Parameters
    ----------
    tol : float
        :math:`F_*` at or below which an ordinary row is skipped (the engines' ``TOL_DIFFUSE``).

    Examples
    --------
    >>> import numpy as np
    >>> one = np.ones((1, 1, 1))
    >>> ll, a, P = DiffuseSteps(1e-10)(np.array([[3.0]]), one, np.zeros((1, 1)), one, one,
    ...                                np.zeros((1, 1)), one, one, np.zeros(1), np.zeros((1, 1)),
    ...                                np.eye(1), np.array([[0]]), np.array([[1]]))
    >>> float(a.eval()[0]), float(P.eval()[0, 0])
    (3.0, 2.0)
    """

    __props__ = ("tol",)

    def __init__(self, tol: float):
        self.tol = float(tol)

    def make_node(self, *args) -> Apply:
        inputs = _all_inputs(args)
        outputs = [pt.vector(dtype="float64"), pt.vector(dtype="float64"),
                   pt.matrix(dtype="float64")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        *floats, rows, flags = inputs
        out = diffuse_forward(*_canonical(*floats), np.ascontiguousarray(rows),
                              np.ascontiguousarray(flags), self.tol)
        for store, value in zip(output_storage, out, strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        m = shapes[8][0]
        return [(shapes[11][0],), (m,), (m, m)]

    def pullback(self, inputs, outputs, output_grads):
        grads = [pt.zeros_like(o) if isinstance(g.type, DisconnectedType) else g
                 for o, g in zip(outputs, output_grads, strict=True)]
        gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1 = DiffuseStepsGrad(self.tol)(*inputs, *grads)
        return [pt.zeros_like(inputs[0]), gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1,
                pt.zeros_like(inputs[10]), DisconnectedType()(), DisconnectedType()()]

    def connection_pattern(self, node):
        return [[True] * 3 for _ in range(11)] + [[False] * 3, [False] * 3]


class DiffuseStepsGrad(Op):
    """Adjoint of :class:`DiffuseSteps`: gradients for Z, d, H, T, c, R, Q, a1, P1.

    Inputs: the thirteen inputs of :class:`DiffuseSteps` and the adjoints of its outputs
    (:math:`\\bar\\ell` (d,), :math:`\\bar a` (m,), :math:`\\bar P` (m, m)).
    """

    __props__ = ("tol",)

    def __init__(self, tol: float):
        self.tol = float(tol)

    def make_node(self, *args) -> Apply:
        inputs = _all_inputs(args[:13])
        extra = [pt.cast(pt.as_tensor_variable(x), "float64") for x in args[13:]]
        outputs = [x.type() for x in inputs[1:10]]
        return Apply(self, inputs + extra, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        floats, (rows, flags), grads = inputs[:11], inputs[11:13], inputs[13:]
        out = diffuse_backward(*_canonical(*floats), np.ascontiguousarray(rows),
                               np.ascontiguousarray(flags), self.tol, *_canonical(*grads))
        for store, value in zip(output_storage, out, strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return list(shapes[1:10])


@register_funcify_default_op_cache_key(DiffuseSteps)
def _numba_diffuse_steps(op, node=None, **kwargs):
    tol = op.tol
    ext, k = native.register("diffuse", KERNEL_VERSION), native.K_DFWD
    put, cc = native.put, native.contiguous

    @numba_njit
    def diffuse_steps(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags):
        nd, m = rows.shape[0], a1.shape[0]
        ll, a, P = np.empty(nd), np.empty(m), np.empty((m, m))
        # C-contiguous arrays (copies of strided views only), passed by address to the
        # compiled kernel (fused/native.py)
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, P1inf = cc(R), cc(Q), cc(a1), cc(P1), cc(P1inf)
        rows, flags, tl = cc(rows), cc(flags), np.full(1, tol)
        f = native.frame(k)
        put(f, k, 0, y); put(f, k, 1, Z); put(f, k, 2, d); put(f, k, 3, H); put(f, k, 4, T)
        put(f, k, 5, c); put(f, k, 6, R); put(f, k, 7, Q); put(f, k, 8, a1); put(f, k, 9, P1)
        put(f, k, 10, P1inf); put(f, k, 11, rows); put(f, k, 12, flags); put(f, k, 13, tl)
        put(f, k, 14, ll); put(f, k, 15, a); put(f, k, 16, P)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tl, f)
        return ll, a, P

    return diffuse_steps, KERNEL_VERSION


@register_funcify_default_op_cache_key(DiffuseStepsGrad)
def _numba_diffuse_steps_grad(op, node=None, **kwargs):
    tol = op.tol
    ext, k = native.register("diffuse_grad", KERNEL_VERSION), native.K_DBWD
    put, cc = native.put, native.contiguous

    @numba_njit
    def diffuse_steps_grad(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, llbar, abar, Pbar):
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, P1inf = cc(R), cc(Q), cc(a1), cc(P1), cc(P1inf)
        rows, flags, tl = cc(rows), cc(flags), np.full(1, tol)
        llbar, abar, Pbar = cc(llbar), cc(abar), cc(Pbar)
        gZ, gd, gH, gT = np.empty(Z.shape), np.empty(d.shape), np.empty(H.shape), np.empty(T.shape)
        gc, gR, gQ = np.empty(c.shape), np.empty(R.shape), np.empty(Q.shape)
        ga1, gP1 = np.empty(a1.shape), np.empty(P1.shape)
        f = native.frame(k)
        put(f, k, 0, y); put(f, k, 1, Z); put(f, k, 2, d); put(f, k, 3, H); put(f, k, 4, T)
        put(f, k, 5, c); put(f, k, 6, R); put(f, k, 7, Q); put(f, k, 8, a1); put(f, k, 9, P1)
        put(f, k, 10, P1inf); put(f, k, 11, rows); put(f, k, 12, flags); put(f, k, 13, tl)
        put(f, k, 14, llbar); put(f, k, 15, abar); put(f, k, 16, Pbar); put(f, k, 17, gZ)
        put(f, k, 18, gd); put(f, k, 19, gH); put(f, k, 20, gT); put(f, k, 21, gc)
        put(f, k, 22, gR); put(f, k, 23, gQ); put(f, k, 24, ga1); put(f, k, 25, gP1)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tl, llbar, abar, Pbar, f)
        return gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1

    return diffuse_steps_grad, KERNEL_VERSION
