r"""Seemingly unrelated time series equations (SUTSE): one structural model for k series.

:func:`SUTSE` takes the structure of a univariate component (its ``Z``, ``T``, ``R`` and
initialisation) and builds its k-series version with a full (k, k) covariance for each kind
of disturbance (Harvey 1989, chapter 8; Durbin and Koopman 2012, section 3.3):

.. math::

    y_t = (Z \otimes I_k)\,\alpha_t + \varepsilon_t,\quad
    \alpha_{t+1} = (T \otimes I_k)\,\alpha_t + (R \otimes I_k)\,\eta_t,\quad
    \eta_t \sim N(0, \mathrm{diag}(\Sigma_1, \dots, \Sigma_r)),\
    \varepsilon_t \sim N(0, \Sigma_\varepsilon),

states ordered component-major (every series' level, then every series' slope...).  A
singular :math:`\Sigma_j` of rank :math:`k_0 < k` gives common components (Harvey and
Koopman 1997): e.g. a rank-one level covariance is one common stochastic level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import _matrix
from .matrix import block_diag, is_numeric, is_symbolic_leaf, static_shape
from .model import Component, StateSpaceModel

__all__ = ["SUTSE"]


def SUTSE(
    component: StateSpaceModel,
    covs: list,
    cov_obs: Any = None,
    *,
    series: list[str],
    name: str | None = None,
) -> StateSpaceModel:
    r"""The k-series version of a univariate component with full disturbance covariances.

    Parameters
    ----------
    component : StateSpaceModel
        A univariate (``p = 1``), time-invariant component with numeric ``Z``, ``T``, ``R``,
        e.g. ``LocalLinearTrend(1.0, 1.0)``; only its structure is used (its variances and
        observation noise are ignored), and its initialisation flags are repeated per series.
    covs : list of r (k, k) array_like or PyTensor matrices
        :math:`\Sigma_1..\Sigma_r`, one per disturbance of the component (e.g. level and
        slope), each symmetric positive semi-definite (an LKJ prior in PyMC:
        ``chol @ chol.T``).
    cov_obs : (k, k) array_like or PyTensor matrix, optional
        :math:`\Sigma_\varepsilon` (zeros by default).
    series : list of str
        The k series' names; states are ``f"{state}.{series}"``.
    name : str, optional
        Component name (the component's by default).

    Returns
    -------
    StateSpaceModel
        ``p = k``, ``m = k m_0``, ``r = k r_0``.

    Raises
    ------
    ValueError
        A multivariate or time-varying component, a number of covariances other than the
        component's r, or covariances that are not (k, k).

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> mod = dlm.SUTSE(dlm.LocalLevel(1.0), [[[1.0, 0.5], [0.5, 2.0]]], np.eye(2),
    ...                 series=["a", "b"])
    >>> mod.state_names, mod.Q.tolist()
    (('level.a', 'level.b'), [[1.0, 0.5], [0.5, 2.0]])
    """
    if not isinstance(component, StateSpaceModel):
        raise TypeError(f"component must be a StateSpaceModel; got {type(component).__name__}")
    if component.p != 1:
        raise ValueError(f"component must be univariate (p = 1); got p = {component.p}")
    if any(component.time_varying(x) for x in ("Z", "T", "R")) or not all(
        is_numeric(getattr(component, x)) for x in ("Z", "T", "R")
    ):
        raise ValueError("component must have constant, numeric Z, T and R (its structure)")
    k = len(series)
    if k < 1:
        raise ValueError("series must name at least one series")
    r0 = component.r
    if len(covs) != r0:
        raise ValueError(f"covs must hold r = {r0} covariances (one per disturbance of the "
                         f"component); got {len(covs)}")
    eye = np.eye(k)
    blocks = []
    for j, cov in enumerate(covs):
        c = cov if is_symbolic_leaf(cov) else _matrix(cov)
        shape = static_shape(c)
        if tuple(shape) != (k, k):
            raise ValueError(f"covs[{j}] must be (k, k) = ({k}, {k}); got shape {tuple(shape)}")
        blocks.append(c)
    if r0 == 1:
        Q = blocks[0]
    elif all(isinstance(b, np.ndarray) for b in blocks):
        Q = np.zeros((k * r0, k * r0))
        for j, b in enumerate(blocks):
            Q[j * k:(j + 1) * k, j * k:(j + 1) * k] = b
    else:
        Q = block_diag(blocks)
    H = np.zeros((k, k)) if cov_obs is None else cov_obs
    m0 = component.m
    states = [f"{s}.{nm}" for s in component.state_names for nm in series]
    nm = component.components[0].name if name is None and len(component.components) == 1 \
        else (name or "sutse")
    return StateSpaceModel(
        Z=np.kron(component.Z, eye), T=np.kron(component.T, eye), R=np.kron(component.R, eye),
        Q=Q, H=H, diffuse=np.repeat(component.diffuse, k), stationary=np.repeat(
            component.stationary, k), state_names=states,
        components=[Component(nm, f"SUTSE over {', '.join(series)}: "
                              f"{component.components[0].description}", tuple(range(m0 * k)))],
    )
