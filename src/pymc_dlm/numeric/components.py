r"""Each structural component's contribution to the signal, :math:`Z_{t,c}\,\alpha_{t,c}`."""

from __future__ import annotations

import numpy as np

from ..spec.model import StateSpaceModel
from .results import SmootherResult

__all__ = ["component_contributions"]


def component_contributions(
    result: SmootherResult, model: StateSpaceModel
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r"""Smoothed contribution of every component with states to each observed series.

    For component c with states :math:`s_c`, the contribution is
    :math:`Z_{t,[:, s_c]}\hat\alpha_{t,s_c}` with variance
    :math:`Z_{t,[:,s_c]} V_{t,[s_c,s_c]} Z_{t,[:,s_c]}'` (diagonal kept); the contributions
    and ``d_t`` add up to the smoothed signal :math:`Z_t\hat\alpha_t + d_t`.

    Parameters
    ----------
    result : SmootherResult
        From :func:`pymc_dlm.kalman_smoother` on ``model``.
    model : StateSpaceModel
        The numeric model the smoother ran on.

    Returns
    -------
    dict
        ``{component name: (mean (n, p), variance (n, p))}`` in the model's order.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.numeric.components import component_contributions
    >>> mod = dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)
    >>> y = np.log(dlm.datasets.load_airline_passengers())
    >>> parts = component_contributions(dlm.kalman_smoother(mod, y), mod)
    >>> list(parts), parts["trend"][0].shape
    (['trend', 'seasonal'], (144, 1))
    """
    n = result.a_smooth.shape[0]
    Z = np.asarray(model.Z, dtype=np.float64)
    Z = np.broadcast_to(Z if Z.ndim == 3 else Z[None], (n,) + Z.shape[-2:])
    out = {}
    for comp in model.components:
        if not comp.states:
            continue
        s = np.asarray(comp.states)
        zc = Z[:, :, s]
        mean = np.einsum("tpj,tj->tp", zc, result.a_smooth[:, s])
        var = np.einsum("tpi,tij,tpj->tp", zc, result.V[:, s][:, :, s], zc)
        out[comp.name] = (mean, var)
    return out
