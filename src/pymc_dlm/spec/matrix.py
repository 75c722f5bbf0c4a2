"""Matrix entries that may be numbers or symbolic (PyTensor) values.

The specification layer never imports PyTensor.  A system matrix is stored either as a
float64 :class:`numpy.ndarray` (every entry a number; the common case) or, when some entry
is symbolic, as a small expression tree of the nodes defined here.  Each engine evaluates
the tree with its own primitives: :data:`NUMPY_OPS` here for the NumPy engine, the PyTensor
equivalents in :mod:`pymc_dlm.symbolic`.

A matrix is *time-varying* exactly when it has one more axis than its constant form
(``Z`` is ``(p, m)`` or ``(n, p, m)``); nothing is guessed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BlockDiag",
    "Concat",
    "Entries",
    "Sum",
    "evaluate",
    "is_numeric",
    "is_symbolic_leaf",
    "static_shape",
]


def is_symbolic_leaf(x: Any) -> bool:
    """Return True for a value that is neither a number nor a numeric array (e.g. a PyTensor variable)."""
    if isinstance(x, (numbers.Number, np.ndarray, np.generic, _Node)):
        return False
    return hasattr(x, "ndim") and hasattr(x, "type")


def _entry_is_numeric(x: Any) -> bool:
    return isinstance(x, (numbers.Real, np.floating, np.integer, np.bool_)) or (
        isinstance(x, np.ndarray) and x.dtype.kind in "biuf"
    )


def is_numeric(x: Any) -> bool:
    """Return True when ``x`` is a float ndarray (the numeric storage of a system matrix)."""
    return isinstance(x, np.ndarray) and x.dtype == np.float64


class _Node:
    """Base of the expression nodes; subclasses define ``shape`` (static, ``None`` if unknown)."""

    shape: tuple


@dataclass(frozen=True, eq=False)
class Entries(_Node):
    """A vector or matrix written entry by entry, some entries symbolic scalars.

    ``rows`` is a tuple of entries (vector) or a tuple of tuples (matrix).
    """

    rows: tuple

    @property
    def shape(self) -> tuple:
        if self.rows and isinstance(self.rows[0], tuple):
            return (len(self.rows), len(self.rows[0]))
        return (len(self.rows),)


@dataclass(frozen=True, eq=False)
class BlockDiag(_Node):
    """Block-diagonal matrix of ``parts`` (blocks may be rectangular); time-varying if any part is."""

    parts: tuple
    shape: tuple


@dataclass(frozen=True, eq=False)
class Concat(_Node):
    """Concatenation of ``parts`` along the last axis (vectors, or the columns of ``Z``)."""

    parts: tuple
    shape: tuple
    base_ndim: int


@dataclass(frozen=True, eq=False)
class Sum(_Node):
    """Elementwise sum of ``parts`` (``H`` and ``d`` of composed models)."""

    parts: tuple
    shape: tuple
    base_ndim: int


def static_shape(x: Any) -> tuple:
    """Static shape of a stored entry; unknown dimensions are ``None``."""
    if isinstance(x, np.ndarray):
        return x.shape
    if isinstance(x, _Node):
        return x.shape
    shape = getattr(getattr(x, "type", None), "shape", None)
    if shape is not None:
        return tuple(shape)
    return (None,) * int(x.ndim)


def as_entry(x: Any, name: str) -> Any:
    """Normalise a user value: numbers become float64 arrays, symbolic values are kept.

    Nested lists may mix numbers and symbolic scalars; they become :class:`Entries`.
    """
    if isinstance(x, (_Node,)) or is_symbolic_leaf(x):
        return x
    if isinstance(x, (list, tuple)):
        flat = _flatten(x)
        if any(is_symbolic_leaf(e) for e in flat):
            rows = tuple(tuple(r) if isinstance(r, (list, tuple)) else r for r in x)
            return Entries(rows)
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be numbers, a NumPy array or a PyTensor variable; got {type(x).__name__}"
        ) from err
    return arr


def _flatten(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        out = []
        for e in x:
            out.extend(_flatten(e))
        return out
    return [x]


# --------------------------------------------------------------------------------------------
# Construction helpers used by StateSpaceModel.__add__: eager when everything is numeric.
# --------------------------------------------------------------------------------------------


def _time_len(shape: tuple, base_ndim: int) -> int | None:
    return shape[0] if len(shape) == base_ndim + 1 else None


def _any_time(shapes: list, base_ndim: int) -> bool:
    """Some part has a time axis (its length possibly unknown, e.g. a ``pm.Data`` regressor)."""
    return any(len(s) == base_ndim + 1 for s in shapes)


def block_diag(parts: list, base_ndim: int = 2) -> Any:
    """Block-diagonal composition (time-varying if any part is)."""
    shapes = [static_shape(p) for p in parts]
    rows = sum(s[-2] for s in shapes)
    cols = sum(s[-1] for s in shapes)
    n = next((_time_len(s, base_ndim) for s in shapes if _time_len(s, base_ndim) is not None), None)
    shape = (rows, cols) if n is None else (n, rows, cols)
    if all(is_numeric(p) for p in parts):
        return NUMPY_OPS.block_diag(parts, shape)
    return BlockDiag(tuple(parts), shape)


def concat(parts: list, base_ndim: int) -> Any:
    """Concatenate along the last axis (time-varying if any part is)."""
    shapes = [static_shape(p) for p in parts]
    last = sum(s[-1] for s in shapes)
    n = next((_time_len(s, base_ndim) for s in shapes if _time_len(s, base_ndim) is not None), None)
    shape = shapes[0][-base_ndim:-1] + (last,)
    if n is not None or _any_time(shapes, base_ndim):  # n None: known at run time only
        shape = (n,) + shape
    if all(is_numeric(p) for p in parts):
        return NUMPY_OPS.concat(parts, shape, base_ndim)
    return Concat(tuple(parts), shape, base_ndim)


def add(parts: list, base_ndim: int) -> Any:
    """Elementwise sum (time-varying if any part is)."""
    shapes = [static_shape(p) for p in parts]
    n = next((_time_len(s, base_ndim) for s in shapes if _time_len(s, base_ndim) is not None), None)
    tv = n is not None or _any_time(shapes, base_ndim)
    shape = (n,) + shapes[0][-base_ndim:] if tv else shapes[0][-base_ndim:]
    if all(is_numeric(p) for p in parts):
        return NUMPY_OPS.add(parts, shape, base_ndim)
    return Sum(tuple(parts), shape, base_ndim)


def _known(shape: tuple, parts: list) -> tuple:
    """``shape`` with a time length unknown before evaluation (None) taken from the parts."""
    if shape and shape[0] is None:
        return (next(p.shape[0] for p in parts if p.ndim == len(shape)),) + tuple(shape[1:])
    return shape


class _NumpyOps:
    """NumPy evaluation of the expression nodes (used for eager composition and the NumPy engine)."""

    def leaf(self, x: Any, name: str) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        if is_symbolic_leaf(x):
            raise TypeError(
                f"entry {name} is a {type(x).__name__} (symbolic); the NumPy engine needs numbers. "
                "Evaluate the model's parameters first or use the PyTensor engine."
            )
        return np.asarray(x, dtype=np.float64)

    def entries(self, node: Entries, name: str) -> np.ndarray:
        def conv(e):
            if isinstance(e, tuple):
                return [conv(v) for v in e]
            return float(self.leaf(e, name))

        return np.array(conv(node.rows), dtype=np.float64)

    def block_diag(self, parts: list, shape: tuple) -> np.ndarray:
        out = np.zeros(shape)
        i = j = 0
        for p in parts:
            r, c = p.shape[-2:]
            out[..., i : i + r, j : j + c] = p
            i, j = i + r, j + c
        return out

    def concat(self, parts: list, shape: tuple, base_ndim: int) -> np.ndarray:
        lead = _known(shape, parts)[:-1]
        return np.concatenate([np.broadcast_to(p, lead + (p.shape[-1],)) for p in parts], axis=-1)

    def add(self, parts: list, shape: tuple, base_ndim: int) -> np.ndarray:
        out = np.zeros(_known(shape, parts))
        for p in parts:
            out = out + p
        return out


NUMPY_OPS = _NumpyOps()


class SubstitutingOps(_NumpyOps):
    """NumPy evaluation with numbers in place of symbolic leaves: ``{id(leaf): value}``."""

    def __init__(self, values: dict[int, Any]):
        self.values = values

    def leaf(self, x: Any, name: str) -> np.ndarray:
        if is_symbolic_leaf(x):
            if id(x) not in self.values:
                raise KeyError(f"no value given for a symbolic entry of {name}")
            return np.asarray(self.values[id(x)], dtype=np.float64)
        return super().leaf(x, name)


def evaluate(x: Any, ops: Any, name: str) -> Any:
    """Evaluate a stored entry with an engine's primitives (``ops``)."""
    if isinstance(x, Entries):
        return ops.entries(x, name)
    if isinstance(x, BlockDiag):
        return ops.block_diag([evaluate(p, ops, name) for p in x.parts], x.shape)
    if isinstance(x, Concat):
        return ops.concat([evaluate(p, ops, name) for p in x.parts], x.shape, x.base_ndim)
    if isinstance(x, Sum):
        return ops.add([evaluate(p, ops, name) for p in x.parts], x.shape, x.base_ndim)
    return ops.leaf(x, name)
