r"""The free variance parameters of a numeric model, read from its structure, and the
log-variance parameterisation built on them (used by ``fit_em`` and by ``fit_mle`` when it is
given a model instead of a function).

Zero variances are structural and stay zero; entries linked by non-zero covariances form one
full block; diagonal entries that a component ties (``Component.tied``) share one value; every
other non-zero diagonal entry is its own parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..spec.model import StateSpaceModel

__all__ = ["variance_groups", "variance_parameterization"]


@dataclass(frozen=True)
class _Group:
    """One variance parameter: a set of diagonal entries sharing a value, or a full block."""

    matrix: str  # "H" or "Q"
    index: tuple[int, ...]
    full: bool  # a full covariance block (off-diagonal entries estimated too)
    name: str

    @property
    def n_free(self) -> int:
        k = len(self.index)
        return k * (k + 1) // 2 if self.full else 1


def _blocks(A: np.ndarray) -> list[tuple[int, ...]]:
    """Connected blocks of the non-zero pattern of a symmetric matrix."""
    k = A.shape[0]
    seen = np.zeros(k, bool)
    out = []
    for i in range(k):
        if seen[i]:
            continue
        stack, block = [i], []
        seen[i] = True
        while stack:
            j = stack.pop()
            block.append(j)
            for q in np.flatnonzero(A[j] != 0.0):
                if not seen[q]:
                    seen[q] = True
                    stack.append(int(q))
        out.append(tuple(sorted(block)))
    return out


def _disturbance_names(model: StateSpaceModel) -> list[str]:
    """A name per state disturbance: the component it belongs to when that component has one
    disturbance (``seasonal``, not ``seasonal_0``; ``arima``, whose one disturbance drives
    several states), else the state it drives (``level``, ``slope`` of a trend), else
    ``<component>[j]`` for the j-th of a component's disturbances that drive several of its
    states, else ``eta[i]``."""
    R = np.asarray(model.R if not model.time_varying("R") else model.R[0])
    rows = [frozenset(int(j) for j in np.flatnonzero(R[:, i] != 0.0)) for i in range(model.r)]
    names = [model.state_names[min(s)] if len(s) == 1 else f"eta[{i}]"
             for i, s in enumerate(rows)]
    for comp in model.components:
        own = [i for i, s in enumerate(rows) if s and s <= set(comp.states)]
        if len(own) == 1:
            names[own[0]] = comp.name
            continue
        for j, i in enumerate(own):
            if len(rows[i]) > 1:
                names[i] = f"{comp.name}[{j}]"
    return names


def variance_groups(model: StateSpaceModel, estimate: tuple[str, ...],
                    covariance: str = "structure") -> list[_Group]:
    """The free variance parameters of H and Q, read from the initial model's structure.

    ``covariance="structure"``: zero variances are structural and stay zero; entries linked
    by non-zero covariances form one full block; diagonal entries that a component ties
    (``Component.tied``) share one value; every other non-zero diagonal entry is its own
    parameter.  ``covariance="full"``: one full block per matrix over its non-zero diagonal
    entries (their start must be positive definite).  Either way a block is named
    ``cov(<label>, <label>, ...)`` and a scalar ``sigma2.<label>``, with the labels of
    :func:`_disturbance_names` (``obs``/``obs[i]`` for H).
    """
    out: list[_Group] = []
    for name in ("H", "Q"):
        if name not in estimate:
            continue
        if model.time_varying(name):
            raise ValueError(f"fit_em estimates constant {name} only; got a time-varying {name}")
        A = np.asarray(getattr(model, name), dtype=np.float64)
        labels = (
            [f"obs[{i}]" if model.p > 1 else "obs" for i in range(model.p)]
            if name == "H" else _disturbance_names(model)
        )
        if covariance == "full":
            out += _full_block(A, name, labels)
            continue
        blocks = _blocks(A)
        single = {b[0] for b in blocks if len(b) == 1 and A[b[0], b[0]] != 0.0}
        for block in blocks:
            if len(block) > 1:
                out.append(_Group(name, block, True, _block_name(labels, block)))
        if name == "Q":
            for comp in model.components:
                for tie in comp.tied:
                    g = tuple(i for i in tie if i in single)
                    if g:
                        single -= set(g)
                        label = comp.name if len(g) > 1 else labels[g[0]]
                        out.append(_Group(name, g, False, f"sigma2.{label}"))
        for i in sorted(single):
            out.append(_Group(name, (i,), False, f"sigma2.{labels[i]}"))
    return out


def _block_name(labels: list[str], block: tuple[int, ...]) -> str:
    return "cov(" + ", ".join(labels[i] for i in block) + ")"


def _full_block(A: np.ndarray, name: str, labels: list[str]) -> list[_Group]:
    """One full covariance block over the non-zero diagonal entries of A (a scalar variance
    when there is one)."""
    idx = tuple(int(i) for i in np.flatnonzero(np.diag(A) != 0.0))
    if not idx:
        return []
    try:
        np.linalg.cholesky(A[np.ix_(idx, idx)])
    except np.linalg.LinAlgError:
        raise ValueError(f"covariance='full' needs a positive-definite start for the free "
                         f"block of {name} (entries {list(idx)})") from None
    if len(idx) == 1:
        return [_Group(name, idx, False, f"sigma2.{labels[idx[0]]}")]
    return [_Group(name, idx, True, _block_name(labels, idx))]


def variance_parameterization(
    model: StateSpaceModel,
) -> tuple[Callable[[Any], StateSpaceModel], np.ndarray, tuple[str, ...]]:
    r"""Unconstrained parameters for the free variances of a numeric model.

    A group of tied diagonal entries gets :math:`\sigma^2 = \exp(\psi)`; a full covariance
    block :math:`\Sigma = LL'` gets the log-Cholesky parameters (log of the diagonal of L,
    then the entries below it, row by row).  Everything else stays as in ``model``.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric model with constant H and Q; its values are the starting point.

    Returns
    -------
    model_fn : callable
        ``model_fn(psi) -> StateSpaceModel`` for :func:`fit_mle`.
    init : (k,) ndarray
        ``psi`` at ``model``.
    names : tuple of str
        e.g. ``("log sigma2.obs", "log sigma2.level")``.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> fn, init, names = variance_parameterization(dlm.LocalLevel(2.0, 3.0))
    >>> names, np.exp(init)
    (('log sigma2.obs', 'log sigma2.level'), array([9., 4.]))
    """
    import pytensor.tensor as pt

    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"expected a StateSpaceModel; got {type(model).__name__}")
    if not model.is_numeric:
        raise TypeError("an automatic parameterisation needs a numeric model; pass a function "
                        "psi -> StateSpaceModel instead")
    groups = variance_groups(model, ("H", "Q"))
    if not groups:
        raise ValueError("the model has no free variance: every variance is zero, and zeros "
                         "are kept as structural")
    base = {k: np.asarray(getattr(model, k), dtype=np.float64) for k in ("H", "Q")}
    init: list[float] = []
    names: list[str] = []
    for g in groups:
        idx = np.asarray(g.index)
        if g.full:
            L = np.linalg.cholesky(base[g.matrix][np.ix_(idx, idx)])
            rows, cols = np.tril_indices(len(idx), -1)
            init += list(np.log(np.diag(L))) + list(L[rows, cols])
            names += [f"log chol[{i}{i}] {g.name}" for i in range(len(idx))]
            names += [f"chol[{i}{j}] {g.name}" for i, j in zip(rows, cols, strict=True)]
        else:
            init.append(float(np.log(base[g.matrix][idx[0], idx[0]])))
            names.append(f"log {g.name}")

    # the free entries are overwritten below: zero them in the constants, so that fits from
    # different starts build the same graph (and share its compiled function)
    fixed_part = {k: v.copy() for k, v in base.items()}
    for g in groups:
        idx = np.asarray(g.index)
        if g.full:
            fixed_part[g.matrix][np.ix_(idx, idx)] = 0.0
        else:
            fixed_part[g.matrix][idx, idx] = 0.0

    def model_fn(psi: Any) -> StateSpaceModel:
        mats = {k: pt.as_tensor_variable(v) for k, v in fixed_part.items()}
        j = 0
        for g in groups:
            idx = np.asarray(g.index)
            if g.full:
                k = len(idx)
                rows, cols = np.tril_indices(k, -1)
                L = pt.diag(pt.exp(psi[j : j + k]))
                L = pt.set_subtensor(L[rows, cols], psi[j + k : j + g.n_free])
                mats[g.matrix] = pt.set_subtensor(mats[g.matrix][np.ix_(idx, idx)], L @ L.T)
            else:
                mats[g.matrix] = pt.set_subtensor(mats[g.matrix][idx, idx], pt.exp(psi[j]))
            j += g.n_free
        return model.replace(**mats)

    return model_fn, np.asarray(init), tuple(names)
