"""Classical estimation: maximum likelihood with exact gradients, the EM algorithm, transforms; the residual
diagnostics of :mod:`pymc_dlm.diagnostics` are re-exported here."""

from ..diagnostics import acf, heteroskedasticity, jarque_bera, ljung_box, standardized_residuals
from .em import EMResult, fit_em
from .mle import MLEResult, fit_mle
from .transforms import (
    ar_to_pacf, exp, inverse_softplus, log, ma_to_pacf, pacf_to_ar, pacf_to_ma, softplus,
)

__all__ = [
    "EMResult", "MLEResult", "acf", "ar_to_pacf", "exp", "fit_em", "fit_mle", "heteroskedasticity", "inverse_softplus",
    "jarque_bera", "ljung_box", "log", "ma_to_pacf", "pacf_to_ar", "pacf_to_ma", "softplus", "standardized_residuals",
]
