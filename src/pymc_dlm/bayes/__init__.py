"""Layer 2, PyMC integration: the DLM distribution, posterior states and forecasts.

The only layer that imports pymc.
"""

from .distribution import DLM, Data
from .irf import sample_impulse_responses
from .residuals import add_residuals
from .states import sample_forecast, sample_states

__all__ = ["DLM", "Data", "add_residuals", "sample_forecast", "sample_impulse_responses",
           "sample_states"]
