"""Layer 1c, the fused engine: the numba Kalman likelihood and its adjoint as one PyTensor Op.

Joins the two engines below it: the numba kernels of :mod:`pymc_dlm.numeric` do the work
(exact diffuse steps, forward filter, reverse adjoint passes), :mod:`pymc_dlm.symbolic` plans
the diffuse period and builds the system tensors.  Imports numeric, symbolic, numba and pytensor;
never pymc (``tests/test_layering.py`` checks it).
"""

from .loglike import loglike, loglike_t
from .op import KalmanLoglike, KalmanLoglikeGrad, plan_arrays

__all__ = ["KalmanLoglike", "KalmanLoglikeGrad", "loglike", "loglike_t", "plan_arrays"]
