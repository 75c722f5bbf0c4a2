"""Simulation from the model (unconditional draws of states and observations)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec.model import StateSpaceModel
from .assemble import at_time, system_arrays

__all__ = ["simulate", "simulation_smoother"]


def _sqrt_psd(A: np.ndarray) -> np.ndarray:
    """A factor B with B B' = A for symmetric PSD A (eigendecomposition; singular A allowed)."""
    lam, V = np.linalg.eigh(A)
    return V * np.sqrt(np.clip(lam, 0.0, None))


def simulate(
    model: StateSpaceModel, n: int, rng: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw states and observations from the model.

    .. math::

        \alpha_1 \sim N(a_1, P_*),\quad y_t = Z_t\alpha_t + d_t + \varepsilon_t,\quad
        \alpha_{t+1} = T_t\alpha_t + c_t + R_t\eta_t

    Diffuse states have no proper distribution: they start at ``a1`` exactly (their
    :math:`P_*` part, zero, is used), as in statsmodels' ``simulate``.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric model; a time-varying one must cover ``n`` steps.
    n : int
        Number of time steps.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.

    Returns
    -------
    y : (n, p) ndarray
    alpha : (n, m) ndarray

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> y, alpha = dlm.simulate(dlm.LocalLevel(1.0, 0.5), 50, rng=1)
    >>> y.shape, alpha.shape
    ((50, 1), (50, 1))
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1; got {n!r}")
    if model.n_time is not None and model.n_time != n:
        raise ValueError(f"the model is time-varying over {model.n_time} steps; got n = {n}")
    rng = np.random.default_rng(rng)
    sys = system_arrays(model)
    p, m, r = model.p, model.m, model.r
    alpha = np.empty((n, m))
    y = np.empty((n, p))
    a = sys.a1 + _sqrt_psd(sys.P1) @ rng.standard_normal(m)
    for t in range(n):
        alpha[t] = a
        eps = _sqrt_psd(at_time(sys.H, t)) @ rng.standard_normal(p)
        y[t] = at_time(sys.Z, t) @ a + at_time(sys.d, t) + eps
        eta = _sqrt_psd(at_time(sys.Q, t)) @ rng.standard_normal(r)
        a = at_time(sys.T, t) @ a + at_time(sys.c, t) + at_time(sys.R, t) @ eta
    return y, alpha


def simulation_smoother(model: StateSpaceModel, y: Any, rng: Any = None) -> np.ndarray:
    r"""One draw of the states from :math:`p(\alpha_{1:n} \mid y)` (Durbin and Koopman 2002).

    The mean-correction method: simulate :math:`(\alpha^+, y^+)` from the model (with the
    missing values of y), smooth both series, and return
    :math:`\tilde\alpha = \hat\alpha + \alpha^+ - \hat\alpha^+` (D&K 2012, section 4.9.3).
    With exact diffuse states the starting value of ``alpha^+`` cancels, so simulating them
    from ``a1`` is exact.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric model.
    y : (n,) or (n, p) array_like
        Observations, NaN for missing.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    (n, m) ndarray

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.simulate import simulation_smoother
    >>> y = dlm.datasets.load_nile().to_numpy()
    >>> draw = simulation_smoother(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5), y, rng=0)
    >>> draw.shape
    (100, 1)
    """
    from .smoother import kalman_smoother

    rng = np.random.default_rng(rng)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    y_plus, alpha_plus = simulate(model, y.shape[0], rng=rng)
    y_plus[np.isnan(y)] = np.nan
    hat = kalman_smoother(model, y).a_smooth
    hat_plus = kalman_smoother(model, y_plus).a_smooth
    return hat + alpha_plus - hat_plus
