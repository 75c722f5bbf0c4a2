"""Layer 1a, the NumPy engine: numba kernels, filter, smoother, forecast, simulation, stepwise procedure.

Never imports pytensor or pymc (``tests/test_layering.py`` checks it).
"""

from .assemble import SystemArrays, system_arrays
from .calendar import GapWarning, regularize
from .filter import kalman_filter, loglike
from .forecast import forecast
from .irf import ImpulseResponse, fevd, impulse_responses
from .results import FilterResult, ForecastResult, SmootherResult
from .simulate import simulate
from .smoother import kalman_smoother
from .stepwise import (
    KalmanState,
    SequenceResult,
    StepResult,
    concentrated_neg2_loglik,
    kalman,
    kalman_sequence,
    neg2_loglik,
    predict_ahead,
)

__all__ = [
    "FilterResult",
    "ImpulseResponse",
    "fevd",
    "impulse_responses",
    "GapWarning",
    "regularize",
    "KalmanState",
    "SequenceResult",
    "StepResult",
    "concentrated_neg2_loglik",
    "kalman",
    "kalman_sequence",
    "neg2_loglik",
    "predict_ahead",
    "ForecastResult",
    "SmootherResult",
    "SystemArrays",
    "forecast",
    "kalman_filter",
    "kalman_smoother",
    "loglike",
    "simulate",
    "system_arrays",
]
