r"""Seasonal ARIMA models in state-space form, differencing inside the state.

:func:`SARIMAX` builds

.. math::

    \phi(L)\,\Phi(L^s)\,(1 - L)^d (1 - L^s)^D u_t = \theta(L)\,\Theta(L^s)\,\eta_t,
    \qquad \eta_t \sim N(0, \sigma^2),

with :math:`\phi(L) = 1 - \phi_1 L - \dots - \phi_p L^p`,
:math:`\theta(L) = 1 + \theta_1 L + \dots + \theta_q L^q` and the seasonal polynomials
likewise in :math:`L^s` (the sign conventions of R's ``arima`` and statsmodels' ``SARIMAX``).
``u_t`` is the observed series, or, composed with ``+`` (e.g. with a
:func:`~pymc_dlm.Regression`), the error of a regression with ARIMA errors.

The state stacks the ``K = d + sD`` lagged values :math:`u_{t-1}, \dots, u_{t-K}` (exactly
diffuse) and the ARMA part :math:`w_t = \Delta(L) u_t` in Harvey's companion form
(Durbin and Koopman 2012, section 3.4), started from its stationary distribution
(:math:`P = TPT' + RQR'`, section 5.6.2).  With :math:`\Delta(L) = (1-L)^d(1-L^s)^D =
1 - \delta_1 L - \dots - \delta_K L^K`:

.. math::

    u_t = \sum_{i=1}^K \delta_i u_{t-i} + w_t, \qquad
    x_{t+1} = \begin{pmatrix} a_1 & 1 & & \\ \vdots & & \ddots & \\ a_{r-1} & & & 1 \\
    a_r & 0 & \cdots & 0\end{pmatrix} x_t + \begin{pmatrix}1\\ b_1\\ \vdots\\ b_{r-1}
    \end{pmatrix}\eta_t, \qquad w_t = x_{t,1},

where :math:`a_i` are the coefficients of :math:`1 - \phi(L)\Phi(L^s)`, :math:`b_j` those of
:math:`\theta(L)\Theta(L^s) - 1` and :math:`r = \max(p + sP, q + sQ + 1)`.

The exact diffuse likelihood of this model equals the likelihood of the differenced series
(the map from the diffuse pre-sample values to the first K observations is unit
triangular), so in KFAS's convention (``loglike(..., convention="kfas")``), which drops
:math:`\tfrac12\log 2\pi` for each diffuse observation, it is R's ``arima``
log-likelihood; in statsmodels' convention (the default) it is that value minus
:math:`\tfrac K2\log 2\pi`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .components import _H, _matrix, _sd, _var
from .matrix import is_symbolic_leaf
from .model import Component, StateSpaceModel

__all__ = ["SARIMAX"]


def _is_zero(x: Any) -> bool:
    return isinstance(x, (numbers.Real, np.floating, np.integer)) and float(x) == 0.0


def _is_one(x: Any) -> bool:
    return isinstance(x, (numbers.Real, np.floating, np.integer)) and float(x) == 1.0


def _coefs(x: Any, k: int, name: str) -> list:
    """k coefficients (numbers or symbolic scalars) from a sequence or a PyTensor vector."""
    if x is None:
        if k:
            raise ValueError(f"{name} needs {k} coefficients for the order given; got none")
        return []
    if is_symbolic_leaf(x):
        if x.ndim == 0:
            vals = [x]
        else:
            n = x.type.shape[0]
            if x.ndim != 1 or n is None:
                raise ValueError(f"a symbolic {name} must be a vector of static length "
                                 f"(e.g. shape=({k},)); got type {x.type}")
            vals = [x[i] for i in range(n)]
    elif isinstance(x, (list, tuple)):
        vals = list(x)
    else:
        vals = list(np.atleast_1d(np.asarray(x, dtype=np.float64)))
    if len(vals) != k:
        raise ValueError(f"{name} must have {k} coefficients for the order given; got {len(vals)}")
    out = []
    for v in vals:
        if is_symbolic_leaf(v):
            out.append(v)
        else:
            f = float(v)
            if not np.isfinite(f):
                raise ValueError(f"{name} must be finite; got {list(vals)}")
            out.append(f)
    return out


def _polymul(a: list, b: list) -> list:
    """Product of two polynomials given by coefficient lists (entries numbers or symbolic)."""
    out: list = [0.0] * (len(a) + len(b) - 1)
    for i, ai in enumerate(a):
        if _is_zero(ai):
            continue
        for j, bj in enumerate(b):
            if _is_zero(bj):
                continue
            term = ai * bj if not (_is_one(ai) or _is_one(bj)) else (bj if _is_one(ai) else ai)
            out[i + j] = term if _is_zero(out[i + j]) else out[i + j] + term
    return out


def _lag_poly(coefs: list, step: int, sign: float) -> list:
    """``1 + sign * (c_1 L^step + c_2 L^{2 step} + ...)`` as a coefficient list."""
    poly: list = [1.0] + [0.0] * (step * len(coefs))
    for i, c in enumerate(coefs):
        poly[step * (i + 1)] = -c if sign < 0 else c
    return poly


def _order(x: Any, n: int, name: str) -> tuple:
    if not isinstance(x, (tuple, list)) or len(x) != n or not all(
        isinstance(v, (int, np.integer)) and v >= 0 for v in x
    ):
        raise ValueError(f"{name} must be {n} non-negative integers; got {x!r}")
    return tuple(int(v) for v in x)


def SARIMAX(
    order: tuple = (1, 0, 0),
    seasonal_order: tuple = (0, 0, 0, 0),
    *,
    ar: Any = None,
    ma: Any = None,
    seasonal_ar: Any = None,
    seasonal_ma: Any = None,
    sigma: Any,
    sigma_obs: Any = None,
    name: str = "arima",
) -> StateSpaceModel:
    r"""Seasonal ARIMA :math:`(p, d, q)(P, D, Q)_s` process (see the module notes for the form).

    Compose with ``+`` for regression with ARIMA errors
    (``Regression(X) + SARIMAX(...)``) or an ARMA plus a structural component.  The model has
    no observation noise unless ``sigma_obs`` is given (statsmodels'
    ``measurement_error=False``).

    Parameters
    ----------
    order : (p, d, q) tuple of int
        AR order, number of differences, MA order.
    seasonal_order : (P, D, Q, s) tuple of int
        Seasonal AR order, seasonal differences, seasonal MA order, period ``s`` (>= 2 when any
        of P, D, Q is positive).
    ar : (p,) sequence of float or PyTensor scalars, or a PyTensor vector of static length p
        :math:`\phi_1..\phi_p`; the AR polynomial must be stationary (checked for numbers).
        For a prior or an optimiser, map partial autocorrelations through
        :func:`pymc_dlm.estimation.transforms.pacf_to_ar` (Monahan 1984).
    ma : (q,) sequence or PyTensor vector
        :math:`\theta_1..\theta_q` (``+`` sign: :math:`\theta(L) = 1 + \theta_1 L + \dots`);
        invertibility is not required by the likelihood (see
        :func:`~pymc_dlm.estimation.transforms.pacf_to_ma`).
    seasonal_ar, seasonal_ma : (P,) and (Q,) sequences or PyTensor vectors
        :math:`\Phi_1..\Phi_P` and :math:`\Theta_1..\Theta_Q`.
    sigma : float or PyTensor scalar
        Innovation standard deviation :math:`\sigma`.
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation (none by default).
    name : str
        Component name; states ``f"{name}_lag{i}"`` (:math:`u_{t-i}`, diffuse) and
        ``f"{name}_{j}"`` (the ARMA state, stationary).

    Returns
    -------
    StateSpaceModel
        ``p = 1``, ``m = d + sD + max(p + sP, q + sQ + 1)``, ``r = 1``.

    Raises
    ------
    ValueError
        Bad orders, a coefficient count that does not match the order, numeric AR
        coefficients that are not stationary.

    References
    ----------
    Durbin, J. and Koopman, S. J. (2012). *Time Series Analysis by State Space Methods*,
    2nd ed., sections 3.4 (ARIMA models in state-space form) and 5.6 (initialisation).

    Examples
    --------
    ARIMA(0, 1, 1), the model R's ``arima`` fits to the Nile data:

    >>> from pymc_dlm import SARIMAX
    >>> mod = SARIMAX((0, 1, 1), ma=[-0.73], sigma=143.5)
    >>> mod.state_names, mod.diffuse, mod.stationary
    (('arima_lag1', 'arima_0', 'arima_1'), (True, False, False), (False, True, True))
    >>> mod.Z
    array([[1., 1., 0.]])
    >>> SARIMAX((0, 1, 1), (0, 1, 1, 12), ma=[-0.4], seasonal_ma=[-0.56], sigma=0.04).m
    27
    """
    p, d, q = _order(order, 3, "order")
    P, D, Qs, s = _order(seasonal_order, 4, "seasonal_order")
    if (P or D or Qs) and s < 2:
        raise ValueError(f"seasonal_order needs a period s >= 2 when P, D or Q > 0; got s = {s}")
    step = s if s >= 2 else 1
    phi = _coefs(ar, p, "ar")
    theta = _coefs(ma, q, "ma")
    Phi = _coefs(seasonal_ar, P, "seasonal_ar")
    Theta = _coefs(seasonal_ma, Qs, "seasonal_ma")
    sd = _sd(sigma, "sigma")
    if sd is None:
        raise ValueError("sigma (the innovation standard deviation) is required")

    # 1 - a_1 L - ... and 1 + b_1 L + ...: the products of the plain and seasonal polynomials
    ar_poly = _polymul(_lag_poly(phi, 1, -1.0), _lag_poly(Phi, step, -1.0))
    ma_poly = _polymul(_lag_poly(theta, 1, 1.0), _lag_poly(Theta, step, 1.0))
    r = max(len(ar_poly) - 1, len(ma_poly))
    a = [0.0 if _is_zero(c) else -c for c in ar_poly[1:]] + [0.0] * (r - len(ar_poly) + 1)
    b = ma_poly[1:] + [0.0] * (r - len(ma_poly))
    if all(not is_symbolic_leaf(v) for v in a):
        comp = np.zeros((r, r))
        comp[:, 0] = a
        comp[:-1, 1:] = np.eye(r - 1)
        rad = float(np.max(np.abs(np.linalg.eigvals(comp))))
        if rad >= 1.0:
            raise ValueError(f"the AR polynomial is not stationary (companion spectral radius "
                             f"{rad:.6g} >= 1): ar {phi}, seasonal_ar {Phi}")

    # Delta(L) = (1 - L)^d (1 - L^s)^D = 1 - delta_1 L - ... - delta_K L^K (integers)
    delta = np.array([1.0])
    for _ in range(d):
        delta = np.convolve(delta, [1.0, -1.0])
    for _ in range(D):
        delta = np.convolve(delta, np.r_[1.0, np.zeros(step - 1), -1.0])
    dl = -delta[1:]
    K = dl.size
    m = K + r

    T: list = [[0.0] * m for _ in range(m)]
    for j in range(K):
        T[0][j] = float(dl[j])
    if K:
        T[0][K] = 1.0
    for i in range(1, K):
        T[i][i - 1] = 1.0
    for i in range(r):
        T[K + i][K] = a[i]
        if i + 1 < r:
            T[K + i][K + i + 1] = 1.0
    R: list = [[0.0] for _ in range(m)]
    R[K][0] = 1.0
    for i in range(1, r):
        R[K + i][0] = b[i - 1]
    Z = np.zeros((1, m))
    Z[0, :K] = dl
    Z[0, K] = 1.0

    desc = f"ARIMA({p},{d},{q})" + (f"({P},{D},{Qs})_{s}" if (P or D or Qs) else "")
    names = [f"{name}_lag{i}" for i in range(1, K + 1)] + [f"{name}_{j}" for j in range(r)]
    return StateSpaceModel(
        Z=Z, T=_matrix(T), R=_matrix(R), Q=_matrix([[_var(sd)]]), H=_H(sigma_obs),
        diffuse=[True] * K + [False] * r, stationary=[False] * K + [True] * r,
        state_names=names, components=[Component(name, desc, tuple(range(m)))],
    )
