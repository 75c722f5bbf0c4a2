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
singular :math:`\Sigma_j` of rank :math:`r < k` gives common components (Harvey and
Koopman 1997): e.g. a rank-one level covariance is one common stochastic level.

The same model in its loadings form (``loadings=``; Harvey 1989, section 8.5; Harvey and
Koopman 1997) has r common components and k - r noise-free ones,

.. math::

    y_t = \Theta\,\mu_t + \bar\mu_t + \varepsilon_t,\qquad
    \bar\mu_t = (0_r', \bar\mu_t^{*\prime})',

:math:`\mu_t` the component over r series with (r, r) disturbance covariances
:math:`D_j`, :math:`\bar\mu^*_t` k - r copies of the component without disturbances (for a
level, constants) and :math:`\Theta` (k, r) with its top (r, r) block unit lower
triangular.  With :math:`\Sigma_j = \Theta D_j \Theta'` the two forms are one model: the
states differ by the invertible map :math:`[\Theta\ \ (0, I_{k-r})']`, whose determinant
is 1, so even the exact diffuse likelihoods agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import _matrix
from .factor import _rows
from .matrix import block_diag, is_numeric, is_symbolic_leaf, static_shape
from .model import Component, StateSpaceModel

__all__ = ["SUTSE"]


def SUTSE(
    component: StateSpaceModel,
    covs: list,
    cov_obs: Any = None,
    *,
    series: list[str],
    loadings: Any = None,
    name: str | None = None,
) -> StateSpaceModel:
    r"""The k-series version of a univariate component with full disturbance covariances.

    Parameters
    ----------
    component : StateSpaceModel
        A univariate (``p = 1``), time-invariant component with numeric ``Z``, ``T``, ``R``,
        e.g. ``LocalLinearTrend(1.0, 1.0)``; only its structure is used (its variances and
        observation noise are ignored), and its initialisation flags are repeated per series.
    covs : list of r_0 (k, k) array_like or PyTensor matrices
        :math:`\Sigma_1..\Sigma_{r_0}`, one per disturbance of the component (e.g. level and
        slope), each symmetric positive semi-definite (an LKJ prior in PyMC:
        ``chol @ chol.T``).  With ``loadings`` of r columns they are the (r, r) covariances
        :math:`D_j` of the common components.
    cov_obs : (k, k) array_like or PyTensor matrix, optional
        :math:`\Sigma_\varepsilon` (zeros by default).
    series : list of str
        The k series' names; states are ``f"{state}.{series}"``.
    loadings : (k, r) array_like, nested lists with PyTensor scalars, optional
        :math:`\Theta` of the loadings form of r common components, ``1 <= r <= k``
        (Harvey and Koopman 1997): the model
        :math:`y_t = \Theta\mu_t + \bar\mu_t + \varepsilon_t` with :math:`\mu_t` the
        component over r series, states ``f"{state}.common{j}"`` (j = 0..r-1), and
        :math:`\bar\mu_t` the component without disturbances for the last k - r series,
        states ``f"{state}.offset.{series}"`` (for a level, constants), initialised as the
        component.  The top (r, r) block must be the numbers of a unit lower triangular
        matrix (Harvey's identification; its entries below the diagonal are free); with
        diagonal :math:`D_j` the model is then identified.  It is the model with
        :math:`\Sigma_j = \Theta D_j\Theta'`, the same likelihood (see the module's notes).
    name : str, optional
        Component name (the component's by default).

    Returns
    -------
    StateSpaceModel
        ``p = k``, ``m = k m_0``, ``r = k r_0`` (with ``loadings``: ``m = k m_0``,
        ``r = r r_0``).

    Raises
    ------
    ValueError
        A multivariate or time-varying component, a number of covariances other than the
        component's r, covariances that are not (k, k) (with loadings (r, r)), loadings that
        are not (k, r) or whose top (r, r) block is not unit lower triangular.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> mod = dlm.SUTSE(dlm.LocalLevel(1.0), [[[1.0, 0.5], [0.5, 2.0]]], np.eye(2),
    ...                 series=["a", "b"])
    >>> mod.state_names, mod.Q.tolist()
    (('level.a', 'level.b'), [[1.0, 0.5], [0.5, 2.0]])

    One common level of three series, the same model as a rank-one level covariance:

    >>> common = dlm.SUTSE(dlm.LocalLevel(1.0), [[[0.5]]], np.eye(3), series=["a", "b", "c"],
    ...                    loadings=[[1.0], [0.8], [-2.0]])
    >>> common.state_names
    ('level.common0', 'level.offset.b', 'level.offset.c')
    >>> common.Z.tolist()
    [[1.0, 0.0, 0.0], [0.8, 1.0, 0.0], [-2.0, 0.0, 1.0]]
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
    theta = None if loadings is None else _loadings(loadings, k)
    kc = k if theta is None else len(theta[0])  # the dimension of the disturbed component
    r0 = component.r
    if len(covs) != r0:
        raise ValueError(f"covs must hold r = {r0} covariances (one per disturbance of the "
                         f"component); got {len(covs)}")
    blocks = []
    for j, cov in enumerate(covs):
        c = cov if is_symbolic_leaf(cov) else _matrix(cov)
        shape = static_shape(c)
        if tuple(shape) != (kc, kc):
            what = "(r, r)" if theta is not None else "(k, k)"
            raise ValueError(f"covs[{j}] must be {what} = ({kc}, {kc}); got shape {tuple(shape)}")
        blocks.append(c)
    if r0 == 1:
        Q = blocks[0]
    elif all(isinstance(b, np.ndarray) for b in blocks):
        Q = np.zeros((kc * r0, kc * r0))
        for j, b in enumerate(blocks):
            Q[j * kc:(j + 1) * kc, j * kc:(j + 1) * kc] = b
    else:
        Q = block_diag(blocks)
    H = np.zeros((k, k)) if cov_obs is None else cov_obs
    m0 = component.m
    nm = component.components[0].name if name is None and len(component.components) == 1 \
        else (name or "sutse")
    if theta is None:
        eye = np.eye(k)
        return StateSpaceModel(
            Z=np.kron(component.Z, eye), T=np.kron(component.T, eye),
            R=np.kron(component.R, eye), Q=Q, H=H, diffuse=np.repeat(component.diffuse, k),
            stationary=np.repeat(component.stationary, k),
            state_names=[f"{s}.{ser}" for s in component.state_names for ser in series],
            components=[Component(nm, f"SUTSE over {', '.join(series)}: "
                                  f"{component.components[0].description}",
                                  tuple(range(m0 * k)))],
        )
    r, ko = kc, k - kc
    Z0 = component.Z[0]
    # Z = [Z_0 (x) Theta, Z_0 (x) (0, I_{k-r})'], entry by entry (Theta may be symbolic)
    Z = [[_times(Z0[j], theta[i][c]) for j in range(m0) for c in range(r)]
         + [float(Z0[j]) if i - r == c else 0.0 for j in range(m0) for c in range(ko)]
         for i in range(k)]
    T = np.zeros((m0 * k, m0 * k))
    T[:m0 * r, :m0 * r] = np.kron(component.T, np.eye(r))
    T[m0 * r:, m0 * r:] = np.kron(component.T, np.eye(ko))
    R = np.zeros((m0 * k, r0 * r))
    R[:m0 * r] = np.kron(component.R, np.eye(r))
    flags = {f: np.concatenate([np.repeat(getattr(component, f), r),
                                np.repeat(getattr(component, f), ko)])
             for f in ("diffuse", "stationary")}
    states = ([f"{s}.common{j}" for s in component.state_names for j in range(r)]
              + [f"{s}.offset.{ser}" for s in component.state_names for ser in series[r:]])
    return StateSpaceModel(
        Z=_matrix(Z), T=T, R=R, Q=Q, H=H, **flags, state_names=states,
        components=[Component(nm, f"{r} common components over {', '.join(series)}: "
                              f"{component.components[0].description}",
                              tuple(range(m0 * k)))],
    )


def _times(z: float, x: Any) -> Any:
    """``z * x`` for a number z and an entry x (number or symbolic), exact for z in {0, 1}."""
    if z == 0.0:
        return 0.0
    if z == 1.0:
        return x
    return float(z) * x


def _loadings(loadings: Any, k: int) -> list:
    """Theta (k, r) as nested lists, its top (r, r) block checked to be unit lower triangular."""
    shape = tuple(loadings.type.shape) if is_symbolic_leaf(loadings) else np.shape(loadings)
    if len(shape) != 2 or shape[0] != k or shape[1] is None or not 1 <= shape[1] <= k:
        raise ValueError(f"loadings must be (k, r) with k = {k} series and 1 <= r <= k; got "
                         f"shape {shape}")
    r = shape[1]
    theta = _rows(loadings, (k, r), "loadings")
    for i in range(r):
        for j in range(i, r):
            want = 1.0 if i == j else 0.0
            x = theta[i][j]
            if is_symbolic_leaf(x) or float(x) != want:
                got = "a symbolic entry" if is_symbolic_leaf(x) else repr(float(x))
                raise ValueError(
                    f"loadings' top (r, r) block must be unit lower triangular (Harvey's "
                    f"identification): loadings[{i}, {j}] must be the number {want}; got {got}")
    return theta
