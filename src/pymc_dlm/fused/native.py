r"""Opaque calls from PyTensor's numba graphs into the kernels, so a new graph compiles fast.

When numba compiles a function that calls another jitted function it links the callee's code
into the caller's module and optimises the whole module again.  PyTensor's numba backend
compiles each graph into one such function, so every new model graph would re-optimise all of
the Kalman kernels (measured: 14 s for a graph holding the likelihood Op and its gradient, 50 s
with the diffuse-steps Ops, on every new graph).  Here each kernel is compiled once into a C
callback (:func:`numba.cfunc`, cached on disk) and registered with LLVM under a versioned
symbol name; the Ops' numba implementations call that symbol as an external function, an
opaque call that costs the graph's compilation nothing and is safe for PyTensor's on-disk
cache (the symbol, not an address, is compiled in).

Calling convention: one ``int64`` "frame": the addresses of the k arrays, then three
dimensions per array (1 for the missing ones).  Scalars travel as arrays of one element.

The callbacks are compiled when a graph first needs them (the first time ever: tens of
seconds, then numba's on-disk cache).  Like any numba cache, that cache is keyed by this
file's time stamp and does not notice edits of the kernels it calls: after changing
``numeric/``, run ``make clean`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from ..numeric.adjoint_series import (
    scalar_series_backward,
    scalar_series_forward,
    series_backward,
    series_forward,
)

__all__ = ["address", "contiguous", "frame", "keep", "put", "register"]

SIG = types.void(types.CPointer(types.int64))


@intrinsic
def _f8(typingctx, addr):
    """An address (int64) as a float64 pointer."""
    sig = types.CPointer(types.float64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float64)))

    return sig, codegen


@intrinsic
def _i8(typingctx, addr):
    """An address (int64) as an int64 pointer."""
    sig = types.CPointer(types.int64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.int64)))

    return sig, codegen


@njit(cache=True, inline="always")
def _v(f, k, i):  # pragma: no cover - compiled
    return carray(_f8(f[i]), (f[k + 3 * i],))


@njit(cache=True, inline="always")
def _m(f, k, i):  # pragma: no cover - compiled
    return carray(_f8(f[i]), (f[k + 3 * i], f[k + 3 * i + 1]))


@njit(cache=True, inline="always")
def _t(f, k, i):  # pragma: no cover - compiled
    return carray(_f8(f[i]), (f[k + 3 * i], f[k + 3 * i + 1], f[k + 3 * i + 2]))


@njit(cache=True, inline="always")
def _mi(f, k, i):  # pragma: no cover - compiled
    return carray(_i8(f[i]), (f[k + 3 * i], f[k + 3 * i + 1]))


# --- the C callbacks: unpack the frame, run the kernel, which writes into the Op's outputs ----
K_FILTER = 17  # y Z d H T c R Q a1 P1 P1inf rows flags (tol, tol_diffuse) | llf_t a_pred P_pred


def _c_filter(fp):  # pragma: no cover - compiled
    k = K_FILTER
    f = carray(fp, (4 * k,))
    opts = _v(f, k, 13)
    series_forward(_m(f, k, 0), _t(f, k, 1), _m(f, k, 2), _t(f, k, 3), _t(f, k, 4), _m(f, k, 5),
                   _t(f, k, 6), _t(f, k, 7), _v(f, k, 8), _m(f, k, 9), _m(f, k, 10),
                   _mi(f, k, 11), _mi(f, k, 12), opts[0], opts[1], _v(f, k, 14), _m(f, k, 15),
                   _t(f, k, 16))


# y Z d H T c R Q a1 P1 P1inf rows flags llf_t a_pred P_pred llbar
# (tol, tol_diffuse, grad_T, grad_Z) | 10 gradients
K_GRAD = 28


def _c_grad(fp):  # pragma: no cover - compiled
    k = K_GRAD
    f = carray(fp, (4 * k,))
    opts = _v(f, k, 17)
    series_backward(_m(f, k, 0), _t(f, k, 1), _m(f, k, 2), _t(f, k, 3), _t(f, k, 4),
                    _m(f, k, 5), _t(f, k, 6), _t(f, k, 7), _v(f, k, 8), _m(f, k, 9),
                    _m(f, k, 10), _mi(f, k, 11), _mi(f, k, 12), opts[0], opts[1],
                    _v(f, k, 13), _m(f, k, 14), _t(f, k, 15), _v(f, k, 16), opts[2] != 0.0,
                    opts[3] != 0.0, _m(f, k, 18), _t(f, k, 19), _m(f, k, 20), _t(f, k, 21),
                    _t(f, k, 22), _m(f, k, 23), _t(f, k, 24), _t(f, k, 25), _v(f, k, 26),
                    _m(f, k, 27))


def _c_filter1(fp):  # pragma: no cover - compiled
    """``_c_filter`` for one state, series and disturbance: a module a tenth the size, which
    a new process loads from numba's cache in a few milliseconds instead of ~0.2 s."""
    k = K_FILTER
    f = carray(fp, (4 * k,))
    opts = _v(f, k, 13)
    scalar_series_forward(_m(f, k, 0), _t(f, k, 1), _m(f, k, 2), _t(f, k, 3), _t(f, k, 4),
                          _m(f, k, 5), _t(f, k, 6), _t(f, k, 7), _v(f, k, 8), _m(f, k, 9),
                          _m(f, k, 10), _mi(f, k, 11), _mi(f, k, 12), opts[1], _v(f, k, 14),
                          _m(f, k, 15), _t(f, k, 16))


def _c_grad1(fp):  # pragma: no cover - compiled
    """``_c_grad`` for one state, series and disturbance (see ``_c_filter1``)."""
    k = K_GRAD
    f = carray(fp, (4 * k,))
    opts = _v(f, k, 17)
    scalar_series_backward(_m(f, k, 0), _t(f, k, 1), _m(f, k, 2), _t(f, k, 3), _t(f, k, 4),
                           _m(f, k, 5), _t(f, k, 6), _t(f, k, 7), _v(f, k, 8), _m(f, k, 9),
                           _m(f, k, 10), _mi(f, k, 11), _mi(f, k, 12), opts[1],
                           _v(f, k, 13), _m(f, k, 14), _t(f, k, 15), _v(f, k, 16),
                           _m(f, k, 18), _t(f, k, 19), _m(f, k, 20), _t(f, k, 21),
                           _t(f, k, 22), _m(f, k, 23), _t(f, k, 24), _t(f, k, 25),
                           _v(f, k, 26), _m(f, k, 27))


_CALLBACKS = {"filter": _c_filter, "grad": _c_grad, "filter1": _c_filter1, "grad1": _c_grad1}
_compiled: dict[str, object] = {}


def register(kind: str, version: int) -> types.ExternalFunction:
    """Compile (or load from numba's cache) the callback ``kind`` and register it with LLVM,
    once per process, when a graph first needs it; return the external function a jitted
    wrapper calls.  The symbol carries the kernels' version."""
    name = f"pymc_dlm_{kind}_{version:x}"
    if name not in _compiled:
        _compiled[name] = cb = cfunc(SIG, cache=True)(_CALLBACKS[kind])
        llvm.add_symbol(name, cb.address)
    return types.ExternalFunction(name, SIG)


@njit(cache=True)
def contiguous(x):  # pragma: no cover - compiled
    """x itself when it is C-contiguous, else a C-contiguous copy (the callbacks read arrays
    by address; none of them writes to its inputs, so a contiguous input needs no copy)."""
    return np.ascontiguousarray(x)


@njit(cache=True)
def frame(k):  # pragma: no cover - compiled
    """An empty frame for k arrays."""
    return np.empty(4 * k, dtype=np.int64)


@njit(cache=True)
def put(frame, k, i, x):  # pragma: no cover - compiled
    """Record the C-contiguous array ``x`` as argument ``i`` of the frame."""
    frame[i] = x.ctypes.data
    s = x.shape
    for j in range(3):
        frame[k + 3 * i + j] = 1
    for j in range(len(s)):
        frame[k + 3 * i + j] = s[j]


@njit(cache=True)
def address(frame):  # pragma: no cover - compiled
    """The frame as the callbacks' argument."""
    return _i8(frame.ctypes.data)


@njit(cache=True)
def keep(*arrays):  # pragma: no cover - compiled
    """Use the arrays after the call, so that numba keeps them alive until it returns."""
    return len(arrays)
