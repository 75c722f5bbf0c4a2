"""pymc-dlm: dynamic linear models (linear-Gaussian state-space models) for PyMC.

Layers (imports flow one way; ``tests/test_layering.py`` enforces it):
``spec`` -> ``numeric`` (NumPy/numba) and ``symbolic`` (PyTensor) -> ``bayes`` (PyMC) ->
``estimation``, ``diagnostics`` -> ``plots``, ``cli``.
"""

from . import datasets
from .numeric import (
    FilterResult,
    ForecastResult,
    SmootherResult,
    forecast,
    kalman_filter,
    kalman_smoother,
    loglike,
    simulate,
)
from .spec import (
    Autoregressive,
    Component,
    Cycle,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
    StateSpaceModel,
)

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "Component",
    "Cycle",
    "FilterResult",
    "ForecastResult",
    "Irregular",
    "LocalLevel",
    "LocalLinearTrend",
    "Regression",
    "Seasonal",
    "SmootherResult",
    "StateSpaceModel",
    "datasets",
    "forecast",
    "kalman_filter",
    "kalman_smoother",
    "loglike",
    "simulate",
]
