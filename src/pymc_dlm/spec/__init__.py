"""Layer 0, the model specification: pure data, no engine (imports only NumPy)."""

from .components import (
    Autoregressive,
    Cycle,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
)
from .interventions import LevelShift, Pulse, SlopeChange
from .model import Component, StateSpaceModel

__all__ = [
    "Autoregressive",
    "Component",
    "Cycle",
    "Irregular",
    "LevelShift",
    "LocalLevel",
    "LocalLinearTrend",
    "Pulse",
    "Regression",
    "Seasonal",
    "SlopeChange",
    "StateSpaceModel",
]
