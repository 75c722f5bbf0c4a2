r"""Vector autoregressions in state-space form.

:func:`VAR` builds the VAR(p) of k series

.. math::

    y_{t+1} = A_1 y_t + A_2 y_{t-1} + \dots + A_p y_{t-p+1} + \eta_t,\qquad
    \eta_t \sim N(0, \Sigma),

in companion form (Durbin and Koopman 2012, section 3.4; Lütkepohl 2005, section 2.1.1):
the state :math:`\alpha_t = (y_t', y_{t-1}', \dots, y_{t-p+1}')'` with

.. math::

    Z = (I_k\ 0 \cdots 0),\quad
    T = \begin{pmatrix} A_1 & A_2 & \cdots & A_p \\ I_k & 0 & \cdots & 0 \\
    & \ddots & & \vdots \\ 0 & \cdots & I_k & 0 \end{pmatrix},\quad
    R = \begin{pmatrix} I_k \\ 0 \end{pmatrix},\quad Q = \Sigma,\quad H = 0,

started from its stationary distribution (section 5.6.2), as statsmodels' ``VARMAX`` does.

With ``ma=`` it is the VARMA(p, q) :math:`y_{t+1} = \sum_i A_i y_{t+1-i} + \eta_{t+1} +
\sum_j M_j \eta_{t+1-j}` (Lütkepohl 2005, section 18.2): the state appends the current and
q - 1 lagged innovations, :math:`\alpha_t = (y_t', \dots, y_{t-p+1}', \eta_t', \dots,
\eta_{t-q+1}')'`, the first block row of T gains :math:`(M_1 \cdots M_q)`, the innovation
block shifts, and :math:`R = (I_k\ 0 \cdots 0\ I_k\ 0 \cdots 0)'` puts
:math:`\eta_{t+1}` into both :math:`y_{t+1}` and the innovation block.
Impulse responses and variance decompositions of any time-invariant model, this one
included, are in :mod:`pymc_dlm.numeric.irf`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import _matrix
from .matrix import is_symbolic_leaf
from .model import Component, StateSpaceModel

__all__ = ["VAR"]


def _coef_array(coefs: Any) -> tuple[list, int, int]:
    """coefs as nested lists [lag][row][col] of entries, with (p, k)."""
    if is_symbolic_leaf(coefs):
        shape = coefs.type.shape
        if coefs.ndim != 3 or any(s is None for s in shape) or shape[1] != shape[2]:
            raise ValueError(f"a symbolic coefs must be (p, k, k) with a static shape; got type "
                             f"{coefs.type}")
        p, k = shape[0], shape[1]
        return [[[coefs[i, r, c] for c in range(k)] for r in range(k)] for i in range(p)], p, k
    if isinstance(coefs, (list, tuple)) and any(
        is_symbolic_leaf(e) for e in np.asarray(coefs, dtype=object).ravel()
    ):
        arr = np.asarray(coefs, dtype=object)
    else:
        arr = np.asarray(coefs, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("coefs must be finite")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[0] < 1:
        raise ValueError(f"coefs must be (p, k, k) (coefs[i] multiplies y_(t-i-1)); got shape "
                         f"{arr.shape}")
    return arr.tolist(), arr.shape[0], arr.shape[1]


def VAR(
    coefs: Any,
    cov: Any,
    *,
    ma: Any = None,
    names: list[str] | None = None,
    name: str = "var",
) -> StateSpaceModel:
    r"""Vector autoregression VAR(p), or VARMA(p, q), of k series, started stationary.

    Parameters
    ----------
    coefs : (p, k, k) array_like, nested lists with PyTensor scalars, or a PyTensor tensor
        :math:`A_1..A_p`; ``coefs[i]`` multiplies :math:`y_{t-i}` (lag ``i + 1``), row ``r``
        is the equation of series ``r``.  A (k, k) array is a VAR(1).  Numeric coefficients
        must describe a stationary process (companion spectral radius < 1).
    cov : (k, k) array_like or PyTensor matrix
        Innovation covariance :math:`\Sigma` (full; e.g. ``chol @ chol.T`` from PyMC's
        ``LKJCholeskyCov``).
    ma : (q, k, k) array_like, nested lists with PyTensor scalars, or a PyTensor tensor, optional
        Moving-average coefficients :math:`M_1..M_q` of a VARMA(p, q); ``ma[j]`` multiplies
        :math:`\eta_{t-j}` (lag ``j + 1``).  A (k, k) array is an MA(1) part.
    names : list of str, optional
        Series names (``y0, y1, ...``); states are ``f"{series}"`` for the current values,
        ``f"{series}.L{j}"`` for lag ``j``, and with ``ma`` ``f"e.{series}"`` for the current
        innovation and ``f"e.{series}.L{j}"`` for its lag ``j``.
    name : str
        Component name.

    Returns
    -------
    StateSpaceModel
        ``p_obs = k``, ``m = k(p + q)``, ``r = k``; every state stationary.

    Raises
    ------
    ValueError
        Bad shapes, non-finite or non-stationary numeric coefficients, a covariance that is
        not (k, k) symmetric positive semi-definite.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_dlm import VAR
    >>> mod = VAR([[[0.5, 0.1], [0.0, 0.4]]], np.eye(2), names=["gdp", "inv"])
    >>> mod.state_names, mod.m, mod.r
    (('gdp', 'inv'), 2, 2)
    >>> VAR(np.zeros((2, 2, 2)) + 0.2, np.eye(2)).T.shape
    (4, 4)
    >>> VAR([[[0.5]]], [[1.0]], ma=[[[0.3]]], names=["gdp"]).state_names
    ('gdp', 'e.gdp')
    """
    A, p, k = _coef_array(coefs)
    M, q = [], 0
    if ma is not None:
        M, q, kq = _coef_array(ma)
        if kq != k:
            raise ValueError(f"ma must be (q, k, k) with k = {k} (from coefs); got k = {kq}")
    names = [f"y{i}" for i in range(k)] if names is None else [str(s) for s in names]
    if len(names) != k:
        raise ValueError(f"names must have k = {k} entries; got {len(names)}")
    m = k * (p + q)
    T: list = [[0.0] * m for _ in range(m)]
    for lag in range(p):
        for r in range(k):
            for c in range(k):
                T[r][lag * k + c] = A[lag][r][c]
    for lag in range(q):
        for r in range(k):
            for c in range(k):
                T[r][k * p + lag * k + c] = M[lag][r][c]
    for i in [*range(k, k * p), *range(k * (p + 1), m)]:  # shift the lags of y and of eta
        T[i][i - k] = 1.0
    if not any(is_symbolic_leaf(e) for row in T for e in row):
        rad = float(np.max(np.abs(np.linalg.eigvals(np.array(T, dtype=np.float64)))))
        if rad >= 1.0:
            raise ValueError(f"coefs do not describe a stationary VAR (companion spectral "
                             f"radius {rad:.6g} >= 1)")
    Z = np.zeros((k, m))
    Z[:, :k] = np.eye(k)
    R = np.zeros((m, k))
    R[:k, :] = np.eye(k)
    if q:
        R[k * p:k * (p + 1), :] = np.eye(k)
    Q = cov if is_symbolic_leaf(cov) else _matrix(cov)
    states = (names + [f"{s}.L{j}" for j in range(1, p) for s in names]
              + [f"e.{s}" for s in names][:k * q]
              + [f"e.{s}.L{j}" for j in range(1, q) for s in names])
    return StateSpaceModel(
        Z=Z, T=_matrix(T), R=R, Q=Q, diffuse=[False] * m, stationary=[True] * m,
        state_names=states,
        components=[Component(name, (f"VARMA({p}, {q})" if q else f"VAR({p})")
                              + f" of {k} series", tuple(range(m)))],
    )
