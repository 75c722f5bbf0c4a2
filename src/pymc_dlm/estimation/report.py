"""What the estimators' results share: information criteria, the summary's first lines, and
the fitted model's filter, smoother, forecasts and plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numeric import forecast, kalman_filter, kalman_smoother
from ..numeric.results import FilterResult, ForecastResult, SmootherResult
from ..spec.validate import check_option

__all__ = ["FitStatistics", "PLOT_KINDS"]

PLOT_KINDS = ("diagnostics", "filtered", "smoothed", "forecast", "components")


class FitStatistics:
    """Mixin for results with ``model``, ``data``, ``log_likelihood``, ``df_model``, ``nobs``,
    ``converged``, ``n_iter``."""

    @property
    def aic(self) -> float:
        r""":math:`-2\ell + 2 k` with k = ``df_model`` (statsmodels' convention)."""
        return -2.0 * self.log_likelihood + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        r""":math:`-2\ell + k \log n_{obs}` (statsmodels' convention under exact diffuse)."""
        return -2.0 * self.log_likelihood + self.df_model * np.log(self.nobs)

    def _header(self, title: str) -> list[str]:
        return [
            title,
            f"log-likelihood {self.log_likelihood:.4f}   AIC {self.aic:.4f}   BIC {self.bic:.4f}",
            f"observations {self.nobs}   converged {self.converged}   iterations {self.n_iter}",
        ]

    def __repr__(self) -> str:
        return self.summary()

    def filter(self) -> FilterResult:
        """The Kalman filter of the fitted model on the data (:func:`pymc_dlm.kalman_filter`)."""
        return kalman_filter(self.model, self.data)

    def smooth(self) -> SmootherResult:
        """The state and disturbance smoother of the fitted model (:func:`pymc_dlm.kalman_smoother`)."""
        return kalman_smoother(self.model, self.data)

    def forecast(self, steps: int) -> ForecastResult:
        """Forecasts ``steps`` periods ahead from the fitted model (:func:`pymc_dlm.forecast`)."""
        return forecast(self.model, self.data, steps)

    def plot(self, kind: str = "diagnostics", *, steps: int = 10, **kwargs: Any):
        """Plot the fit: ``kind`` is one of "diagnostics", "filtered", "smoothed", "forecast"
        (``steps`` ahead) or "components"; keyword arguments go to the function of
        :mod:`pymc_dlm.plots` that draws it.  Returns its axes."""
        check_option("kind", kind, PLOT_KINDS)
        from .. import plots  # the plots layer sits above this one; imported on use only

        if kind == "diagnostics":
            return plots.plot_diagnostics(self.filter(), **kwargs)
        if kind == "filtered":
            return plots.plot_filtered(self.filter(), **kwargs)
        if kind == "smoothed":
            return plots.plot_smoothed(self.smooth(), **kwargs)
        if kind == "forecast":
            return plots.plot_forecast(self.forecast(steps), self.data, **kwargs)
        return plots.plot_components(self.smooth(), self.model, **kwargs)
