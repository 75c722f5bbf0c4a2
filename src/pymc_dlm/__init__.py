"""pymc-dlm: dynamic linear models (linear-Gaussian state-space models) for PyMC.

Layers (imports flow one way; ``tests/test_layering.py`` enforces it):
``spec`` -> ``numeric`` (NumPy/numba) and ``symbolic`` (PyTensor) -> ``fused`` (the numba
filter and its adjoint as one PyTensor Op) -> ``bayes`` (PyMC) -> ``estimation``,
``diagnostics`` -> ``workflow`` (``fit``, ``bayesian``, formulas), ``plots``, ``cli``.

The names below are loaded on first use (PEP 562), so ``import pymc_dlm`` is cheap and
``import pymc_dlm.spec`` does not load the engines.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "spec": [
        "Autoregressive", "Component", "Cycle", "DampedTrend", "DynamicFactor", "Irregular",
        "LevelShift", "LocalLevel", "LocalLinearTrend", "PolynomialTrend", "Pulse", "Regression",
        "SARIMAX", "SUTSE", "Seasonal", "SlopeChange", "StateSpaceModel", "VAR",
    ],
    "numeric": [
        "FilterResult", "ForecastResult", "ImpulseResponse", "SmootherResult", "fevd", "forecast",
        "impulse_responses", "kalman_filter",
        "kalman_smoother", "loglike", "simulate",
        "KalmanState", "SequenceResult", "StepResult", "concentrated_neg2_loglik", "kalman",
        "kalman_sequence", "neg2_loglik", "predict_ahead", "GapWarning", "regularize",
    ],
    "bayes": ["DLM", "Data", "add_residuals", "sample_forecast", "sample_impulse_responses",
              "sample_states"],
    "workflow": ["bayesian", "fit", "fit_many", "parse_formula"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
_SUBMODULES = {"bayes", "datasets", "diagnostics", "estimation", "fused", "numeric", "spec", "symbolic", "cli",
               "plots", "workflow"}

__all__ = sorted(_WHERE) + ["datasets"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'pymc_dlm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
