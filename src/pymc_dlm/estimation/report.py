"""What the estimators' results share: information criteria, the summary's first lines, and
the fitted model's filter, smoother, forecasts and plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numeric import forecast, kalman_filter, kalman_smoother, simulate
from ..numeric.components import component_contributions
from ..numeric.forecast import series_names
from ..numeric.results import FilterResult, SmootherResult
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
            f"observations {self.nobs}   converged "
            f"{'n/a' if self.converged is None else self.converged}   iterations {self.n_iter}",
        ]

    def _diagnostic_lines(self) -> list[str]:
        """Residual diagnostics of the standardised one-step errors, one line per test and
        series, as statsmodels' summary: Ljung-Box Q at lag 1 (and at lag 10 when n allows),
        Jarque-Bera, and D&K's H(h) with h = n/3 (two-sided)."""
        from ..diagnostics import heteroskedasticity, jarque_bera, ljung_box, standardized_residuals

        try:
            e = standardized_residuals(self.filter())
        except Exception:  # noqa: BLE001 - a summary never fails on its diagnostics
            return []
        lines = []
        for j in range(e.shape[1]):
            col = e[:, j]
            label = "" if e.shape[1] == 1 else f" [series {j}]"
            try:
                n = int(np.count_nonzero(~np.isnan(col)))
                lags = [1] + ([10] if n > 20 else [])
                lb = ljung_box(col, max(lags)).table
                q = "   ".join(f"Q({k}) {lb.statistic.loc[k]:.3f} (p {lb.p_value.loc[k]:.3f})"
                               for k in lags)
                jb, h = jarque_bera(col), heteroskedasticity(col)
            except ValueError:
                continue
            lines += [
                f"Ljung-Box{label}: {q}",
                f"Jarque-Bera{label}: {jb.statistic:.3f} (p {jb.p_value:.3f})   skew "
                f"{jb.skew:.3f}   kurtosis {jb.kurtosis:.3f}",
                f"Heteroskedasticity H({h.h}){label}: {h.statistic:.3f} (p {h.p_value:.3f}, "
                "two-sided)",
            ]
        return lines

    def __repr__(self) -> str:
        return self.summary()

    def filter(self) -> FilterResult:
        """The Kalman filter of the fitted model on the data (:func:`pymc_dlm.kalman_filter`)."""
        return kalman_filter(self.model, self.data)

    def smooth(self) -> SmootherResult:
        """The state and disturbance smoother of the fitted model (:func:`pymc_dlm.kalman_smoother`)."""
        return kalman_smoother(self.model, self.data)

    def forecast(self, steps: int, alpha: float = 0.05) -> Any:
        r"""Forecasts ``steps`` periods ahead as a pandas DataFrame continuing y's index.

        Columns ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` (the
        :math:`(1-\alpha)` prediction interval), as statsmodels' ``summary_frame``; a
        MultiIndex (series, statistic) with several series.  The arrays (state forecasts and
        full covariances) are :func:`pymc_dlm.forecast`'s.

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
        >>> fc = res.forecast(3)
        >>> fc.index.tolist(), round(float(fc["mean"].iloc[0]), 1)
        ([1971, 1972, 1973], 798.4)
        """
        return forecast(self.model, self.data, steps).summary_frame(alpha)

    def components(self) -> Any:
        """Each structural component's smoothed contribution to y as a pandas DataFrame.

        One column per component with states (``(component, series)`` columns when y is
        multivariate), indexed like y; see
        :func:`~pymc_dlm.numeric.components.component_contributions` for the variances.
        """
        import pandas as pd

        sm = self.smooth()
        parts = component_contributions(sm, self.model)
        index = sm.filter.index if sm.filter.index is not None else pd.RangeIndex(sm.filter.n)
        names = series_names(self.data, self.model.p)
        if self.model.p == 1:
            return pd.DataFrame({k: v[0][:, 0] for k, v in parts.items()}, index=index)
        cols = pd.MultiIndex.from_tuples([(k, s) for k in parts for s in names],
                                         names=["component", "series"])
        return pd.DataFrame(np.hstack([v[0] for v in parts.values()]), index=index, columns=cols)

    def simulate(self, steps: int | None = None, *, repetitions: int = 1, anchor: str = "start",
                 rng: Any = None) -> np.ndarray:
        r"""Simulated paths of y from the fitted model, shape (repetitions, steps, p).

        ``anchor="start"``: unconditional draws of ``steps`` (default: as many as the data)
        periods from the initial state distribution (diffuse states start at ``a1``, as in
        statsmodels); ``anchor="end"``: future paths after the data, from the predictive
        distribution of :math:`\alpha_{n+1}` given all of y, so their spread matches
        :meth:`forecast`'s intervals.
        """
        check_option("anchor", anchor, ("start", "end"))
        n = len(self.data) if steps is None else steps
        model = self.model
        if anchor == "end":
            fc = forecast(model, self.data, 1)
            m = model.m
            model = model.replace(a1=fc.a[0], P1=fc.P[0], diffuse=(False,) * m,
                                  stationary=(False,) * m)
        gen = np.random.default_rng(rng)
        return np.stack([simulate(model, n, rng=gen)[0] for _ in range(repetitions)])

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
            return plots.plot_forecast(forecast(self.model, self.data, steps), self.data, **kwargs)
        return plots.plot_components(self.smooth(), self.model, **kwargs)
