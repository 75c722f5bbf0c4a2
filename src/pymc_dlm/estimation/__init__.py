"""Classical estimation: maximum likelihood with exact gradients, transforms; the residual
diagnostics of :mod:`pymc_dlm.diagnostics` are re-exported here."""

from ..diagnostics import acf, heteroskedasticity, jarque_bera, ljung_box, standardized_residuals
from .mle import MLEResult, fit_mle
from .transforms import exp, inverse_softplus, log, softplus

__all__ = [
    "MLEResult", "acf", "exp", "fit_mle", "heteroskedasticity", "inverse_softplus",
    "jarque_bera", "ljung_box", "log", "softplus", "standardized_residuals",
]
