"""Layer 0, the model specification: pure data, no engine (imports only NumPy)."""

from .arima import SARIMAX
from .components import (
    Autoregressive,
    Cycle,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
)
from .factor import DynamicFactor
from .model import Component, StateSpaceModel
from .var import VAR

__all__ = [
    "Autoregressive",
    "Component",
    "Cycle",
    "DynamicFactor",
    "Irregular",
    "LocalLevel",
    "LocalLinearTrend",
    "Regression",
    "SARIMAX",
    "Seasonal",
    "StateSpaceModel",
    "VAR",
]
