r"""``KalmanLoglike``: the Kalman log-likelihood as one PyTensor Op with an analytic gradient.

``KalmanLoglike(tol)(y, Z, d, H, T, c, R, Q, a1, P1)`` returns the per-step log-likelihood
:math:`\ell_t = \log p(y_t \mid y_{1:t-1})` (D&K 2012, eq. 7.2, from the recursions 4.21-4.26)
and the predicted moments :math:`a_t, P_t` it stored on the way.  Its ``L_op`` is
:class:`KalmanLoglikeGrad`, the adjoint pass of :mod:`pymc_dlm.numeric.adjoint`, so the
gradient with respect to every matrix costs about one more filter pass, whatever the number
of parameters.  Both Ops have ``perform`` (Python modes) and a numba implementation registered
with PyTensor's numba dispatch (the default backend), which calls the same cached numba
kernels: no object-mode fallback, and no graph for PyTensor to compile but the Op itself.

Argument shapes: y (n, p) with NaN for missing values; the system matrices with a leading time
axis of length n (time-varying) or 1 (constant): Z (., p, m), d (., p), H (., p, p),
T (., m, m), c (., m), R (., m, r), Q (., r, r); a1 (m,), P1 (m, m) proper (not diffuse).
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

from ..numeric import adjoint, adjoint_diffuse, kernels
from . import native
from ..numeric.adjoint import filter_moments, gradients

__all__ = ["KERNEL_VERSION", "KalmanLoglike", "KalmanLoglikeGrad"]

#: Salt of PyTensor's on-disk cache key for the Ops' numba code: PyTensor keys that cache by
#: the Op's class and props only, and would otherwise reuse machine code compiled from an
#: older version of the kernels or of the Ops' numba wrappers (this file, diffuse.py,
#: native.py).
KERNEL_VERSION = int(hashlib.sha256(b"".join(
    Path(f).read_bytes() for f in (
        *(m.__file__ for m in (kernels, adjoint, adjoint_diffuse, native)),
        __file__, Path(__file__).with_name("diffuse.py"),
    )
)).hexdigest()[:15], 16)

NAMES = ("y", "Z", "d", "H", "T", "c", "R", "Q", "a1", "P1")
NDIM = dict(y=2, Z=3, d=2, H=3, T=3, c=2, R=3, Q=3, a1=1, P1=2)


def _inputs(args) -> list:
    out = []
    for name, x in zip(NAMES, args, strict=True):
        x = pt.as_tensor_variable(x)
        if x.ndim != NDIM[name]:
            raise ValueError(f"KalmanLoglike: {name} must have {NDIM[name]} dimensions; got {x.ndim}")
        out.append(pt.cast(x, "float64"))
    return out


def _constant(x) -> bool:
    """Whether x is a constant: nothing can ask for a gradient with respect to it (the
    structural T of a model, e.g.).  An expression of constants does not count: ``pt.grad``
    may be asked for the gradient with respect to an intermediate variable."""
    return isinstance(x, Constant)


def _canonical(*arrays):
    """C-contiguous writable float64 copies: one numba signature for every caller."""
    return [np.array(x, dtype=np.float64, order="C") for x in arrays]


class KalmanLoglike(Op):
    """Per-step Kalman log-likelihood (and the predicted moments) with an adjoint gradient.

    Parameters
    ----------
    tol : float
        Relative pivot tolerance of the Cholesky factor of :math:`F_t`; a smaller pivot means
        :math:`F_t` is not positive definite, and that step and all later ones are NaN.

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

    __props__ = ("tol",)

    def __init__(self, tol: float):
        self.tol = float(tol)

    def make_node(self, *args) -> Apply:
        inputs = _inputs(args)
        outputs = [pt.vector(dtype="float64"), pt.matrix(dtype="float64"),
                   pt.tensor3(dtype="float64")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        for store, value in zip(output_storage, filter_moments(*_canonical(*inputs), self.tol),
                                strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        n, m = shapes[0][0], shapes[8][0]
        return [(n,), (n, m), (n, m, m)]

    def pullback(self, inputs, outputs, output_grads):
        g_ll, *rest = output_grads
        for g in rest:
            if not isinstance(g.type, DisconnectedType):
                return [NullType("the predicted moments of KalmanLoglike are not differentiable")()
                        for _ in inputs]
        if isinstance(g_ll.type, DisconnectedType):
            return [pt.zeros_like(x) for x in inputs]
        return KalmanLoglikeGrad(self.tol, grad_T=not _constant(inputs[4]),
                                 grad_Z=not _constant(inputs[1]))(*inputs, *outputs, g_ll)

    def connection_pattern(self, node):
        return [[True, True, True] for _ in node.inputs]


class KalmanLoglikeGrad(Op):
    """The adjoint pass: gradients of :math:`\\sum_t \\bar\\ell_t \\ell_t` for the ten inputs.

    Inputs: the ten inputs of :class:`KalmanLoglike`, its three outputs, and the weights
    :math:`\\bar\\ell` (n,).  Outputs: one gradient per input, of that input's shape (zero
    when some :math:`F_t` was not positive definite).  With ``grad_T=False`` the gradient of T
    is not computed (zero): :meth:`KalmanLoglike.pullback` asks for that when T is a
    constant, which saves the one :math:`O(m^3)` term per step of the adjoint pass; likewise
    ``grad_Z=False`` for a constant Z (an :math:`O(pm^2)` term per step).
    """

    __props__ = ("tol", "grad_T", "grad_Z")

    def __init__(self, tol: float, grad_T: bool = True, grad_Z: bool = True):
        self.tol = float(tol)
        self.grad_T = bool(grad_T)
        self.grad_Z = bool(grad_Z)

    def make_node(self, *args) -> Apply:
        inputs = _inputs(args[:10])
        extra = [pt.as_tensor_variable(x) for x in args[10:]]
        outputs = [x.type() for x in inputs]
        return Apply(self, inputs + extra, outputs)

    def perform(self, node, inputs, output_storage) -> None:
        for store, value in zip(output_storage,
                                gradients(*_canonical(*inputs), self.tol, self.grad_T,
                                          self.grad_Z),
                                strict=True):
            store[0] = value

    def infer_shape(self, node, shapes):
        return list(shapes[:10])


@register_funcify_default_op_cache_key(KalmanLoglike)
def _numba_kalman_loglike(op, node=None, **kwargs):
    tol = op.tol
    ext, k = native.register("filter", KERNEL_VERSION), native.K_FILTER
    put, cc = native.put, native.contiguous

    @numba_njit
    def kalman_loglike(y, Z, d, H, T, c, R, Q, a1, P1):
        n, m = y.shape[0], a1.shape[0]
        ll, a, P = np.empty(n), np.empty((n, m)), np.empty((n, m, m))
        # C-contiguous arrays (copies of strided views only), passed by address to the
        # compiled kernel (fused/native.py)
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, tl = cc(R), cc(Q), cc(a1), cc(P1), np.full(1, tol)
        f = native.frame(k)
        put(f, k, 0, y); put(f, k, 1, Z); put(f, k, 2, d); put(f, k, 3, H); put(f, k, 4, T)
        put(f, k, 5, c); put(f, k, 6, R); put(f, k, 7, Q); put(f, k, 8, a1); put(f, k, 9, P1)
        put(f, k, 10, tl); put(f, k, 11, ll); put(f, k, 12, a); put(f, k, 13, P)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, tl, f)
        return ll, a, P

    return kalman_loglike, KERNEL_VERSION


@register_funcify_default_op_cache_key(KalmanLoglikeGrad)
def _numba_kalman_loglike_grad(op, node=None, **kwargs):
    tol, grad_T, grad_Z = op.tol, float(op.grad_T), float(op.grad_Z)
    ext, k = native.register("grad", KERNEL_VERSION), native.K_GRAD
    put, cc = native.put, native.contiguous

    @numba_njit
    def kalman_loglike_grad(y, Z, d, H, T, c, R, Q, a1, P1, llf_t, a_pred, P_pred, llbar):
        y, Z, d, H, T, c = cc(y), cc(Z), cc(d), cc(H), cc(T), cc(c)
        R, Q, a1, P1, tl = cc(R), cc(Q), cc(a1), cc(P1), np.full(1, tol)
        llf_t, a_pred, P_pred, llbar = cc(llf_t), cc(a_pred), cc(P_pred), cc(llbar)
        gy, gZ, gd, gH = np.empty(y.shape), np.empty(Z.shape), np.empty(d.shape), np.empty(H.shape)
        gT, gc, gR, gQ = np.empty(T.shape), np.empty(c.shape), np.empty(R.shape), np.empty(Q.shape)
        ga1, gP1 = np.empty(a1.shape), np.empty(P1.shape)
        f = native.frame(k)
        put(f, k, 0, y); put(f, k, 1, Z); put(f, k, 2, d); put(f, k, 3, H); put(f, k, 4, T)
        put(f, k, 5, c); put(f, k, 6, R); put(f, k, 7, Q); put(f, k, 8, a1); put(f, k, 9, P1)
        put(f, k, 10, llf_t); put(f, k, 11, a_pred); put(f, k, 12, P_pred); put(f, k, 13, llbar)
        put(f, k, 14, tl); put(f, k, 15, gy); put(f, k, 16, gZ); put(f, k, 17, gd)
        put(f, k, 18, gH); put(f, k, 19, gT); put(f, k, 20, gc); put(f, k, 21, gR)
        put(f, k, 22, gQ); put(f, k, 23, ga1); put(f, k, 24, gP1)
        gt, gz = np.full(1, grad_T), np.full(1, grad_Z)
        put(f, k, 25, gt); put(f, k, 26, gz)
        ext(native.address(f))
        native.keep(y, Z, d, H, T, c, R, Q, a1, P1, llf_t, a_pred, P_pred, llbar, tl, gt, gz, f)
        return gy, gZ, gd, gH, gT, gc, gR, gQ, ga1, gP1

    return kalman_loglike_grad, KERNEL_VERSION
