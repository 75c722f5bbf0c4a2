"""Layer 1c, the fused engine: the numba Kalman likelihood and its adjoint as one PyTensor Op.

Joins the two engines below it: the numba kernels of :mod:`pymc_dlm.numeric` do the work
(forward filter and reverse adjoint pass), :mod:`pymc_dlm.symbolic` writes out the exact
diffuse steps and builds the system tensors.  Imports numeric, symbolic, numba and pytensor;
never pymc (``tests/test_layering.py`` checks it).
"""

from .loglike import loglike, loglike_t
from .op import KalmanLoglike, KalmanLoglikeGrad

__all__ = ["KalmanLoglike", "KalmanLoglikeGrad", "loglike", "loglike_t"]
