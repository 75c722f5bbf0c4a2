"""Classical estimation: maximum likelihood with exact gradients, the EM algorithm, transforms; the residual
diagnostics of :mod:`pymc_dlm.diagnostics` are re-exported here."""

from ..diagnostics import acf, heteroskedasticity, jarque_bera, ljung_box, standardized_residuals
from .em import EMResult, fit_em
from .mle import MLEResult, fit_mle
from .transforms import exp, inverse_softplus, log, softplus

__all__ = [
    "EMResult", "MLEResult", "acf", "exp", "fit_em", "fit_mle", "heteroskedasticity", "inverse_softplus",
    "jarque_bera", "ljung_box", "log", "softplus", "standardized_residuals",
]
