r"""Dynamic factor models: many series driven by a few autoregressive factors.

:func:`DynamicFactor` builds, for p series and k factors,

.. math::

    y_t = \Lambda f_t + u_t,\qquad
    f_{t+1} = A_1 f_t + \dots + A_q f_{t-q+1} + \eta_t,\quad \eta_t \sim N(0, \Sigma_f),

with either white-noise idiosyncratic errors :math:`u_t \sim N(0, \mathrm{diag}(\sigma^2_i))`
(in ``H``) or AR(1) ones, :math:`u_{i,t+1} = \rho_i u_{i,t} + \epsilon_{i,t}`,
:math:`\epsilon_{i,t} \sim N(0, \sigma^2_i)` (in the state; ``H = 0``), as statsmodels'
``DynamicFactor`` with ``error_order`` 0 or 1 (Stock and Watson 2016; Durbin and Koopman
2012, section 3.7).  Every state starts from its stationary distribution.

Identification: :math:`(\Lambda, f)` and :math:`(\Lambda M^{-1}, M f)` give the same
likelihood for any invertible M.  Fixing :math:`\Sigma_f = I` (the default) leaves
rotations and signs; a lower-triangular :math:`\Lambda` (:math:`\Lambda_{ij} = 0` for
j > i) with a positive diagonal removes them (Geweke and Zhou 1996; the first k series
then order the factors).  The function takes whatever loadings it is given; impose that
structure in the parameterisation (``fit_mle``'s ``model_fn`` or the PyMC priors), e.g. for
k = 1 a positive first loading.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import _matrix, _sd, _var
from .matrix import is_symbolic_leaf
from .model import Component, StateSpaceModel
from .var import _coef_array

__all__ = ["DynamicFactor"]


def _rows(x: Any, shape: tuple, name: str) -> list:
    """A (p, k) matrix or (p,) vector as nested lists of entries (numbers or symbolic)."""
    if is_symbolic_leaf(x):
        if tuple(x.type.shape) != shape:
            raise ValueError(f"{name} must have static shape {shape}; got type {x.type}")
        if len(shape) == 1:
            return [x[i] for i in range(shape[0])]
        return [[x[i, j] for j in range(shape[1])] for i in range(shape[0])]
    arr = np.asarray(x, dtype=object)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    return arr.tolist()


def DynamicFactor(
    loadings: Any,
    factor_ar: Any,
    *,
    sigma_obs: Any = None,
    idio_ar: Any = None,
    idio_sigma: Any = None,
    factor_cov: Any = None,
    names: list[str] | None = None,
    name: str = "factor",
) -> StateSpaceModel:
    r"""Dynamic factor model with VAR(q) factors and white-noise or AR(1) idiosyncratic errors.

    Parameters
    ----------
    loadings : (p, k) array_like, nested lists with PyTensor scalars, or a PyTensor matrix
        :math:`\Lambda`.
    factor_ar : (q, k, k) or (k, k) array_like or PyTensor tensor
        Factor transition :math:`A_1..A_q` (``factor_ar[i]`` multiplies :math:`f_{t-i}`); for
        one AR(1) factor ``[[phi]]``.
    sigma_obs : (p,) sequence of float or PyTensor scalars, optional
        Standard deviations of white-noise idiosyncratic errors (``H`` diagonal).
    idio_ar, idio_sigma : (p,) sequences, optional
        AR(1) idiosyncratic errors: coefficients :math:`\rho_i` (|rho| < 1) and innovation
        standard deviations :math:`\sigma_i`.  Give both, or ``sigma_obs``, not both kinds.
    factor_cov : (k, k) array_like or PyTensor matrix, optional
        :math:`\Sigma_f`; the identity by default (the usual identification).
    names : list of str, optional
        Series names (``y0, ...``), used for the idiosyncratic states ``f"e.{series}"``.
    name : str
        Component name; factor states ``f"{name}{j}"`` and lags ``f"{name}{j}.L{i}"``.

    Returns
    -------
    StateSpaceModel
        ``m = kq`` (+ p with AR(1) errors), every state stationary.

    Raises
    ------
    ValueError
        Shapes that do not match, both kinds of idiosyncratic error, a non-stationary numeric
        factor transition or idiosyncratic AR coefficient.

    Examples
    --------
    >>> from pymc_dlm import DynamicFactor
    >>> mod = DynamicFactor([[1.0], [0.5], [2.0]], [[0.8]], sigma_obs=[1.0, 1.0, 2.0])
    >>> mod.state_names, mod.H.diagonal().tolist()
    (('factor0',), [1.0, 1.0, 4.0])
    >>> DynamicFactor([[1.0], [0.5]], [[[0.5]], [[0.2]]], idio_ar=[0.3, 0.1],
    ...               idio_sigma=[1.0, 1.0]).state_names
    ('factor0', 'factor0.L1', 'e.y0', 'e.y1')
    """
    A, q, k = _coef_array(factor_ar)
    shape = tuple(loadings.type.shape) if is_symbolic_leaf(loadings) else np.shape(loadings)
    if len(shape) != 2 or shape[1] != k:
        raise ValueError(f"loadings must be (p, k) with k = {k} factors (from factor_ar); got "
                         f"shape {shape}")
    p = shape[0]
    Lam = _rows(loadings, (p, k), "loadings")
    names = [f"y{i}" for i in range(p)] if names is None else [str(s) for s in names]
    if len(names) != p:
        raise ValueError(f"names must have p = {p} entries; got {len(names)}")
    ar1 = idio_ar is not None or idio_sigma is not None
    if ar1 and sigma_obs is not None:
        raise ValueError("give sigma_obs (white-noise errors) or idio_ar and idio_sigma (AR(1) "
                         "errors), not both")
    if ar1 and (idio_ar is None or idio_sigma is None):
        raise ValueError("AR(1) idiosyncratic errors need both idio_ar and idio_sigma")

    mf = k * q
    m = mf + (p if ar1 else 0)
    T: list = [[0.0] * m for _ in range(m)]
    for lag in range(q):
        for r in range(k):
            for c in range(k):
                T[r][lag * k + c] = A[lag][r][c]
    for i in range(k, mf):
        T[i][i - k] = 1.0
    if not any(is_symbolic_leaf(e) for row in T[:mf] for e in row[:mf]):
        rad = float(np.max(np.abs(np.linalg.eigvals(
            np.array([row[:mf] for row in T[:mf]], dtype=np.float64)))))
        if rad >= 1.0:
            raise ValueError(f"factor_ar is not stationary (companion spectral radius "
                             f"{rad:.6g} >= 1)")
    Z: list = [[Lam[i][j] if j < k else 0.0 for j in range(mf)] for i in range(p)]
    R = np.zeros((m, k + (p if ar1 else 0)))
    R[:k, :k] = np.eye(k)
    Qf = np.eye(k) if factor_cov is None else factor_cov
    if ar1:
        rho = _rows(idio_ar, (p,), "idio_ar")
        for i, v in enumerate(rho):
            if not is_symbolic_leaf(v) and not -1.0 < float(v) < 1.0:
                raise ValueError(f"idio_ar must lie in (-1, 1); got {v} for {names[i]}")
            T[mf + i][mf + i] = v
            Z[i] = Z[i] + [1.0 if j == i else 0.0 for j in range(p)]
            R[mf + i, k + i] = 1.0
        sds = [_sd(s, "idio_sigma") for s in _rows(idio_sigma, (p,), "idio_sigma")]
        Qf_rows = _rows(Qf, (k, k), "factor_cov")
        Q = [[Qf_rows[i][j] if (i < k and j < k) else 0.0 for j in range(k + p)]
             for i in range(k + p)]
        for i, s in enumerate(sds):
            Q[k + i][k + i] = _var(s)
        H = np.zeros((p, p))
    else:
        Q = Qf if is_symbolic_leaf(Qf) else _rows(Qf, (k, k), "factor_cov")
        if sigma_obs is None:
            H = np.zeros((p, p))
        else:
            sds = [_sd(s, "sigma_obs") for s in _rows(sigma_obs, (p,), "sigma_obs")]
            H = _matrix([[_var(sds[i]) if i == j else 0.0 for j in range(p)] for i in range(p)])
    states = ([f"{name}{j}" for j in range(k)]
              + [f"{name}{j}.L{i}" for i in range(1, q) for j in range(k)]
              + ([f"e.{s}" for s in names] if ar1 else []))
    desc = f"dynamic factor model: {k} VAR({q}) factors, {p} series" + (
        ", AR(1) errors" if ar1 else "")
    return StateSpaceModel(
        Z=_matrix(Z), T=_matrix(T), R=R, Q=_matrix(Q) if isinstance(Q, list) else Q, H=H,
        diffuse=[False] * m, stationary=[True] * m, state_names=states,
        components=[Component(name, desc, tuple(range(m)))],
    )
