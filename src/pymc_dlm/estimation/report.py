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

    def to_datatree(self, posterior: dict | None = None, *, name: str = "y",
                    lags: Any = 10) -> Any:
        r"""The fit as an ArviZ DataTree: one chain with one draw, like a Bayesian fit's.

        Groups: ``posterior`` (the estimates), ``observed_data`` (y), ``log_likelihood``
        (the pointwise terms :math:`\log p(y_t \mid y_{1:t-1})` at the estimate, the d
        diffuse steps folded into step d + 1 as :class:`pymc_dlm.DLM` does) and
        ``residuals`` (as :func:`pymc_dlm.add_residuals`: one-step predictions, v_t, F_t,
        standardized residuals, Ljung-Box, Jarque-Bera, H).  So ``az.plot_forest([mle_tree,
        nuts_idata])`` and the residual plots of :mod:`pymc_dlm.plots.bayes` show MLE, EM and
        NUTS side by side.

        Parameters
        ----------
        posterior : dict, optional
            ``{variable: value}`` to store as the posterior (e.g. named as in a PyMC model,
            ``{"sigma_obs": ...}``).  Default: MLE, each parameter by its name and, for
            ``"log sigma2.x"``, also ``"sigma2.x"`` (its exponential); EM, ``params``.
        name : str, default "y"
            Name of the observed variable (use the PyMC model's to compare with it).
        lags : int or sequence of int
            Ljung-Box lags of the residual group.

        Returns
        -------
        xarray.DataTree

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
        >>> dt = res.to_datatree(name="flow")
        >>> round(dt.posterior["sigma2.obs"].item()), dt.log_likelihood["flow"].shape
        (15099, (1, 1, 99))
        """
        import pandas as pd
        from arviz_base import from_dict

        from ..numeric.assemble import at_time, system_arrays
        from ..numeric.residual_stats import residual_dataset

        filt = self.filter()
        y = np.asarray(filt.y if hasattr(filt, "y") else self.data, dtype=np.float64)
        y = y.reshape(y.shape[0], -1)
        n, p = y.shape
        if posterior is None:
            if isinstance(self.params, dict):
                posterior = dict(self.params)
            else:
                names = getattr(self, "param_names", ()) or [f"psi[{i}]" for i in range(len(self.params))]
                posterior = dict(zip(names, np.asarray(self.params, float), strict=True))
                posterior.update({k[4:]: float(np.exp(v)) for k, v in list(posterior.items())
                                  if k.startswith("log ")})
        index = getattr(self.data, "index", None)
        tvals = np.asarray(index) if index is not None else np.arange(n)
        nd = filt.n_diffuse
        k = min(nd, n - 1)
        ll = np.concatenate([[filt.llf_t[: k + 1].sum()], filt.llf_t[k + 1:]])
        sys = system_arrays(self.model)
        yhat = np.full((1, 1, n, p), np.nan)
        F = np.full((1, 1, n, p, p), np.nan)
        for t in range(nd, n):
            Z, d, H = at_time(sys.Z, t), at_time(sys.d, t), at_time(sys.H, t)
            yhat[0, 0, t] = Z @ filt.a_pred[t] + d
            F[0, 0, t] = Z @ filt.P_pred[t] @ Z.T + H
        cols = getattr(self.data, "columns", None)
        series = None if p == 1 else ("series", [str(c) for c in cols] if cols is not None
                                      else np.arange(p))
        obs = y[:, 0] if p == 1 else y
        obs_dims = ["time"] if p == 1 else ["time", "series"]
        tree = from_dict(
            {"posterior": {k_: np.reshape(np.asarray(v, float), (1, 1) + np.shape(v))
                           for k_, v in posterior.items()},
             "observed_data": {name: obs},
             "log_likelihood": {name: ll[None, None]}},
            dims={name: obs_dims},
            coords={"time": pd.Index(tvals), **({"series": series[1]} if series else {})},
        )
        lld = tree["log_likelihood"].to_dataset()
        tree["log_likelihood"] = lld.assign_coords(time=tvals[k:]) if "time" in lld.dims else \
            lld.rename({d_: "time" for d_ in lld[name].dims[2:3]}).assign_coords(time=tvals[k:])
        tree["residuals"] = residual_dataset(y, yhat, F, time=("time", tvals), series=series,
                                             lags=lags)
        return tree

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
