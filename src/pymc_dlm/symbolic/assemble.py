"""Turn a :class:`~pymc_dlm.spec.StateSpaceModel` into PyTensor tensors (the symbolic twin of
:mod:`pymc_dlm.numeric.assemble`).

Entries may be numbers or PyTensor expressions (PyMC random variables among them).  The
distinct symbolic entries are the model's *leaves*; :func:`system_tensors` can substitute
other tensors for them, which is how a PyMC distribution passes its parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytensor.tensor as pt

from ..spec import matrix as mx
from ..spec.model import StateSpaceModel

__all__ = ["SystemTensors", "leaves", "system_tensors"]


def _float(x: Any) -> pt.TensorVariable:
    if isinstance(x, np.ndarray):
        return pt.constant(np.asarray(x, dtype=np.float64))
    x = pt.as_tensor_variable(x)
    return x if x.dtype == "float64" else pt.cast(x, "float64")


class _PyTensorOps:
    """PyTensor evaluation of the specification's expression nodes."""

    def __init__(self, subs: dict[int, Any]):
        self.subs = subs

    def leaf(self, x: Any, name: str) -> pt.TensorVariable:
        return _float(self.subs.get(id(x), x))

    def entries(self, node: mx.Entries, name: str) -> pt.TensorVariable:
        """A constant array with the symbolic entries scattered in by one ``set_subtensor``
        (a graph of a few nodes, whatever the size: compiling it and its gradient stays cheap;
        an entry-by-entry ``stack`` made graphs of hundreds of nodes for a 13-state model).
        When every entry is symbolic (the 1 x 1 variances of a local level, e.g.) their
        ``stack``, reshaped, is the array: no scatter, and a cheaper gradient."""
        rows = node.rows
        two_d = bool(rows) and isinstance(rows[0], tuple)
        grid = rows if two_d else (rows,)
        base = np.zeros((len(grid), len(grid[0]) if grid else 0))
        where, values = [], []
        for i, row in enumerate(grid):
            for j, e in enumerate(row):
                if mx.is_symbolic_leaf(e) or id(e) in self.subs:
                    where.append((i, j))
                    values.append(self.leaf(e, name).reshape(()))
                else:
                    base[i, j] = float(e)
        if values and len(values) == base.size:  # every entry symbolic: no scatter needed
            return pt.stack(values).reshape(base.shape if two_d else base.shape[1:])
        out = pt.constant(base if two_d else base[0])
        if values:
            ii, jj = (np.array(ix, dtype=np.int64) for ix in zip(*where, strict=True))
            idx = (ii, jj) if two_d else (jj,)
            out = pt.set_subtensor(out[idx], pt.stack(values))
        return out

    def block_diag(self, parts: list, shape: tuple) -> pt.TensorVariable:
        out = pt.zeros(shape, dtype="float64")
        i = j = 0
        for p in parts:
            r, c = (int(s) for s in p.type.shape[-2:])
            out = pt.set_subtensor(out[..., i : i + r, j : j + c], p)
            i, j = i + r, j + c
        return out

    def concat(self, parts: list, shape: tuple, base_ndim: int) -> pt.TensorVariable:
        lead = tuple(shape[:-1])
        if any(s is None for s in lead):  # a time length known only at run time (pm.Data)
            ref = next(p for p in parts if p.ndim == len(shape))
            lead = tuple(ref.shape[i] if s is None else s for i, s in enumerate(lead))
        return pt.concatenate(
            [pt.broadcast_to(p, lead + (int(p.type.shape[-1]),)) for p in parts], axis=-1
        )

    def add(self, parts: list, shape: tuple, base_ndim: int) -> pt.TensorVariable:
        out = pt.zeros(shape, dtype="float64")
        for p in parts:
            out = out + p
        return out


def leaves(model: StateSpaceModel) -> list[Any]:
    """The distinct symbolic entries of the model, in a fixed order (matrix by matrix)."""
    found: dict[int, Any] = {}

    def walk(x: Any) -> None:
        if isinstance(x, mx.Entries):
            for row in x.rows:
                for e in row if isinstance(row, tuple) else (row,):
                    walk(e)
        elif isinstance(x, (mx.BlockDiag, mx.Concat, mx.Sum)):
            for p in x.parts:
                walk(p)
        elif mx.is_symbolic_leaf(x):
            found.setdefault(id(x), x)

    for name in StateSpaceModel.matrix_names:
        walk(getattr(model, name))
    return list(found.values())


class SystemTensors(NamedTuple):
    """System matrices as float64 tensors, constant (``Z`` is (p, m)) or time-varying ((n, p, m)).

    ``P1`` is :math:`P_*` with stationary blocks filled in (Lyapunov solve), ``P1inf`` the
    diffuse part diag(diffuse) as a NumPy array (it is never symbolic).
    """

    Z: Any
    d: Any
    H: Any
    T: Any
    c: Any
    R: Any
    Q: Any
    a1: Any
    P1: Any
    P1inf: np.ndarray


def system_tensors(model: StateSpaceModel, subs: dict[int, Any] | None = None) -> SystemTensors:
    """Evaluate the model's entries as PyTensor tensors.

    Parameters
    ----------
    model : StateSpaceModel
        Entries may be numbers or PyTensor expressions.
    subs : dict, optional
        ``{id(leaf): tensor}``: tensors to use instead of the model's symbolic leaves
        (see :func:`leaves`).

    Returns
    -------
    SystemTensors

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from pymc_dlm import LocalLevel
    >>> s = pt.dscalar("s")
    >>> sys = system_tensors(LocalLevel(s, 2.0))
    >>> float(sys.Q.eval({s: 3.0})[0, 0]), sys.H.eval().tolist()
    (9.0, [[4.0]])
    """
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    ops = _PyTensorOps(subs or {})
    vals = {name: mx.evaluate(getattr(model, name), ops, name) for name in StateSpaceModel.matrix_names}
    P1 = vals["P1"]
    st = np.flatnonzero(model.stationary)
    if st.size:
        T0 = vals["T"] if vals["T"].ndim == 2 else vals["T"][0]
        R0 = vals["R"] if vals["R"].ndim == 2 else vals["R"][0]
        Q0 = vals["Q"] if vals["Q"].ndim == 2 else vals["Q"][0]
        RQR = R0 @ Q0 @ R0.T
        Ts = T0[st][:, st]
        Pst = pt.linalg.solve_discrete_lyapunov(Ts, RQR[st][:, st])
        P1 = pt.set_subtensor(P1[np.ix_(st, st)], (Pst + Pst.T) / 2)
    return SystemTensors(
        Z=vals["Z"], d=vals["d"], H=vals["H"], T=vals["T"], c=vals["c"], R=vals["R"],
        Q=vals["Q"], a1=vals["a1"], P1=P1,
        P1inf=np.diag(np.asarray(model.diffuse, dtype=np.float64)),
    )
