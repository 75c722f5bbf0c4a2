"""Layer 1a, the NumPy engine: numba kernels, filter, smoother, forecast, simulation.

Never imports pytensor or pymc (``tests/test_layering.py`` checks it).
"""

from .assemble import SystemArrays, system_arrays
from .filter import kalman_filter, loglike
from .forecast import forecast
from .results import FilterResult, ForecastResult, SmootherResult
from .simulate import simulate
from .smoother import kalman_smoother

__all__ = [
    "FilterResult",
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
