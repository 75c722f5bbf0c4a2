r"""Tests on standardised residuals: autocorrelation, Ljung-Box, Jarque-Bera, H(h).

Conventions follow statsmodels (so the numbers can be compared): the autocorrelation is
:math:`r_k = \sum_{t} (e_t - \bar e)(e_{t+k} - \bar e) / \sum_t (e_t - \bar e)^2`; NaN
entries (missing values, diffuse steps) are dropped first.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import special  # the distribution functions; scipy.stats costs ~1 s to import

__all__ = ["JarqueBera", "LjungBox", "acf", "heteroskedasticity", "jarque_bera", "ljung_box"]


def _series(resid: Any) -> np.ndarray:
    x = np.asarray(resid, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"resid must be one series, shape (n,) or (n, 1); got {x.shape} "
                         "(pass one column of a multivariate residual at a time)")
    if np.isinf(x).any():
        raise ValueError("resid contains inf")
    x = x[~np.isnan(x)]
    if x.size < 3:
        raise ValueError(f"need at least 3 non-missing residuals; got {x.size}")
    return x


def _max_lag(max_lag: Any, n: int) -> int:
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)):
        raise TypeError(f"max_lag must be an integer; got {type(max_lag).__name__}")
    if not 1 <= max_lag < n:
        raise ValueError(f"max_lag must be between 1 and n - 1 = {n - 1}; got {max_lag}")
    return int(max_lag)


def acf(resid: Any, max_lag: int) -> np.ndarray:
    r"""Sample autocorrelations :math:`r_0 = 1, r_1, \dots, r_{max\_lag}` (NaN dropped).

    Parameters
    ----------
    resid : (n,) array_like
        One residual series; NaN entries are dropped.
    max_lag : int

    Returns
    -------
    (max_lag + 1,) ndarray

    Examples
    --------
    >>> acf([1.0, -1.0, 1.0, -1.0], 1).round(3)
    array([ 1.  , -0.75])
    """
    x = _series(resid)
    k = _max_lag(max_lag, x.size)
    d = x - x.mean()
    den = d @ d
    return np.array([1.0] + [d[: x.size - j] @ d[j:] / den for j in range(1, k + 1)])


class LjungBox(NamedTuple):
    """Result of :func:`ljung_box`: the test at ``max_lag`` and the per-lag table.

    ``statistic``, ``p_value`` and ``df`` are those of Q(max_lag) (as dynaris' ``ljung_box``
    returns); ``table`` holds every lag 1..max_lag.  Indexing (``lb["p_value"]``, ``lb.loc``,
    ``lb.iloc``, ``lb.columns``) goes to the table, as when this function returned it.
    """

    statistic: float
    p_value: float
    df: int
    max_lag: int
    table: pd.DataFrame

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer, slice)):
            return tuple.__getitem__(self, key)
        return self.table[key]

    @property
    def loc(self) -> Any:
        return self.table.loc

    @property
    def iloc(self) -> Any:
        return self.table.iloc

    @property
    def columns(self) -> Any:
        return self.table.columns


def ljung_box(resid: Any, max_lag: int, *, model_df: int = 0) -> LjungBox:
    r"""Ljung-Box portmanteau test for lags 1..max_lag (Ljung and Box 1978).

    .. math:: Q(k) = n (n + 2) \sum_{j=1}^{k} \frac{r_j^2}{n - j}, \qquad
              Q(k) \sim \chi^2_{k - model\_df}

    Parameters
    ----------
    resid : (n,) array_like
        NaN entries are dropped.
    max_lag : int
    model_df : int, default 0
        Number of estimated parameters subtracted from the degrees of freedom (D&K use the
        number of variances for a structural model); lags with df <= 0 get NaN p-values.

    Returns
    -------
    LjungBox
        ``statistic``, ``p_value``, ``df``: the test at ``max_lag``; ``table``: a DataFrame
        indexed by lag 1..max_lag, columns ``statistic``, ``p_value``, ``df`` (the same as
        statsmodels' ``acorr_ljungbox``).

    Examples
    --------
    >>> import numpy as np
    >>> lb = ljung_box(np.random.default_rng(0).normal(size=200), 10)
    >>> list(lb.table.columns), bool(lb.p_value > 0.05), lb.df
    (['statistic', 'p_value', 'df'], True, 10)
    """
    x = _series(resid)
    k = _max_lag(max_lag, x.size)
    if isinstance(model_df, bool) or not isinstance(model_df, (int, np.integer)) or model_df < 0:
        raise ValueError(f"model_df must be a non-negative integer; got {model_df!r}")
    n = x.size
    r = acf(x, k)[1:]
    lags = np.arange(1, k + 1)
    q = n * (n + 2) * np.cumsum(r**2 / (n - lags))
    df = lags - model_df
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, special.chdtrc(np.maximum(df, 1), q), np.nan)
    table = pd.DataFrame({"statistic": q, "p_value": p, "df": df}, index=pd.Index(lags, name="lag"))
    return LjungBox(float(q[-1]), float(p[-1]), int(df[-1]), k, table)


class JarqueBera(NamedTuple):
    """Result of :func:`jarque_bera`."""

    statistic: float
    p_value: float
    skew: float
    kurtosis: float


def jarque_bera(resid: Any) -> JarqueBera:
    r"""Jarque-Bera normality test: :math:`JB = \frac{n}{6}\left(S^2 + \frac{(K - 3)^2}{4}\right)
    \sim \chi^2_2` with the sample skewness S and kurtosis K (D&K 2012, section 2.12).

    Examples
    --------
    >>> import numpy as np
    >>> jb = jarque_bera(np.random.default_rng(0).exponential(size=500))   # skewed
    >>> round(jb.skew, 2), bool(jb.p_value < 1e-10)
    (2.09, True)
    """
    x = _series(resid)
    d = x - x.mean()
    m2 = np.mean(d**2)
    skew = float(np.mean(d**3) / m2**1.5)
    kurt = float(np.mean(d**4) / m2**2)
    jb = x.size / 6.0 * (skew**2 + (kurt - 3.0) ** 2 / 4.0)
    return JarqueBera(float(jb), float(special.chdtrc(2, jb)), skew, kurt)


class Heteroskedasticity(NamedTuple):
    """Result of :func:`heteroskedasticity`."""

    statistic: float
    p_value: float
    h: int


def heteroskedasticity(resid: Any, h: int | None = None, *, alternative: str = "two-sided") -> Heteroskedasticity:
    r"""Durbin and Koopman's test for heteroskedasticity (D&K 2012, section 2.12):

    .. math:: H(h) = \sum_{t=n-h+1}^{n} e_t^2 \Big/ \sum_{t=1}^{h} e_t^2 \sim F(h, h)

    on the residuals with NaN dropped (so t counts the non-missing ones, as in statsmodels'
    ``test_heteroskedasticity(method="breakvar")``).

    Parameters
    ----------
    resid : (n,) array_like
    h : int, optional
        Block size; default the nearest integer to n / 3.
    alternative : {"two-sided", "increasing", "decreasing"}

    Examples
    --------
    >>> import numpy as np
    >>> e = np.random.default_rng(1).normal(size=300)
    >>> e[200:] *= 3                       # variance grows: H(h) about 9
    >>> res = heteroskedasticity(e, alternative="increasing")
    >>> res.h, bool(res.p_value < 1e-6)
    (100, True)
    """
    x = _series(resid)
    n = x.size
    h = int(np.round(n / 3)) if h is None else _max_lag(h, n)
    if 2 * h > n:
        raise ValueError(f"h must be at most n / 2 = {n // 2}; got {h}")
    stat = float(np.sum(x[n - h:] ** 2) / np.sum(x[:h] ** 2))
    up, down = float(special.fdtrc(h, h, stat)), float(special.fdtr(h, h, stat))
    if alternative == "two-sided":
        p = 2.0 * min(up, down)
    elif alternative == "increasing":
        p = up
    elif alternative == "decreasing":
        p = down
    else:
        raise ValueError(f"alternative must be 'two-sided', 'increasing' or 'decreasing'; got {alternative!r}")
    return Heteroskedasticity(stat, float(min(p, 1.0)), h)
