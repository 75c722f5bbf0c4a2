r"""Auxiliary residuals: standardized smoothed disturbances (Durbin and Koopman 2012, sections
2.12 and 7.5; Harvey and Koopman 1992).

.. math::

    e^*_t = \frac{\hat\varepsilon_{t,i}}{\sqrt{Var(\hat\varepsilon_t)_{ii}}},\quad
    Var(\hat\varepsilon_t) = H_t - Var(\varepsilon_t | y) = H_t D_t H_t, \qquad
    r^*_t = \frac{\hat\eta_{t,j}}{\sqrt{Var(\hat\eta_t)_{jj}}},\quad
    Var(\hat\eta_t) = Q_t - Var(\eta_t | y) = Q_t R_t' N_t R_t Q_t

(D&K eqs. 2.58-2.60 and 4.69).  Large :math:`|e^*_t|` flag outliers in the observations, large
:math:`|r^*_t|` structural breaks in the state (a level break between t and t + 1 shows at
the level disturbance :math:`\eta_t`).  Where the variance is zero (a missing observation, a
disturbance with zero variance) the residual is NaN.
"""

from __future__ import annotations

import numpy as np

from ..spec.model import StateSpaceModel
from .assemble import model_arrays
from .results import SmootherResult

__all__ = ["auxiliary_residuals"]


def _standardize(x: np.ndarray, var_prior: np.ndarray, var_post: np.ndarray) -> np.ndarray:
    v = np.diagonal(var_prior, axis1=1, axis2=2) - np.diagonal(var_post, axis1=1, axis2=2)
    scale = np.maximum(np.diagonal(var_prior, axis1=1, axis2=2), np.finfo(float).tiny)
    ok = v > 1e-12 * scale  # Var(hat) is zero, not rounding error: no information
    out = np.full(x.shape, np.nan)
    np.divide(x, np.sqrt(np.where(ok, v, 1.0)), out=out, where=ok)
    return out


def auxiliary_residuals(result: SmootherResult, model: StateSpaceModel
                        ) -> tuple[np.ndarray, np.ndarray]:
    r"""Standardized smoothed observation and state disturbances.

    Parameters
    ----------
    result : SmootherResult
        From :func:`pymc_dlm.kalman_smoother` on ``model``.
    model : StateSpaceModel
        The numeric model.

    Returns
    -------
    e : (n, p) ndarray
        :math:`e^*_t`, NaN where :math:`y_t` is missing or :math:`Var(\hat\varepsilon_t) = 0`.
    r : (n, r) ndarray
        :math:`r^*_t` per state disturbance, NaN where its variance is zero.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile()
    >>> mod = dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5)
    >>> e, r = auxiliary_residuals(dlm.kalman_smoother(mod, y), mod)
    >>> int(y.index[np.nanargmin(r[:, 0])])
    1898
    """
    sys = model_arrays(model)
    n = result.a_smooth.shape[0]
    H = np.broadcast_to(sys.H, (n,) + sys.H.shape[1:]) if sys.H.shape[0] == 1 else sys.H[:n]
    Q = np.broadcast_to(sys.Q, (n,) + sys.Q.shape[1:]) if sys.Q.shape[0] == 1 else sys.Q[:n]
    e = _standardize(result.eps_hat, H, result.eps_var)
    e[np.isnan(result.filter.y)] = np.nan
    r = _standardize(result.eta_hat, Q, result.eta_var)
    return e, r
