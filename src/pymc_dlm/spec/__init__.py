"""Layer 0, the model specification: pure data, no engine (imports only NumPy)."""

from .arima import SARIMAX
from .components import (
    Autoregressive,
    Cycle,
    DampedTrend,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    PolynomialTrend,
    Regression,
    Seasonal,
)
from .factor import DynamicFactor
from .interventions import LevelShift, Pulse, SlopeChange
from .model import Component, StateSpaceModel
from .sutse import SUTSE
from .var import VAR

__all__ = [
    "Autoregressive",
    "Component",
    "Cycle",
    "DampedTrend",
    "DynamicFactor",
    "Irregular",
    "LevelShift",
    "LocalLevel",
    "LocalLinearTrend",
    "PolynomialTrend",
    "Pulse",
    "Regression",
    "SARIMAX",
    "SUTSE",
    "Seasonal",
    "SlopeChange",
    "StateSpaceModel",
    "VAR",
]
