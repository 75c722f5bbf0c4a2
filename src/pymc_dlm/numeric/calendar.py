r"""Time indexes: one regular grid for the data, its continuation for forecasts.

A state-space model steps from :math:`t` to :math:`t+1` one period at a time, so the data
must sit on a regular grid: a row that is absent from the file is a *missing observation*
(NaN, which the filter skips; Durbin and Koopman 2012, section 4.10), not the next period.
:func:`regularize` is applied wherever data enters (the filter, the forecasts, the fits, the
command line): it checks the index, inserts the absent periods as NaN rows (with a
:class:`GapWarning` saying how many) and returns the data on the full grid.
:func:`extend_index` continues that grid beyond the data for forecasts.

Index kinds: a :class:`pandas.DatetimeIndex` (frequency from ``index.freq``, else
:func:`pandas.infer_freq`, else inferred from stretches of three consecutive dates and
checked against every date), a :class:`pandas.PeriodIndex` (its own frequency), an integer
index (step = the greatest common divisor of the differences) and a ``RangeIndex``; floats with
integer values count as integers.  Anything else (strings, other floats) raises, unless
``freq=`` is given and the labels parse as dates.
"""

from __future__ import annotations

import math
import warnings
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GapWarning", "extend_index", "index_of", "infer_frequency", "regular_index",
           "regularize"]

#: Stretches of three consecutive dates tried when the frequency has to be inferred from gapped
#: dates (spread evenly over the index).
_WINDOWS = 64


def index_of(y: Any) -> pd.Index | None:
    """The pandas index of a Series or DataFrame, else None (a list's ``index`` is a method)."""
    index = getattr(y, "index", None)
    return index if isinstance(index, pd.Index) else None


class GapWarning(UserWarning):
    """Periods absent from y's index were inserted as missing observations (NaN rows)."""


def _infer_freq(index: pd.DatetimeIndex) -> Any:
    with pd.option_context("future.infer_freq_returns_offset", True):
        try:
            return pd.infer_freq(index)
        except (TypeError, ValueError):
            return None


def infer_frequency(index: pd.DatetimeIndex) -> Any:
    """The frequency of a sorted, unique DatetimeIndex, possibly with gaps (None if none fits).

    ``index.freq`` when set; else :func:`pandas.infer_freq` of the whole index; else the
    frequencies inferred from stretches of three consecutive dates, keeping those whose grid
    from the first to the last date holds every date, and of these the coarsest (fewest grid
    points: business days before calendar days, weeks before days).

    Parameters
    ----------
    index : pandas.DatetimeIndex

    Returns
    -------
    pandas.DateOffset or None

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.date_range("2020-01-01", periods=12, freq="MS").delete([3, 4])
    >>> infer_frequency(idx).freqstr
    'MS'
    """
    if index.freq is not None:
        return index.freq
    if len(index) < 3:
        return None
    whole = _infer_freq(index)
    if whole is not None:
        return whole
    starts = np.unique(np.linspace(0, len(index) - 3, min(_WINDOWS, len(index) - 2)).astype(int))
    seen: dict[str, Any] = {}
    for i in starts:
        f = _infer_freq(index[i : i + 3])
        if f is not None:
            seen.setdefault(f.freqstr, f)
    best, size = None, None
    for f in seen.values():
        grid = pd.date_range(index[0], index[-1], freq=f)
        if (size is None or len(grid) < size) and index.isin(grid).all():
            best, size = f, len(grid)
    return best


def _check_order(index: pd.Index, what: str) -> None:
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise ValueError(f"y's index has duplicate {what}, e.g. {_label(dup)}; one row per period "
                         "expected")
    if not index.is_monotonic_increasing:
        i = int(np.flatnonzero(np.asarray(index[1:] < index[:-1]))[0])
        raise ValueError(f"y's index is not sorted: {_label(index[i])} comes before "
                         f"{_label(index[i + 1])}; "
                         "sort the data by time (e.g. y.sort_index())")


def regular_index(index: Any, *, freq: Any = None) -> tuple[Any, np.ndarray | None]:
    """The regular grid spanned by an index, and the positions of its labels on the grid.

    Parameters
    ----------
    index : pandas.Index or None
    freq : str or pandas.DateOffset, optional
        The frequency of a DatetimeIndex whose frequency cannot be inferred (or of string
        labels, which are then parsed as dates).

    Returns
    -------
    grid : pandas.Index or None
        ``index`` itself when it is already regular (or None).
    positions : (len(index),) ndarray of int, or None
        Where each label sits in ``grid``; None when ``grid`` is ``index``.

    Raises
    ------
    ValueError
        Duplicate or unsorted labels; dates with no inferable frequency (and no ``freq``);
        dates off the ``freq`` grid; labels that are neither dates, periods nor integers.

    Examples
    --------
    >>> import pandas as pd
    >>> grid, pos = regular_index(pd.Index([1871, 1872, 1875]))
    >>> grid.tolist(), pos.tolist()
    ([1871, 1872, 1873, 1874, 1875], [0, 1, 4])
    """
    if index is None or isinstance(index, pd.RangeIndex) or len(index) == 0:
        return index, None
    if isinstance(index, pd.MultiIndex):
        raise ValueError("y's index is a MultiIndex; one time index expected")
    if not isinstance(index, pd.DatetimeIndex | pd.PeriodIndex):
        if pd.api.types.is_float_dtype(index) and np.all(np.mod(index.to_numpy(), 1) == 0):
            index = pd.Index(index.to_numpy().astype(np.int64), name=index.name)
        if pd.api.types.is_integer_dtype(index):
            return _integer_grid(index)
        if freq is None or pd.api.types.is_numeric_dtype(index):
            raise ValueError(
                f"y's index must be dates (DatetimeIndex), periods (PeriodIndex) or integers; got "
                f"{index.dtype} labels such as {index[0]!r}: parse them (pd.to_datetime) or "
                "pass freq=..., or give y as an array")
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index), name=index.name)
        except (TypeError, ValueError) as err:
            raise ValueError(f"y's index labels such as {index[0]!r} are not dates: {err}") from err
    if isinstance(index, pd.PeriodIndex):
        _check_order(index, "periods")
        grid = pd.period_range(index[0], index[-1], freq=index.freq, name=index.name)
        return (index, None) if len(grid) == len(index) else (grid, grid.get_indexer(index))
    _check_order(index, "dates")
    f = infer_frequency(index) if freq is None else pd.tseries.frequencies.to_offset(freq)
    if f is None:
        raise ValueError(
            f"cannot infer a frequency from y's dates ({', '.join(_label(x) for x in index[:3])}"
            "...); pass freq=... (e.g. 'MS' month starts, 'D', 'B', 'W-SUN', 'QS')")
    grid = pd.date_range(index[0], index[-1], freq=f, name=index.name)
    pos = grid.get_indexer(index)
    if np.any(pos < 0):
        raise ValueError(f"y's date {index[int(np.flatnonzero(pos < 0)[0])]} is not on the "
                         f"{f.freqstr} grid that starts at {index[0]}; pass the right freq=... "
                         "or convert the index to periods (index.to_period(freq))")
    if len(grid) == len(index):
        return (index, None) if index.freq is not None else (grid, None)
    return grid, pos


def _integer_grid(index: pd.Index) -> tuple[pd.Index, np.ndarray | None]:
    _check_order(index, "labels")
    vals = index.to_numpy().astype(np.int64)
    if len(vals) < 2:
        return index, None
    diffs = np.diff(vals)
    step = reduce(math.gcd, np.unique(diffs).tolist())
    if np.all(diffs == step):
        return index, None
    grid = pd.Index(np.arange(vals[0], vals[-1] + step, step), name=index.name)
    return grid, (vals - vals[0]) // step


def _label(x: Any) -> str:
    if isinstance(x, pd.Timestamp) and x == x.normalize():
        return str(x.date())
    return str(x)


def regularize(y: Any, *, freq: Any = None, warn: bool = True) -> Any:
    """y on the regular grid of its index: absent periods inserted as NaN rows.

    Parameters
    ----------
    y : pandas Series or DataFrame, or array_like
        Arrays (no index) are returned unchanged.
    freq : str or pandas.DateOffset, optional
        As in :func:`regular_index`.
    warn : bool
        Emit a :class:`GapWarning` saying how many rows were inserted.

    Returns
    -------
    Series, DataFrame or the input
        y itself when its index is already regular.

    Raises
    ------
    ValueError
        As :func:`regular_index`.

    Examples
    --------
    >>> import warnings, pandas as pd, pymc_dlm as dlm
    >>> y = dlm.datasets.load_nile().drop([1900, 1901])
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     full = regularize(y)
    >>> len(y), len(full), str(w[0].message)
    (98, 100, "y's index has 1 gap: 2 missing rows (NaN) inserted at 1900, 1901")
    """
    index = index_of(y)
    if index is None:
        return y
    grid, pos = regular_index(index, freq=freq)
    if pos is None:
        if grid is not index:  # parsed strings, or integers from floats
            y = y.copy()
            y.index = grid
        return y
    full = y.reindex(grid) if grid.dtype == index.dtype else y.set_axis(grid[pos]).reindex(grid)
    if warn:
        missing = np.setdiff1d(np.arange(len(grid)), pos)
        gaps = int(np.count_nonzero(np.diff(missing) != 1)) + 1
        shown = ", ".join(_label(g) for g in grid[missing[:3]]) + (", ..." if len(missing) > 3 else "")
        warnings.warn(f"y's index has {gaps} gap{'s' if gaps > 1 else ''}: {len(missing)} missing "
                      f"row{'s' if len(missing) > 1 else ''} (NaN) inserted at {shown}",
                      GapWarning, stacklevel=3)
    return full


def extend_index(index: Any, steps: int) -> Any:
    """Continue a regular pandas index by ``steps`` periods.

    Dates continue their frequency (``index.freq`` or :func:`infer_frequency`; month starts,
    quarters, weeks, days, business days...), periods their own, integers their step.

    Parameters
    ----------
    index : pandas.Index or None
    steps : int

    Returns
    -------
    pandas.Index or None
        None when ``index`` is None or its frequency cannot be told.

    Examples
    --------
    >>> import pandas as pd
    >>> extend_index(pd.bdate_range("2024-01-03", periods=3), 2).strftime("%a %d").tolist()
    ['Mon 08', 'Tue 09']
    """
    if index is None:
        return None
    name = getattr(index, "name", None)
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=steps, freq=index.freq, name=name)
    if isinstance(index, pd.DatetimeIndex):
        freq = infer_frequency(index)
        if freq is None:
            return None
        return pd.date_range(index[-1], periods=steps + 1, freq=freq, name=name)[1:]
    if isinstance(index, pd.RangeIndex):
        step = index.step
        return pd.RangeIndex(index[-1] + step, index[-1] + step * (steps + 1), step, name=name) \
            if len(index) else pd.RangeIndex(steps, name=name)
    if pd.api.types.is_integer_dtype(index):
        vals = index.to_numpy().astype(np.int64)
        step = reduce(math.gcd, np.unique(np.diff(vals)).tolist()) if len(vals) > 1 else 1
        return pd.Index(vals[-1] + step * np.arange(1, steps + 1), name=name)
    return None
