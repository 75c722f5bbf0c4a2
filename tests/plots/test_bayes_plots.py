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
