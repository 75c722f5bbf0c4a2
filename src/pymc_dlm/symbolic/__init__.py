"""Layer 1b, the symbolic engine: the model as PyTensor tensors and the scan Kalman filter.

Imports pytensor and the specification only; never numeric or pymc
(``tests/test_layering.py`` checks it).
"""

from .assemble import SystemTensors, leaves, system_tensors
from .filter import DiffusePlan, diffuse_plan, loglike, loglike_t

__all__ = [
    "DiffusePlan", "SystemTensors", "diffuse_plan", "leaves", "loglike", "loglike_t", "system_tensors",
]
