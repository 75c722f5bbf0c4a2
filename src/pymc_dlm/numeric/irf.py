r"""Impulse responses and forecast error variance decompositions of time-invariant models.

For a model with constant matrices, a unit shock in the j-th state disturbance
:math:`\eta_{t,j}` moves the state h + 1 steps later by column j of :math:`T^h R` and the
observed series by column j of :math:`Z T^h R` (h = 0, 1, ...).  For a :func:`~pymc_dlm.VAR`
these are the moving-average matrices :math:`\Psi_h` of Lütkepohl (2005), section 2.1.2
(:math:`\Psi_0 = I`).  Orthogonalised responses use shocks of one standard deviation in the
Cholesky factorisation :math:`Q = LL'` (the order of the disturbances is the causal order):
:math:`\Theta_h = Z T^h R L`.

The forecast error variance decomposition (Lütkepohl 2005, section 2.3.3) is the share of
shock j in the h-step forecast error variance of series k, the state known at the origin:

.. math::

    \omega_{kj,h} = \sum_{i=0}^{h-1} \Theta_{i,kj}^2 \Big/ \sum_{i=0}^{h-1}
    (\Theta_i \Theta_i')_{kk}, \qquad h = 1, 2, \dots

(the observation noise H is not a shock here; for a VAR it is zero).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..spec.model import StateSpaceModel
from .assemble import _numeric

__all__ = ["ImpulseResponse", "fevd", "impulse_responses"]


class ImpulseResponse(NamedTuple):
    """Responses to each state disturbance, horizon h = 0..steps.

    Attributes
    ----------
    observed : (steps + 1, p, r) ndarray
        ``observed[h, k, j]``: series k, h steps after shock j (:math:`Z T^h R`, times L if
        orthogonalised).
    states : (steps + 1, m, r) ndarray
        The same for the states (:math:`T^h R`).
    """

    observed: np.ndarray
    states: np.ndarray


def _constant(model: StateSpaceModel) -> tuple:
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    tv = [k for k in ("Z", "T", "R", "Q") if model.time_varying(k)]
    if tv:
        raise ValueError(f"impulse responses need constant Z, T, R, Q; {tv} are time-varying")
    # the matrices only: no stationary initial covariance (an explosive draw has responses too)
    return tuple(_numeric(model, k) for k in ("Z", "T", "R", "Q"))


def _steps(steps: int) -> int:
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0; got {steps!r}")
    return int(steps)


def _chol(Q: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        raise ValueError("orthogonalised responses need a positive definite Q; got eigenvalues "
                         f"{np.linalg.eigvalsh(Q).round(12).tolist()}") from None


def impulse_responses(
    model: StateSpaceModel, steps: int, *, orthogonalized: bool = False
) -> ImpulseResponse:
    r"""Responses of the states and the observed series to each state disturbance.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric, with constant Z, T, R, Q (T need not be stationary).
    steps : int
        Last horizon (responses for h = 0..steps).
    orthogonalized : bool
        One-standard-deviation Cholesky shocks (:math:`Z T^h R L`, :math:`Q = LL'`) instead
        of unit shocks.

    Returns
    -------
    ImpulseResponse
        ``observed (steps + 1, p, r)`` and ``states (steps + 1, m, r)``.

    Raises
    ------
    ValueError
        A time-varying model, bad ``steps``, or a singular Q with ``orthogonalized=True``.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> mod = dlm.VAR([[[0.5, 0.1], [0.0, 0.4]]], [[1.0, 0.3], [0.3, 1.0]])
    >>> irf = impulse_responses(mod, 2)
    >>> irf.observed[1].tolist()
    [[0.5, 0.1], [0.0, 0.4]]
    >>> impulse_responses(mod, 0, orthogonalized=True).observed[0].round(4).tolist()
    [[1.0, 0.0], [0.3, 0.9539]]
    """
    Z, T, R, Q = _constant(model)
    steps = _steps(steps)
    shock = R @ _chol(Q) if orthogonalized else R
    out = np.empty((steps + 1,) + shock.shape)
    cur = shock
    for h in range(steps + 1):
        out[h] = cur
        cur = T @ cur
    return ImpulseResponse(observed=np.einsum("pm,hmr->hpr", Z, out), states=out)


def fevd(model: StateSpaceModel, steps: int) -> np.ndarray:
    r"""Forecast error variance decomposition over the Cholesky-orthogonalised disturbances.

    Parameters
    ----------
    model : StateSpaceModel
        Numeric, constant Z, T, R and a positive definite Q.
    steps : int
        Number of horizons (h = 1..steps).

    Returns
    -------
    (steps, p, r) ndarray
        ``out[h - 1, k, j]``: share of shock j in the h-step forecast error variance of series
        k; each ``out[h - 1, k]`` sums to one (where that variance is positive).

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> mod = dlm.VAR([[[0.5, 0.1], [0.0, 0.4]]], [[1.0, 0.3], [0.3, 1.0]])
    >>> fevd(mod, 1)[0].round(4).tolist()
    [[1.0, 0.0], [0.09, 0.91]]
    """
    steps = _steps(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1 for a variance decomposition; got {steps}")
    theta = impulse_responses(model, steps - 1, orthogonalized=True).observed
    contrib = np.cumsum(theta**2, axis=0)
    total = contrib.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, contrib / np.where(total > 0, total, 1.0), 0.0)
