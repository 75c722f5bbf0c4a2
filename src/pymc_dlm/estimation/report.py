"""What the estimators' results share: information criteria, the summary's first lines, and
the fitted model's filter, smoother, forecasts and plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..numeric import forecast, kalman_filter, kalman_smoother, simulate
from ..numeric.components import component_contributions
from ..numeric.calendar import index_of
from ..numeric.filter import prepare_y
from ..numeric.forecast import series_names
from ..numeric.results import FilterResult, ForecastResult, SmootherResult
from ..spec.validate import check_option

__all__ = ["FitStatistics", "PLOT_KINDS"]

PLOT_KINDS = ("diagnostics", "filtered", "smoothed", "forecast", "components", "auxiliary")


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

    def forecast(self, steps: int, alpha: float = 0.05, *, exog: Any = None,
                 future: dict | None = None) -> Any:
        r"""Forecasts ``steps`` periods ahead as a pandas DataFrame continuing y's index.

        Columns ``mean``, ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper`` (the
        :math:`(1-\alpha)` prediction interval), as statsmodels' ``summary_frame``; a
        MultiIndex (series, statistic) with several series.  The arrays (state forecasts and
        full covariances) are :func:`pymc_dlm.forecast`'s.

        ``exog`` gives the future regressors of a model with a ``Regression`` term (a
        ``(steps, k)`` array or a DataFrame whose rows are matched to the forecast dates);
        a dict ``{scenario: exog}`` gives one forecast per scenario, stacked with an outer
        index level ``scenario``.  ``future`` gives future values of other time-varying
        matrices (:func:`~pymc_dlm.numeric.forecast.extend_model`).

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
        >>> fc = res.forecast(3)
        >>> fc.index.tolist(), round(float(fc["mean"].iloc[0]), 1)
        ([1971, 1972, 1973], 798.4)
        """
        fc = forecast(self.model, self.data, steps, exog=exog, future=future)
        if isinstance(fc, dict):
            import pandas as pd

            return pd.concat({k: v.summary_frame(alpha) for k, v in fc.items()},
                             names=["scenario"])
        return fc.summary_frame(alpha)

    def get_prediction(self, start: Any = None, end: Any = None, dynamic: Any = False, *,
                       exog: Any = None) -> ForecastResult:
        r"""In-sample (and out-of-sample) predictions of y with their variances.

        One-step-ahead: :math:`E(y_t | y_{1:t-1}) = Z_t a_t + d_t` with variance :math:`F_t`
        (Durbin and Koopman 2012, eq. 4.13).  Dynamic from period :math:`t_d`: every
        prediction at :math:`t \ge t_d` uses the data up to :math:`t_d - 1` only (the filter
        run with :math:`y_{t_d..}` missing, section 4.11).  Past the data they are forecasts.
        As statsmodels' ``get_prediction``.

        Parameters
        ----------
        start, end : int or index label, optional
            First and last period (inclusive); integers are positions (0 = the first
            period), other values labels of y's index.  Default: the whole sample.  ``end``
            may lie beyond the data.
        dynamic : bool, int or label
            False: one step ahead throughout; True: dynamic from ``start``; an int: dynamic
            from ``start + dynamic`` (statsmodels' offset); a label: from that period.
        exog : optional
            Future regressors when ``end`` lies beyond the data (as in :meth:`forecast`).

        Returns
        -------
        ForecastResult
            ``y_mean`` (h, p), ``y_cov`` (h, p, p) over the periods, ``a``/``P`` the predicted
            states; ``summary_frame(alpha)`` for intervals.

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.fit("level", dlm.datasets.load_nile())
        >>> pr = res.get_prediction(start=1, dynamic=40)
        >>> pr.index[0], round(float(pr.y_mean[-1, 0]), 1)
        (np.int64(1872), 903.8)
        """
        y_arr, index = prepare_y(self.model, self.data, n_time=False)
        n = y_arr.shape[0]
        i0 = 0 if start is None else _position(start, index, "start")
        i1 = n - 1 if end is None else _position(end, index, "end")
        if not 0 <= i0 <= i1:
            raise ValueError(f"start must be >= 0 and <= end; got positions {i0} and {i1}")
        if dynamic is False or dynamic is None:
            td = n
        elif dynamic is True:
            td = i0
        elif isinstance(dynamic, int | np.integer):
            td = i0 + int(dynamic)
        else:
            td = _position(dynamic, index, "dynamic")
        h = max(i1 + 1 - n, 0)
        model = self.model
        fidx = None
        if h:
            from ..numeric.forecast import extend_index, extend_model

            fidx = extend_index(index, h)
            model = extend_model(model, n, h, exog=exog, index=fidx)
        elif exog is not None:
            raise ValueError("exog= is for predictions beyond the data (end past the last period)")
        full = np.vstack([y_arr, np.full((h, model.p), np.nan)])
        full[min(td, n):] = np.nan
        f = kalman_filter(model, full)
        sl = slice(i0, i1 + 1)
        Z = np.asarray(model.Z, dtype=np.float64)
        dd = np.asarray(model.d, dtype=np.float64)
        Zs = Z[sl] if Z.ndim == 3 else Z[None]
        ds = dd[sl] if dd.ndim == 2 else dd[None]
        out_index = None
        if index is not None:
            import pandas as pd

            whole = index if fidx is None else index.append(pd.Index(fidx))
            out_index = whole[sl]
        return ForecastResult(
            y_mean=np.einsum("tpm,tm->tp", np.broadcast_to(Zs, (i1 + 1 - i0,) + Z.shape[-2:]),
                             f.a_pred[sl]) + ds,
            y_cov=f.F[sl], a=f.a_pred[sl], P=f.P_pred[sl], index=out_index,
            series_names=series_names(self.data, self.model.p))

    @property
    def fittedvalues(self) -> Any:
        r"""One-step-ahead predictions :math:`Z_t a_t + d_t` at every period (pandas, y's index)."""
        return self._frame(self.get_prediction().y_mean)

    @property
    def resid(self) -> Any:
        r"""One-step prediction errors :math:`v_t = y_t - Z_t a_t - d_t` (NaN where y is
        missing), as statsmodels' ``resid``."""
        return self._frame(self.filter().v)

    def _frame(self, values: np.ndarray) -> Any:
        import pandas as pd

        f_index = prepare_y(self.model, self.data, n_time=False)[1]
        index = f_index if f_index is not None else pd.RangeIndex(values.shape[0])
        names = series_names(self.data, self.model.p)
        if self.model.p == 1:
            return pd.Series(values[:, 0], index=index, name=names[0])
        return pd.DataFrame(values, index=index, columns=list(names))

    def append(self, new_y: Any, *, exog: Any = None) -> Any:
        """The result with ``new_y`` appended to the data, at the same parameters.

        The filter continues from the last state through the new periods (the numbers equal
        a filter over the whole, longer series); the log-likelihood and ``nobs`` are
        recomputed, the parameters and their standard errors kept (statsmodels'
        ``append(refit=False)``).  ``exog``: the regressors at the new periods.
        """
        data = _concat(self.data, new_y)
        n_old = len(self.data)
        model = _continued(self.model, n_old, len(data) - n_old, exog)
        return self._with_data(model, data)

    def extend(self, new_y: Any, *, exog: Any = None) -> Any:
        r"""A result for ``new_y`` alone, the periods right after the data, at the same
        parameters: the filter starts from the prediction of the state after the data,
        :math:`\alpha_{n+1} | y_{1:n} \sim N(a_{n+1}, P_{n+1})` (statsmodels' ``extend``)."""
        n_old, k = len(self.data), len(new_y)
        ext = _continued(self.model, n_old, k, exog)
        f = kalman_filter(self.model, self.data)
        if f.n_diffuse > n_old:
            raise ValueError("the diffuse initialisation has not ended within the data; extend "
                             "needs a proper state distribution after it (use append)")
        model = _tail(ext, n_old).replace(a1=f.a_pred[-1], P1=f.P_pred[-1],
                                          diffuse=(False,) * ext.m, stationary=(False,) * ext.m)
        data = new_y
        if index_of(self.data) is not None and index_of(new_y) is None:
            data = _concat(self.data, new_y).iloc[n_old:]
        return self._with_data(model, data)

    def apply(self, other_y: Any, *, exog: Any = None) -> Any:
        """The fitted parameters applied to other data ``other_y`` (statsmodels' ``apply``):
        a result with the same model and parameters; ``exog``: the regressors of the other
        data (a model with a ``Regression``)."""
        model = self.model
        if model.n_time is not None:
            from ..numeric.forecast import with_exog

            model = with_exog(model, exog, len(other_y), index_of(other_y))
        elif exog is not None:
            raise ValueError("exog= was given but the model has no regressors")
        return self._with_data(model, other_y)

    def _with_data(self, model: Any, data: Any) -> Any:
        import dataclasses

        from ..numeric.calendar import regularize

        data = regularize(data)
        arr, _ = prepare_y(model, data)
        changes = {"model": model, "data": data, "log_likelihood": kalman_filter(model, data).llf,
                   "nobs": int(np.count_nonzero(~np.isnan(arr)))}
        fields = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if k in fields})

    def auxiliary_residuals(self) -> Any:
        r"""Standardized smoothed disturbances as a DataFrame indexed like y (D&K 2012,
        sections 2.12 and 7.5; KFAS ``rstandard(type="pearson"/"state")``).

        Columns ``obs`` (``obs[<series>]`` when y is multivariate), the observation
        auxiliary residuals :math:`e^*_t` (outliers), and ``eta[<state>]`` per state
        disturbance, :math:`r^*_t` (breaks: a level break between t and t + 1 shows at t).
        See :func:`~pymc_dlm.numeric.auxiliary.auxiliary_residuals`.
        """
        import pandas as pd

        from ..numeric.auxiliary import auxiliary_residuals

        sm = self.smooth()
        e, r = auxiliary_residuals(sm, self.model)
        names = series_names(self.data, self.model.p)
        cols = {("obs" if self.model.p == 1 else f"obs[{s}]"): e[:, i]
                for i, s in enumerate(names)}
        R = np.asarray(self.model.R)
        R0 = R[0] if R.ndim == 3 else R
        for j in range(r.shape[1]):
            hit = np.flatnonzero(R0[:, j] != 0)
            label = self.model.state_names[hit[0]] if len(hit) == 1 else str(j)
            cols[f"eta[{label}]"] = r[:, j]
        index = sm.index if sm.index is not None else pd.RangeIndex(sm.filter.n)
        return pd.DataFrame(cols, index=index)

    def outliers(self, threshold: float = 2.5) -> Any:
        """Periods whose auxiliary residual exceeds ``threshold`` in absolute value: candidate
        outliers (``obs``) and structural breaks (``eta[...]``), largest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``period``, ``residual`` (the column of :meth:`auxiliary_residuals`),
            ``value``; ``print(res.outliers().to_string())`` is the report.

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.fit("level", dlm.datasets.load_nile())
        >>> res.outliers().iloc[0][["period", "residual"]].tolist()
        [np.int64(1898), 'eta[level]']
        """
        import pandas as pd

        aux = self.auxiliary_residuals()
        long = aux.stack().rename("value").reset_index()
        long.columns = ["period", "residual", "value"]
        hits = long[long["value"].abs() > threshold]
        return hits.reindex(hits["value"].abs().sort_values(ascending=False).index).reset_index(
            drop=True) if len(hits) else pd.DataFrame(columns=["period", "residual", "value"])

    def coefficients(self) -> Any:
        r"""The regression coefficients (``Regression`` states) with standard errors.

        A static coefficient is a diffuse state with no disturbance, so its smoothed value at
        any t is the GLS estimate given all the data and its smoothed variance the GLS
        variance: :math:`\hat\beta = \hat\alpha_n`, :math:`Var(\hat\beta) = V_n` (Durbin
        and Koopman 2012, section 6.2.2), as statsmodels reports with
        ``mle_regression=False``.  A time-varying coefficient is given at the last period.

        Returns
        -------
        pandas.DataFrame
            Index ``beta.<regressor>``; columns ``coef``, ``std err``, ``z``, ``P>|z|`` and
            ``static``.  Empty without regressors.

        Examples
        --------
        >>> import pymc_dlm as dlm, numpy as np
        >>> df = dlm.datasets.load_uk_drivers()
        >>> res = dlm.fit("level(fixed) + seasonal(12, fixed) + reg(log_petrol_price, "
        ...               "seatbelt_law)", np.log(df["drivers_ksi"]), data=df)
        >>> res.coefficients()["coef"].round(5).tolist()
        [-0.45213, -0.19714]
        """
        import pandas as pd
        from scipy import stats

        states = [(name, i) for comp in self.model.components if comp.exog
                  for name, i in zip(comp.exog, comp.states, strict=True)]
        cols = ["coef", "std err", "z", "P>|z|", "static"]
        if not states:
            return pd.DataFrame(columns=cols)
        sm = self.smooth()
        idx = [i for _, i in states]
        coef = sm.a_smooth[-1, idx]
        se = np.sqrt(np.diagonal(sm.V[-1])[idx])
        z = coef / se
        Q = np.asarray(self.model.Q)
        R = np.asarray(self.model.R)
        RQR = np.einsum("...ij,...jk,...lk->...il", R, Q, R)
        static = [bool(np.all(RQR[..., i, i] == 0.0)) for i in idx]
        return pd.DataFrame({"coef": coef, "std err": se, "z": z,
                             "P>|z|": 2.0 * stats.norm.sf(np.abs(z)), "static": static},
                            index=[f"beta.{name}" for name, _ in states])

    def _coefficient_lines(self) -> list[str]:
        """Summary lines for :meth:`coefficients` (none without regressors)."""
        table = self.coefficients()
        if table.empty:
            return []
        lines = [f"{'coefficient':<24}{'estimate':>12}{'std err':>12}{'z':>9}{'P>|z|':>9}"]
        for name, row in table.iterrows():
            tag = "" if row["static"] else "  (at the last period)"
            lines.append(f"{name:<24}{row['coef']:>12.5f}{row['std err']:>12.5f}"
                         f"{row['z']:>9.3f}{row['P>|z|']:>9.3f}{tag}")
        lines.append("coefficients: smoothed states at the last period and their variances "
                     "(GLS, D&K 6.2.2)")
        return lines

    def components(self, *, signal: bool = False) -> Any:
        r"""Each structural component's smoothed contribution to y as a pandas DataFrame.

        One column per component with states (``(component, series)`` columns when y is
        multivariate), indexed like y; see
        :func:`~pymc_dlm.numeric.components.component_contributions` for the variances.
        ``signal=True`` adds the smoothed signal :math:`Z_t\hat\alpha_t + d_t` (the sum of the
        contributions and d) and its variance, columns ``signal`` and ``signal_var``
        (:attr:`~pymc_dlm.SmootherResult.signal`).
        """
        import pandas as pd

        sm = self.smooth()
        parts = component_contributions(sm, self.model)
        if signal:
            parts["signal"] = (sm.signal, np.diagonal(sm.signal_var, axis1=1, axis2=2))
            parts["signal_var"] = (parts["signal"][1], None)
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
                    lags: Any = 10, predictive_draws: int = 0, random_seed: Any = None) -> Any:
        r"""The fit as an ArviZ DataTree: one chain with one draw, like a Bayesian fit's.

        Groups: ``posterior`` (the estimates), ``observed_data`` (y), ``log_likelihood``
        (the pointwise terms :math:`\log p(y_t \mid y_{1:t-1})` at the estimate) and
        ``residuals`` (as :func:`pymc_dlm.add_residuals`: one-step predictions, v_t, F_t,
        standardized residuals, Ljung-Box, Jarque-Bera, H, all n steps).  So
        ``az.plot_forest([mle_tree, nuts_idata])`` and the residual plots of
        :mod:`pymc_dlm.plots.bayes` show MLE, EM and NUTS side by side.

        ``observed_data``, ``log_likelihood`` and ``posterior_predictive`` follow the rule of
        :func:`pymc_dlm.add_residuals` (:mod:`pymc_dlm.numeric.check_groups`): they hold the
        steps after the d diffuse steps where some value is observed, the diffuse steps'
        terms in the first of them, so the pointwise terms sum to ``log_likelihood``
        exactly; with p > 1, one term per observed value (a stacked ``<name>_obs`` dimension
        when a kept step is partly missing).

        With one draw, PSIS has nothing to weight: ``az.loo`` (IndexError inside ArviZ),
        ``az.loo_pit`` and ``plot_loo_pit`` need posterior draws (a Bayesian fit); the
        point estimate's elpd is the sum of the log-likelihood.  ``predictive_draws > 0``
        adds ``posterior_predictive``: draws of the plug-in one-step predictive
        :math:`N(Z_t a_t + d_t, F_t)` at the estimate (chain 0, draws 0..S-1; parameter
        uncertainty left out), which ``az.plot_ppc_dist``, ``plot_ppc_pit``,
        ``plot_ppc_interval`` and ``plot_ppc_tstat`` take.

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
        predictive_draws : int, default 0
            Number S of plug-in one-step predictive draws; 0: no ``posterior_predictive``.
        random_seed : int or numpy Generator, optional
            For those draws.

        Returns
        -------
        xarray.DataTree

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> res = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
        >>> dt = res.to_datatree(name="flow", predictive_draws=200, random_seed=1)
        >>> round(dt.posterior["sigma2.obs"].item()), dt.log_likelihood["flow"].shape
        (15099, (1, 1, 99))
        >>> dt.posterior_predictive["flow"].shape, int(dt.observed_data["flow"].time[0])
        ((1, 200, 99), 1872)
        """
        import pandas as pd
        import xarray as xr
        from arviz_base import from_dict

        from ..numeric.assemble import at_time, system_arrays
        from ..numeric.check_groups import align_check_groups, checked_steps
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
        ll = np.array(filt.llf_t[k:], dtype=np.float64)  # as DLM's: the diffuse steps' terms
        ll[checked_steps(y, nd)[0] - k] += filt.llf_t[:k].sum()  # in the first checked step
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
             "observed_data": {name: obs}},
            dims={name: obs_dims},
            coords={"time": pd.Index(tvals), **({"series": series[1]} if series else {})},
        )
        groups = {"observed_data": tree["observed_data"].to_dataset(),
                  "log_likelihood": xr.Dataset({name: (("chain", "draw", "step"), ll[None, None])},
                                               coords={"chain": [0], "draw": [0]})}
        S = int(predictive_draws)
        if S < 0:
            raise ValueError(f"predictive_draws must be a number of draws >= 0; got {S}")
        if S:
            root = np.full((n, p, p), np.nan)
            root[nd:] = np.linalg.cholesky(F[0, 0, nd:])
            eps = np.random.default_rng(random_seed).standard_normal((S, n, p, 1))
            rep = (yhat[0, 0] + (root @ eps)[..., 0])[None]  # (1, S, n, p)
            dims = ("chain", "draw", "step") if p == 1 else ("chain", "draw", "step", "row")
            groups["posterior_predictive"] = xr.Dataset(
                {name: (dims, rep[..., 0] if p == 1 else rep)},
                coords={"chain": [0], "draw": np.arange(S)})
        groups.update(align_check_groups(groups, name, y, nd, time=("time", tvals),
                                         series=series, yhat=yhat, F=F))
        for group, ds in groups.items():
            tree[group] = ds
        tree["residuals"] = residual_dataset(y, yhat, F, time=("time", tvals), series=series,
                                             lags=lags)
        return tree

    def plot(self, kind: str = "diagnostics", *, steps: int = 10, exog: Any = None,
             **kwargs: Any):
        """Plot the fit: ``kind`` is one of "diagnostics", "filtered", "smoothed", "forecast"
        (``steps`` ahead, future regressors ``exog`` as in :meth:`forecast`), "components" or
        "auxiliary" (:meth:`auxiliary_residuals`);
        keyword arguments go to the function of :mod:`pymc_dlm.plots` that draws it.
        Returns its axes."""
        check_option("kind", kind, PLOT_KINDS)
        from .. import plots  # the plots layer sits above this one; imported on use only

        if kind == "diagnostics":
            return plots.plot_diagnostics(self.filter(), **kwargs)
        if kind == "filtered":
            return plots.plot_filtered(self.filter(), **kwargs)
        if kind == "smoothed":
            return plots.plot_smoothed(self.smooth(), **kwargs)
        if kind == "forecast":
            return plots.plot_forecast(forecast(self.model, self.data, steps, exog=exog),
                                       self.data, **kwargs)
        if kind == "auxiliary":
            return plots.plot_auxiliary_residuals(self.auxiliary_residuals(), **kwargs)
        return plots.plot_components(self.smooth(), self.model, **kwargs)


def _position(key: Any, index: Any, what: str) -> int:
    """An int is a position; anything else a label of ``index``."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return int(key)
    if index is None:
        raise ValueError(f"{what}={key!r}: y has no index, give a position (int)")
    try:
        loc = index.get_loc(key)
    except KeyError:
        raise ValueError(f"{what}={key!r} is not a period of y's index "
                         f"({index[0]} .. {index[-1]})") from None
    if not isinstance(loc, int | np.integer):
        raise ValueError(f"{what}={key!r} matches several periods of y's index")
    return int(loc)


def _concat(data: Any, new: Any) -> Any:
    """``data`` followed by ``new``; an array ``new`` continues a pandas ``data``'s index."""
    import pandas as pd

    from ..numeric.calendar import extend_index

    if index_of(data) is None:
        return np.concatenate([np.asarray(data, float).reshape(len(data), -1),
                               np.asarray(new, float).reshape(len(new), -1)]).squeeze(
            axis=1 if np.ndim(data) == 1 else ())
    if index_of(new) is None:
        idx = extend_index(data.index, len(new))
        if idx is None:
            raise ValueError("cannot continue y's index for the new data; give new_y a pandas "
                             "index")
        new = (pd.Series(np.asarray(new, float), index=idx, name=data.name)
               if isinstance(data, pd.Series)
               else pd.DataFrame(np.asarray(new, float), index=idx, columns=data.columns))
    return pd.concat([data, new])


def _continued(model: Any, n: int, k: int, exog: Any) -> Any:
    """The model over n + k periods (regressors for the k new ones from ``exog``)."""
    if model.n_time is None:
        if exog is not None:
            raise ValueError("exog= was given but the model has no regressors")
        return model
    from ..numeric.forecast import extend_model

    return extend_model(model, n, k, exog=exog)


def _tail(model: Any, n: int) -> Any:
    return _slice(model, slice(n, None))


def _slice(model: Any, sl: slice) -> Any:
    if model.n_time is None:
        return model
    names = ("Z", "d", "H", "T", "c", "R", "Q")
    return model.replace(**{k: np.asarray(getattr(model, k))[sl] for k in names
                            if model.time_varying(k)})
