"""Residual diagnostics on arviz-plots: the panels' numbers against pymc_dlm.diagnostics at an
MLE fit (one draw: the bands collapse onto the line), and a PNG that renders."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import special

import pymc_dlm as dlm
from pymc_dlm.diagnostics import acf, standardized_residuals
from pymc_dlm.plots.bayes import PANELS, plot_residual_diagnostics, residual_check_data


@functools.cache
def mle():
    return dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())


def test_panels_equal_the_diagnostics():
    res = mle()
    lines, bands = residual_check_data(res.to_datatree(), max_lag=12)
    e = standardized_residuals(res.filter())[1:, 0]
    np.testing.assert_allclose(lines[PANELS[0]].sel(plot_axis="y"), e, rtol=1e-10)
    np.testing.assert_allclose(lines[PANELS[1]].sel(plot_axis="y"), acf(e, 12)[1:], rtol=1e-10)
    np.testing.assert_allclose(lines[PANELS[2]].sel(plot_axis="y"), np.sort(e), rtol=1e-10)
    np.testing.assert_allclose(bands[PANELS[2]].sel(kwarg="y_top"), np.sort(e), rtol=1e-10)
    # PIT of one draw: Phi(e_t); the ECDF difference at u is #(Phi(e) <= u)/N - u
    grid = lines[PANELS[3]].sel(plot_axis="x").values
    want = np.searchsorted(np.sort(special.ndtr(e)), grid, side="right") / e.size - grid
    np.testing.assert_allclose(lines[PANELS[3]].sel(plot_axis="y"), want, atol=1e-12)


def test_renders_to_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    pc = plot_residual_diagnostics(mle().to_datatree(), backend="matplotlib")
    pc.savefig(tmp_path / "diag.png")
    assert (tmp_path / "diag.png").stat().st_size > 10_000
    assert set(pc.viz["plot"].data_vars) == set(PANELS)
    assert pc.viz["title"]["normal QQ"].item().get_text() == "normal QQ"


def test_needs_the_residual_group():
    from arviz_base import from_dict

    with pytest.raises(ValueError, match="no 'residuals' group"):
        residual_check_data(from_dict({"posterior": {"a": np.zeros((1, 2))}}))


def test_dated_series_get_a_date_axis():
    import matplotlib
    import matplotlib.dates as mdates
    import pandas as pd

    matplotlib.use("Agg")
    y = dlm.datasets.load_nile()
    dated = pd.Series(y.to_numpy(), index=pd.date_range("1871-01-01", periods=100, freq="YS"))
    tree = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dated).to_datatree()
    lines, _ = residual_check_data(tree, dates="days")
    x = lines[PANELS[0]].sel(plot_axis="x").values
    assert x[0] == (pd.Timestamp("1872-01-01") - pd.Timestamp("1970-01-01")).days  # step 2
    decimal, _ = residual_check_data(tree)
    assert decimal[PANELS[0]].sel(plot_axis="x").values[0] == 1872.0
    pc = plot_residual_diagnostics(tree, backend="matplotlib")
    ax = pc.viz["plot"][PANELS[0]].item()
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    lo, hi = mdates.num2date(ax.get_xlim()[0]), mdates.num2date(ax.get_xlim()[1])
    assert 1860 < lo.year <= 1872 and 1970 <= hi.year < 1980
    with pytest.raises(ValueError, match="dates must be"):
        residual_check_data(tree, dates="years")


def test_state_and_component_draws_are_posterior_quantiles():
    """Simulation-smoother paths at one parameter value: the drawn median and 94% band are
    the draws' quantiles, and match the smoother's mean and +-1.88 sd within MC error."""
    import matplotlib
    import xarray as xr

    from pymc_dlm.numeric.simulate import simulation_smoother
    from pymc_dlm.plots.bayes import plot_component_draws, plot_state_draws

    matplotlib.use("Agg")
    y = dlm.datasets.load_nile()
    mod = dlm.LocalLevel(38.3, 122.9)
    k = 400
    paths = np.stack([simulation_smoother(mod, y, np.random.default_rng(i)) for i in range(k)])
    ds = xr.Dataset({"states": (("chain", "draw", "year", "state"), paths[None])},
                    coords={"year": y.index.to_numpy(), "state": ["level"]})
    ax = plot_state_draws(ds, y)[0]
    med = ax.lines[1].get_ydata()
    np.testing.assert_allclose(med, np.median(paths[:, :, 0], axis=0))
    sm = dlm.kalman_smoother(mod, y)
    sd = np.sqrt(sm.V[:, 0, 0])
    assert np.abs((med - sm.a_smooth[:, 0]) / sd).max() < 0.35  # median's MC sd ~ 0.063 sd
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(np.max(np.quantile(paths[:, :, 0], 0.97, axis=0)))
    comp = plot_component_draws(ds, mod)[0]
    np.testing.assert_allclose(comp.lines[0].get_ydata(), med)  # Z = 1: the level itself
    with pytest.raises(ValueError, match="kind='simulated'"):
        plot_state_draws(xr.Dataset({"state_mean": ds["states"]}))
