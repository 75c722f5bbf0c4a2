"""Residual diagnostics of a fitted model (NumPy/SciPy; above the engines, beside estimation).

``standardized_residuals`` from a :class:`~pymc_dlm.numeric.FilterResult`, then ``acf``,
``ljung_box``, ``jarque_bera`` and ``heteroskedasticity`` (Durbin and Koopman's H(h)) on them.
"""

from .residuals import standardized_residuals
from .stats import acf, heteroskedasticity, jarque_bera, ljung_box

__all__ = ["acf", "heteroskedasticity", "jarque_bera", "ljung_box", "standardized_residuals"]
