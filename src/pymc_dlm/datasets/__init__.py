"""Bundled public data sets, read through :mod:`importlib.resources`."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_airline_passengers", "load_nile", "load_uk_drivers", "load_us_macro"]


def _read(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath("data", name).open("r") as fh:
        return pd.read_csv(fh)


def load_nile() -> pd.Series:
    """Annual flow volume of the Nile at Aswan, 1871-1970, in 10^8 m^3.

    Durbin and Koopman (2012), chapter 2; R ``datasets::Nile`` (Cobb 1978).

    Returns
    -------
    pandas.Series
        100 values named ``"volume"`` with an integer index of years named ``"year"``.

    Examples
    --------
    >>> from pymc_dlm.datasets import load_nile
    >>> y = load_nile()
    >>> len(y), int(y.index[0]), float(y.iloc[0])
    (100, 1871, 1120.0)
    """
    df = _read("nile.csv")
    return pd.Series(df["volume"].to_numpy(float), index=pd.Index(df["year"], name="year"),
                     name="volume")


def load_airline_passengers() -> pd.Series:
    """Monthly international airline passengers (thousands), 1949-01 to 1960-12.

    Box and Jenkins (1976), series G; R ``datasets::AirPassengers``.

    Returns
    -------
    pandas.Series
        144 values with a monthly :class:`pandas.DatetimeIndex` (month starts, ``freq="MS"``).

    Examples
    --------
    >>> from pymc_dlm.datasets import load_airline_passengers
    >>> load_airline_passengers().index.freqstr
    'MS'
    """
    df = _read("airline_passengers.csv")
    idx = pd.DatetimeIndex(pd.to_datetime(df["month"]), freq="MS", name="month")
    return pd.Series(df["passengers"].to_numpy(float), index=idx, name="passengers")


def load_uk_drivers() -> pd.DataFrame:
    """UK car drivers killed or seriously injured per month, 1969-01 to 1984-12.

    Columns ``drivers_ksi``, ``log_petrol_price`` and ``seatbelt_law`` (1 from 1983-02).
    Harvey and Durbin (1986); Commandeur and Koopman (2007); R ``datasets::Seatbelts``.

    Returns
    -------
    pandas.DataFrame
        192 rows with a monthly :class:`pandas.DatetimeIndex` (``freq="MS"``).

    Examples
    --------
    >>> from pymc_dlm.datasets import load_uk_drivers
    >>> load_uk_drivers().shape
    (192, 3)
    """
    df = _read("uk_drivers_ksi.csv")
    idx = pd.DatetimeIndex(pd.to_datetime(df.pop("month")), freq="MS", name="month")
    return df.set_index(idx).astype(float)


def load_us_macro() -> pd.DataFrame:
    """US quarterly macroeconomic series, 1959Q1-2009Q3: a multivariate data set.

    Columns ``realgdp``, ``realcons``, ``realinv`` (real GDP, personal consumption and gross
    private domestic investment, billions of chained 2005 dollars, seasonally adjusted annual
    rates) and ``unemp`` (unemployment rate, %).  Source: FRED, Federal Reserve Bank of St.
    Louis, and the Bureau of Labor Statistics (public domain), as compiled for statsmodels'
    ``macrodata`` data set.

    Returns
    -------
    pandas.DataFrame
        203 rows with a quarterly :class:`pandas.DatetimeIndex` (quarter starts, ``freq="QS-JAN"``).

    Examples
    --------
    >>> from pymc_dlm.datasets import load_us_macro
    >>> df = load_us_macro()
    >>> df.shape, str(df.index[0].date())
    ((203, 4), '1959-01-01')
    """
    df = _read("us_macro.csv")
    idx = pd.DatetimeIndex(pd.to_datetime(df.pop("quarter")), freq="QS-JAN", name="quarter")
    return df.set_index(idx).astype(float)
