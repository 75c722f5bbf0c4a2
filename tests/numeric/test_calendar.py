"""Time indexes: gaps become missing observations, forecasts continue the frequency.

References: a gapped series must give exactly the numbers of the same data with NaN at the
gaps (the filter skips a missing row, D&K 2012 section 4.10), so the NaN series run through
the same engine is the reference, to rtol 1e-12 (the two runs differ only in how y was made);
forecast indexes are checked against ``pandas.date_range``/``period_range`` over the data and
the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.numeric.calendar import GapWarning, extend_index, regular_index, regularize


def _airline_model():
    return dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01)


@pytest.fixture(scope="module")
def gapped():
    """log airline passengers, monthly, with 1949-06, 1949-07 and 1952-05 dropped and the
    frequency attribute removed (as a CSV reader would give it)."""
    y = np.log(dlm.datasets.load_airline_passengers())
    drop = [5, 6, 40]
    g = y.drop(y.index[drop])
    g.index = pd.DatetimeIndex(g.index.to_numpy(), name="month")
    nan = y.copy()
    nan.iloc[drop] = np.nan
    return g, nan


class TestGaps:
    def test_gapped_series_equals_nan_series(self, gapped):
        g, nan = gapped
        mod = _airline_model()
        with pytest.warns(GapWarning, match=r"2 gaps: 3 missing rows \(NaN\) inserted at "
                                            r"1949-06-01, 1949-07-01, 1952-05-01"):
            f = dlm.kalman_filter(mod, g)
        ref = dlm.kalman_filter(mod, nan)
        assert f.llf == pytest.approx(ref.llf, rel=1e-12)
        assert f.n == 144 and f.index.equals(nan.index) and f.index.freqstr == "MS"
        with pytest.warns(GapWarning):
            assert dlm.loglike(mod, g) == pytest.approx(ref.llf, rel=1e-12)
        with pytest.warns(GapWarning):
            s = dlm.kalman_smoother(mod, g)
        np.testing.assert_allclose(s.a_smooth, dlm.kalman_smoother(mod, nan).a_smooth, rtol=1e-12)
        assert s.index.equals(nan.index)
        with pytest.warns(GapWarning):
            fc = dlm.forecast(mod, g, 3)
        fr = dlm.forecast(mod, nan, 3)
        np.testing.assert_allclose(fc.y_mean, fr.y_mean, rtol=1e-12)
        np.testing.assert_allclose(fc.y_cov, fr.y_cov, rtol=1e-12)
        assert list(fc.index) == list(pd.date_range("1961-01-01", periods=3, freq="MS"))

    def test_fit_regularizes_once_and_results_carry_the_index(self, gapped):
        g, nan = gapped
        with pytest.warns(GapWarning, match="3 missing rows"):
            res = dlm.fit("level", g)
        assert res.data.index.equals(nan.index)
        comps = res.components()  # no second warning: the stored data is regular
        assert comps.index.equals(nan.index)
        assert res.forecast(2).index[0] == pd.Timestamp("1961-01-01")

    def test_integer_gaps(self):
        y = dlm.datasets.load_nile()
        mod = dlm.LocalLevel(1469.1**0.5, 15099**0.5)
        ref = y.copy()
        ref.loc[[1900, 1950, 1951]] = np.nan
        with pytest.warns(GapWarning, match=r"2 gaps: 3 missing rows"):
            f = dlm.kalman_filter(mod, y.drop([1900, 1950, 1951]))
        assert f.llf == pytest.approx(dlm.kalman_filter(mod, ref).llf, rel=1e-12)
        assert list(f.index) == list(range(1871, 1971))

    def test_regular_data_is_untouched(self):
        y = dlm.datasets.load_nile()
        assert regularize(y) is y  # no warning either (filterwarnings=error)
        assert regularize(np.ones(3)).shape == (3,)


class TestBadIndexes:
    @pytest.mark.parametrize(
        "index, match",
        [
            (pd.Index([1, 2, 2, 3]), r"duplicate labels, e.g. 2"),
            (pd.DatetimeIndex(["2020-01-01", "2020-03-01", "2020-02-01", "2020-04-01"]),
             r"not sorted: 2020-03-01 comes before 2020-02-01; sort the data"),
            (pd.DatetimeIndex(["2020-01-01", "2020-01-05", "2020-01-17", "2020-02-03"]),
             r"cannot infer a frequency from y's dates \(2020-01-01, 2020-01-05, 2020-01-17"
             r"\.\.\.\); pass freq="),
            (pd.Index(["a", "b", "c", "d"]), r"must be dates .* got str labels such as 'a'"),
            (pd.Index([0.5, 1.0, 1.5, 2.0]), r"got float64 labels"),
        ],
    )
    def test_raises(self, index, match):
        y = pd.Series(np.arange(4.0), index=index)
        with pytest.raises(ValueError, match=match):
            dlm.kalman_filter(dlm.LocalLevel(1.0, 1.0), y)

    def test_freq_given(self):
        y = pd.Series([1.0, 2.0, 4.0], index=["2020-01", "2020-02", "2020-04"])
        with pytest.warns(GapWarning, match="1 missing row"):
            full = regularize(y, freq="MS")
        assert list(full.index) == list(pd.date_range("2020-01-01", periods=4, freq="MS"))
        assert np.isnan(full.iloc[2]) and full.iloc[3] == 4.0
        with pytest.raises(ValueError, match=r"2020-01-15 00:00:00 is not on the MS grid"):
            regularize(pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2020-01-15", "2020-02-15"])),
                       freq="MS")


@pytest.mark.parametrize("freq", ["MS", "ME", "QS", "QE", "W-SUN", "D", "B", "YS"])
def test_forecast_index_continues_dates(freq):
    full = pd.date_range("2021-01-04", periods=30, freq=freq, name="t")
    data = full[:24]
    y = pd.Series(np.sin(np.arange(24.0)), index=pd.DatetimeIndex(data.to_numpy(), name="t"))
    fc = dlm.forecast(dlm.LocalLevel(1.0, 1.0), y, 6)
    assert fc.index.equals(full[24:]) and fc.index.name == "t"
    # with a gap, inferred from stretches of three dates
    grid, pos = regular_index(pd.DatetimeIndex(data.delete([4, 10]).to_numpy()))
    assert grid.equals(pd.DatetimeIndex(data.to_numpy(), freq=grid.freq)) and len(pos) == 22
    assert extend_index(grid, 6).equals(pd.DatetimeIndex(full[24:].to_numpy()))


@pytest.mark.parametrize(
    "index, expected",
    [
        (pd.period_range("2000Q1", periods=10, freq="Q"), pd.period_range("2002Q3", periods=3, freq="Q")),
        (pd.period_range("2000-01", periods=10, freq="M"), pd.period_range("2000-11", periods=3, freq="M")),
        (pd.Index(np.arange(1900, 1920, 2)), pd.Index([1920, 1922, 1924])),
        (pd.RangeIndex(10), pd.RangeIndex(10, 13)),
    ],
)
def test_forecast_index_continues_periods_and_integers(index, expected):
    y = pd.Series(np.sin(np.arange(10.0)), index=index)
    fc = dlm.forecast(dlm.LocalLevel(1.0, 1.0), y, 3)
    assert list(fc.index) == list(expected)
    assert list(fc.summary_frame().index) == list(expected)
