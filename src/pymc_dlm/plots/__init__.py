"""Layer 4, plots: matplotlib figures from result objects (matplotlib imported inside functions)."""

from .auxiliary import plot_auxiliary_residuals
from .bayes import plot_residual_diagnostics
from .diagnostics import plot_diagnostics
from .states import plot_components, plot_filtered, plot_forecast, plot_forecast_draws, plot_smoothed

__all__ = ["plot_auxiliary_residuals", "plot_components", "plot_diagnostics", "plot_filtered",
           "plot_forecast", "plot_forecast_draws", "plot_residual_diagnostics", "plot_smoothed"]
