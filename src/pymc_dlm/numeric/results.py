"""Result records of the NumPy engine: frozen dataclasses holding bare arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FilterResult", "ForecastResult", "SmootherResult"]


@dataclass(frozen=True, eq=False)
class FilterResult:
    r"""Output of :func:`pymc_dlm.kalman_filter` (D&K 2012 notation, time index t = 1..n).

    Attributes
    ----------
    a_pred : (n + 1, m) ndarray
        Predicted states :math:`a_t = E(\alpha_t | y_{1:t-1})`; the last row is :math:`a_{n+1}`.
    P_pred : (n + 1, m, m) ndarray
        Their covariances :math:`P_t` (the :math:`P_{*,t}` part in diffuse periods).
    a_filt, P_filt : (n, m), (n, m, m) ndarray
        Filtered states :math:`a_{t|t}` and covariances :math:`P_{t|t}`.
    v : (n, p) ndarray
        One-step prediction errors :math:`v_t = y_t - Z_t a_t - d_t` (NaN where y is missing).
    F : (n, p, p) ndarray
        Their covariances :math:`F_t = Z_t P_t Z_t' + H_t` (every row, observed or not).
    K : (n, m, p) ndarray
        Kalman gains :math:`K_t = T_t P_t Z_t' F_t^{-1}` (D&K eq. 4.22; zero columns for missing
        rows; NaN in diffuse periods, where the gain has two parts).
    llf_t : (n,) ndarray
        Log-likelihood contribution of each time step.
    llf : float
        Total log-likelihood, ``llf_t.sum()`` (D&K eq. 7.4, in the ``convention`` below).
    rank : (n,) ndarray of int
        Number of informative observations at each step (the rank of the observed block of
        :math:`F_t`; below the number observed when :math:`F_t` was singular).
    nobs : int
        Number of observed (non-NaN) entries of y.
    n_diffuse : int
        Number of diffuse time steps d (:math:`P_{\infty,t} = 0` for t > d).
    Pinf_pred : (n_diffuse, m, m) ndarray
        Diffuse part :math:`P_{\infty,t}` of the predicted covariance in the diffuse steps.
    index : pandas.Index or None
        Index of y when y was a pandas object.
    state_names : tuple of str
    n_diffuse_obs : int
        Number of diffuse observation elements: observed rows of the diffuse steps with
        :math:`F_{\infty,i} > 0` (each adds :math:`-\tfrac12 \log 2\pi` to the
        statsmodels-convention likelihood and nothing to KFAS's).
    convention : {"statsmodels", "kfas"}
        The log-likelihood convention of ``llf_t`` and ``llf``
        (:mod:`pymc_dlm.numeric.filter`).
    """

    a_pred: np.ndarray
    P_pred: np.ndarray
    a_filt: np.ndarray
    P_filt: np.ndarray
    v: np.ndarray
    F: np.ndarray
    K: np.ndarray
    llf_t: np.ndarray
    llf: float
    rank: np.ndarray
    nobs: int
    n_diffuse: int
    Pinf_pred: np.ndarray
    index: Any
    state_names: tuple
    y: np.ndarray
    Finv: np.ndarray  # (n, p, p) generalised inverse of the observed block of F (smoother input)
    n_diffuse_obs: int = 0
    convention: str = "statsmodels"

    @property
    def n(self) -> int:
        """Number of time steps."""
        return self.v.shape[0]


@dataclass(frozen=True, eq=False)
class SmootherResult:
    r"""Output of :func:`pymc_dlm.kalman_smoother` (D&K 2012, chapter 4 and section 5.3).

    Attributes
    ----------
    a_smooth : (n, m) ndarray
        Smoothed states :math:`\hat\alpha_t = E(\alpha_t | y_{1:n})`.
    V : (n, m, m) ndarray
        Smoothed state covariances :math:`V_t = Var(\alpha_t | y_{1:n})`.
    eps_hat, eps_var : (n, p), (n, p, p) ndarray
        Smoothed observation disturbances and their covariances.
    eta_hat, eta_var : (n, r), (n, r, r) ndarray
        Smoothed state disturbances :math:`\hat\eta_t = Q_t R_t' r_t` and covariances.
    r, N : (n, m), (n, m, m) ndarray
        Smoothing cumulants :math:`r_{t-1}, N_{t-1}` of D&K eq. 4.44 (the :math:`r^{(0)}`,
        :math:`N^{(0)}` parts in diffuse steps).
    filter : FilterResult
        The filter output the smoother ran on.
    signal, signal_var : (n, p), (n, p, p) ndarray
        Smoothed signal :math:`\hat\theta_t = Z_t\hat\alpha_t + d_t` and its covariance
        :math:`Z_t V_t Z_t'` (D&K 2012, section 4.5.3; computed on access).
    Zd : tuple of ndarray
        The system arrays ``Z`` (nt, p, m) and ``d`` (nt, p) the smoother ran with.
    """

    a_smooth: np.ndarray
    V: np.ndarray
    eps_hat: np.ndarray
    eps_var: np.ndarray
    eta_hat: np.ndarray
    eta_var: np.ndarray
    r: np.ndarray
    N: np.ndarray
    filter: FilterResult
    Zd: tuple = ()

    @property
    def signal(self) -> np.ndarray:
        r"""(n, p) smoothed signal :math:`Z_t \hat\alpha_t + d_t`."""
        Z, d = self._Zd()
        return np.einsum("tpm,tm->tp", Z, self.a_smooth) + d

    @property
    def signal_var(self) -> np.ndarray:
        r"""(n, p, p) covariance :math:`Z_t V_t Z_t'` of the smoothed signal."""
        Z, _ = self._Zd()
        return np.einsum("tpi,tij,tqj->tpq", Z, self.V, Z)

    def _Zd(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.Zd:
            raise ValueError("this smoother result holds no Z and d (built by hand)")
        n = self.a_smooth.shape[0]
        Z, d = self.Zd
        return (np.broadcast_to(Z, (n,) + Z.shape[1:]) if Z.shape[0] == 1 else Z[:n],
                np.broadcast_to(d, (n,) + d.shape[1:]) if d.shape[0] == 1 else d[:n])

    @property
    def index(self) -> Any:
        """Index of y when y was a pandas object."""
        return self.filter.index

    @property
    def state_names(self) -> tuple:
        """State names."""
        return self.filter.state_names


@dataclass(frozen=True, eq=False)
class ForecastResult:
    r"""Output of :func:`pymc_dlm.forecast`.

    Attributes
    ----------
    y_mean : (h, p) ndarray
        :math:`E(y_{n+j} | y_{1:n})`, j = 1..h.
    y_cov : (h, p, p) ndarray
        :math:`Var(y_{n+j} | y_{1:n}) = Z P_{n+j} Z' + H`.
    a : (h, m) ndarray
        Predicted states :math:`a_{n+j}`.
    P : (h, m, m) ndarray
        Their covariances.
    index : pandas.Index or None
        Continuation of y's index when it could be extended.
    series_names : tuple of str
        Names of the observed series (y's name or columns; ``y``, ``y[1]``... otherwise).
    """

    y_mean: np.ndarray
    y_cov: np.ndarray
    a: np.ndarray
    P: np.ndarray
    index: Any
    series_names: tuple = ()

    def summary_frame(self, alpha: float = 0.05) -> Any:
        r"""The forecasts as a pandas DataFrame, statsmodels' ``summary_frame`` columns.

        ``mean``, ``mean_se`` and the :math:`(1-\alpha)` interval ``mean_ci_lower``,
        ``mean_ci_upper`` = mean :math:`\mp z_{1-\alpha/2}` se, indexed by the continuation
        of y's index (1, 2, ... steps ahead when it has none).  With several series the
        columns are a MultiIndex (series, statistic).

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> fc = dlm.forecast(dlm.LocalLevel(38.3, 122.9), dlm.datasets.load_nile(), 2)
        >>> list(fc.summary_frame().columns)
        ['mean', 'mean_se', 'mean_ci_lower', 'mean_ci_upper']
        """
        import pandas as pd
        from scipy import stats

        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
        h, p = self.y_mean.shape
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        se = self.y_std
        index = self.index if self.index is not None else pd.RangeIndex(1, h + 1, name="step")
        names = self.series_names or (("y",) if p == 1 else tuple(f"y[{i}]" for i in range(p)))
        blocks = {}
        for j, name in enumerate(names):
            m, s = self.y_mean[:, j], se[:, j]
            blocks[name] = pd.DataFrame({"mean": m, "mean_se": s, "mean_ci_lower": m - z * s,
                                         "mean_ci_upper": m + z * s}, index=index)
        if p == 1:
            return blocks[names[0]]
        return pd.concat(blocks, axis=1, names=["series", "statistic"])

    @property
    def y_std(self) -> np.ndarray:
        """(h, p) standard errors of the forecasts."""
        return np.sqrt(np.diagonal(self.y_cov, axis1=1, axis2=2))
