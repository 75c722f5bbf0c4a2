"""Layer 2, PyMC integration: the DLM distribution, posterior states and forecasts.

The only layer that imports pymc.
"""

from .distribution import DLM
from .states import sample_forecast, sample_states

__all__ = ["DLM", "sample_forecast", "sample_states"]
