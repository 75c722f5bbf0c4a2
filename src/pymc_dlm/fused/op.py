r"""``KalmanLoglike``: the Kalman log-likelihood as one PyTensor Op with an analytic gradient.

``KalmanLoglike(tol)(y, Z, d, H, T, c, R, Q, a1, P1[, P1inf, rows, flags])`` returns the
per-step log-likelihood :math:`\ell_t = \log p(y_t \mid y_{1:t-1})` (D&K 2012, eq. 7.2: the
planned exact diffuse steps of sections 5.2 and 6.4, then the recursions 4.21-4.26) and the
predicted moments :math:`a_t, P_t` of the steps after the diffuse ones.  Its ``L_op`` is
:class:`KalmanLoglikeGrad`, the adjoint pass of :mod:`pymc_dlm.numeric.adjoint_series`, so the
gradient with respect to every matrix costs about one more filter pass, whatever the number
of parameters.  Both Ops have ``perform`` (Python modes) and a numba implementation registered
with PyTensor's numba dispatch (the default backend), which calls the same cached numba
kernels: no object-mode fallback, and no graph for PyTensor to compile but the Op itself.

Argument shapes: y (n, p) with NaN for missing values; the system matrices with a leading time
axis of length n (time-varying) or 1 (constant): Z (., p, m), d (., p), H (., p, p),
T (., m, m), c (., m), R (., m, r), Q (., r, r); a1 (m,), P1 (m, m) the proper part of the
start, P1inf (m, m) its diffuse part, ``rows``/``flags`` (nd, p) the plan of the diffuse steps
(:func:`plan_arrays`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.null_type import NullType
from pytensor.graph.op import Op
from pytensor.gradient import DisconnectedType
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from ..numeric import adjoint, adjoint_diffuse, adjoint_series, kernels
from ..numeric.adjoint_series import series_backward, series_forward
from ..numeric.filter import TOL_DIFFUSE
from . import native

__all__ = ["KERNEL_VERSION", "KalmanLoglike", "KalmanLoglikeGrad", "plan_arrays"]

#: Salt of PyTensor's on-disk cache key for the Ops' numba code: PyTensor keys that cache by
#: the Op's class and props only, and would otherwise reuse machine code compiled from an
#: older version of the kernels or of the Ops' numba wrappers (this file, diffuse.py,
#: native.py).
KERNEL_VERSION = int(hashlib.sha256(b"".join(
    Path(f).read_bytes() for f in (
        *(m.__file__ for m in (kernels, adjoint, adjoint_diffuse, adjoint_series, native)),
        __file__,
    )
)).hexdigest()[:15], 16)

NAMES = ("y", "Z", "d", "H", "T", "c", "R", "Q", "a1", "P1")
NDIM = dict(y=2, Z=3, d=2, H=3, T=3, c=2, R=3, Q=3, a1=1, P1=2)


def _inputs(args) -> list:
    """The ten float inputs, then P1inf (m, m) and the plan ``rows``, ``flags`` (nd, p) int64
    (with ten arguments: no diffuse state, an empty plan)."""
    if len(args) not in (10, 13):
        raise TypeError(f"KalmanLoglike takes 10 or 13 inputs; got {len(args)}")
    out = []
    for name, x in zip(NAMES, args[:10], strict=True):
        x = pt.as_tensor_variable(x)
        if x.ndim != NDIM[name]:
            raise ValueError(f"KalmanLoglike: {name} must have {NDIM[name]} dimensions; got {x.ndim}")
        out.append(pt.cast(x, "float64"))
    if len(args) == 13:
        P1inf, rows, flags = args[10:]
    else:
        m, p = out[8].shape[0], out[1].shape[1]
        P1inf = pt.zeros((m, m))
        rows = flags = pt.zeros((0, p), dtype="int64")
    out.append(pt.cast(pt.as_tensor_variable(P1inf), "float64"))
    for x in (rows, flags):
        out.append(x if isinstance(x, pt.TensorVariable) else
                   pt.as_tensor_variable(np.asarray(x, dtype=np.int64)))
    return out


def plan_arrays(plan, p: int) -> tuple[np.ndarray, np.ndarray]:
    """A :class:`~pymc_dlm.symbolic.DiffusePlan` as arrays: ``rows (nd, p)`` the planned
    observed rows of each diffuse step (-1 padding) and ``flags (nd, p)`` (1: diffuse update)."""
    d = plan.n_steps
    rows = np.full((d, max(p, 1)), -1, dtype=np.int64)
    flags = np.zeros((d, max(p, 1)), dtype=np.int64)
    for t, step in enumerate(plan.steps):
        for q, (i, diffuse) in enumerate(step):
            rows[t, q] = i
            flags[t, q] = int(diffuse)
    return rows, flags


def _constant(x) -> bool:
    """Whether x is a constant: nothing can ask for a gradient with respect to it (the
    structural T of a model, e.g.).  An expression of constants does not count: ``pt.grad``
    may be asked for the gradient with respect to an intermediate variable."""
    return isinstance(x, Constant)


def _canonical(*arrays):
    """C-contiguous writable copies (float64, or int64 for the plan): one numba signature."""
    return [np.array(x, dtype=np.int64 if np.asarray(x).dtype.kind in "iu" else np.float64,
                     order="C") for x in arrays]


class KalmanLoglike(Op):
    """Per-step Kalman log-likelihood (and the predicted moments) with an adjoint gradient.

    ``KalmanLoglike(tol)(y, Z, d, H, T, c, R, Q, a1, P1[, P1inf, rows, flags])``: with the
    last three, the planned exact diffuse steps run first (``rows``/``flags`` from
    :func:`plan_arrays`; a1, P1 the proper part of the start), then the filter.

    Parameters
    ----------
    tol : float
        Relative pivot tolerance of the Cholesky factor of :math:`F_t`; a smaller pivot means
        :math:`F_t` is not positive definite, and that step and all later ones are NaN.
    tol_diffuse : float
        :math:`F_*` at or below which an ordinary row of a diffuse step is skipped (the
        engines' ``TOL_DIFFUSE``).

    Returns
    -------
    llf_t : (n,); a_pred : (n - nd, m); P_pred : (n - nd, m, m)
        The log-likelihood of each step and the predicted moments of the steps after the
        diffuse ones (not differentiable).

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> one = np.ones((1, 1, 1))
    >>> ll, a_pred, P_pred = KalmanLoglike(1e-12)(np.array([[1.0]]), one, np.zeros((1, 1)), one,
    ...                                           one, np.zeros((1, 1)), one, one, np.zeros(1),
    ...                                           np.eye(1))
    >>> bool(np.isclose(ll.eval()[0], -0.5 * (np.log(2 * np.pi * 2.0) + 0.5)))
    True
    """

    __props__ = ("tol", "tol_diffuse")

    def __init__(self, tol: float, tol_diffuse: float = TOL_DIFFUSE):
        self.tol = float(tol)
        self.tol_diffuse = float(tol_diffuse)

    def make_node(self, *args) -> Apply:
        inputs = _inputs(args)
        outputs = [pt.vector(dtype="float64"), pt.matrix(dtype="float64"),
                   pt.tensor3(dtype="float64")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        x = _canonical(*inputs)
        n, m, nd = x[0].shape[0], x[8].shape[0], x[11].shape[0]
        out = np.empty(n), np.empty((n - nd, m)), np.empty((n - nd, m, m))
        series_forward(*x, self.tol, self.tol_diffuse, *out)
        for store, value in zip(output_storage, out, strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        n, m, nd = shapes[0][0], shapes[8][0], shapes[11][0]
        return [(n,), (n - nd, m), (n - nd, m, m)]

    def pullback(self, inputs, outputs, output_grads):
        g_ll, *rest = output_grads
        for g in rest:
            if not isinstance(g.type, DisconnectedType):
                return [NullType("the predicted moments of KalmanLoglike are not differentiable")()
                        for _ in inputs]
        if isinstance(g_ll.type, DisconnectedType):
            grads = [pt.zeros_like(x) for x in inputs[:11]]
        else:
            op = KalmanLoglikeGrad(self.tol, self.tol_diffuse, grad_T=not _constant(inputs[4]),
                                   grad_Z=not _constant(inputs[1]))
            grads = [*op(*inputs, *outputs, g_ll), pt.zeros_like(inputs[10])]
        return [*grads, DisconnectedType()(), DisconnectedType()()]

    def connection_pattern(self, node):
        return [[True, True, True] for _ in range(11)] + [[False] * 3, [False] * 3]


class KalmanLoglikeGrad(Op):
    r"""The adjoint pass: gradients of :math:`\sum_t \bar\ell_t \ell_t` for y, Z, ..., P1.

    Inputs: the thirteen inputs of :class:`KalmanLoglike`, its three outputs, and the weights
    :math:`\bar\ell` (n,).  Outputs: one gradient per float input but P1inf, of that
    input's shape (zero when some :math:`F_t` was not positive definite).  With
    ``grad_T=False`` the gradient of T is not computed (zero): :meth:`KalmanLoglike.pullback`
    asks for that when T is a constant, which saves the one :math:`O(m^3)` term per step of
    the adjoint pass; likewise ``grad_Z=False`` for a constant Z (an :math:`O(pm^2)` term).
    """

    __props__ = ("tol", "tol_diffuse", "grad_T", "grad_Z")

    def __init__(self, tol: float, tol_diffuse: float = TOL_DIFFUSE, grad_T: bool = True,
                 grad_Z: bool = True):
        self.tol = float(tol)
        self.tol_diffuse = float(tol_diffuse)
        self.grad_T = bool(grad_T)
        self.grad_Z = bool(grad_Z)

    def make_node(self, *args) -> Apply:
        inputs = _inputs(args[:13])
        extra = [pt.as_tensor_variable(x) for x in args[13:]]
        outputs = [x.type() for x in inputs[:10]]
        return Apply(self, inputs + extra, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        x = _canonical(*inputs)
        out = [np.empty(v.shape) for v in x[:10]]
        series_backward(*x[:13], self.tol, self.tol_diffuse, *x[13:], self.grad_T, self.grad_Z,
                        *out)
        for store, value in zip(output_storage, out, strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return list(shapes[:10])


def _one_state(node) -> bool:
    """Whether the node's static shapes say m = p = r = 1 (then the small callbacks of
    native.py serve it; the general ones would take that path too, at run time)."""
    if node is None:
        return False
    y, R, a1 = node.inputs[0].type.shape, node.inputs[6].type.shape, node.inputs[8].type.shape
    return y[1] == 1 and R[2] == 1 and a1[0] == 1


def _callback(kind: str, node):
    """The external function of the callback for this node, and the salt of PyTensor's cache
    key (it differs between the general and the one-state callback)."""
    one = _one_state(node)
    return native.register(kind + "1" if one else kind, KERNEL_VERSION), 2 * KERNEL_VERSION + one


@register_funcify_default_op_cache_key(KalmanLoglike)
def _numba_kalman_loglike(op, node=None, **kwargs):
    tol, tol_diffuse = op.tol, op.tol_diffuse
    (ext, key), k = _callback("filter", node), native.K_FILTER
    put, cc = native.put, native.contiguous

    @numba_njit
    def kalman_loglike(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags):
        n, m, nd = y.shape[0], a1.shape[0], rows.shape[0]
        ll, a, P = np.empty(n), np.empty((n - nd, m)), np.empty((n - nd, m, m))
        # C-contiguous arrays (copies of strided views only), passed by address to the
        # compiled kernel (fused/native.py)
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, P1inf = cc(R), cc(Q), cc(a1), cc(P1), cc(P1inf)
        rows, flags, tl = cc(rows), cc(flags), np.array([tol, tol_diffuse])
        f = native.frame(k)
        i = np.int64(0)  # not a literal: one compiled `put` per array type, not per slot
        put(f, k, i, y); put(f, k, i + 1, Z); put(f, k, i + 2, d); put(f, k, i + 3, H)
        put(f, k, i + 4, T); put(f, k, i + 5, c); put(f, k, i + 6, R); put(f, k, i + 7, Q)
        put(f, k, i + 8, a1); put(f, k, i + 9, P1); put(f, k, i + 10, P1inf)
        put(f, k, i + 11, rows); put(f, k, i + 12, flags); put(f, k, i + 13, tl)
        put(f, k, i + 14, ll); put(f, k, i + 15, a); put(f, k, i + 16, P)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, tl, f)
        return ll, a, P

    return kalman_loglike, key


@register_funcify_default_op_cache_key(KalmanLoglikeGrad)
def _numba_kalman_loglike_grad(op, node=None, **kwargs):
    tol, tol_diffuse, grad_T, grad_Z = op.tol, op.tol_diffuse, float(op.grad_T), float(op.grad_Z)
    (ext, key), k = _callback("grad", node), native.K_GRAD
    put, cc = native.put, native.contiguous

    @numba_njit
    def kalman_loglike_grad(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, llf_t, a_pred,
                            P_pred, llbar):
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, P1inf = cc(R), cc(Q), cc(a1), cc(P1), cc(P1inf)
        rows, flags = cc(rows), cc(flags)
        llf_t, a_pred, P_pred, llbar = cc(llf_t), cc(a_pred), cc(P_pred), cc(llbar)
        opts = np.array([tol, tol_diffuse, grad_T, grad_Z])
        gy, gZ, gd, gH = np.empty(y.shape), np.empty(Z.shape), np.empty(d.shape), np.empty(H.shape)
        gT, gc, gR, gQ = np.empty(T.shape), np.empty(c.shape), np.empty(R.shape), np.empty(Q.shape)
        ga1, gP1 = np.empty(a1.shape), np.empty(P1.shape)
        f = native.frame(k)
        i = np.int64(0)  # not a literal: one compiled `put` per array type, not per slot
        put(f, k, i, y); put(f, k, i + 1, Z); put(f, k, i + 2, d); put(f, k, i + 3, H)
        put(f, k, i + 4, T); put(f, k, i + 5, c); put(f, k, i + 6, R); put(f, k, i + 7, Q)
        put(f, k, i + 8, a1); put(f, k, i + 9, P1); put(f, k, i + 10, P1inf)
        put(f, k, i + 11, rows); put(f, k, i + 12, flags); put(f, k, i + 13, llf_t)
        put(f, k, i + 14, a_pred); put(f, k, i + 15, P_pred); put(f, k, i + 16, llbar)
        put(f, k, i + 17, opts); put(f, k, i + 18, gy); put(f, k, i + 19, gZ)
        put(f, k, i + 20, gd); put(f, k, i + 21, gH); put(f, k, i + 22, gT); put(f, k, i + 23, gc)
        put(f, k, i + 24, gR); put(f, k, i + 25, gQ); put(f, k, i + 26, ga1)
        put(f, k, i + 27, gP1)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, P1inf, rows, flags, llf_t, a_pred, P_pred,
                    llbar, opts, f)
        return gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1

    return kalman_loglike_grad, key
