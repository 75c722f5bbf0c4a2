"""Every plot kind renders to a non-trivial PNG with labelled axes and legends (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import pymc_dlm as dlm  # noqa: E402
from pymc_dlm.estimation import fit_em  # noqa: E402


@pytest.fixture(scope="module")
def fits():
    nile = fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(38.0, 120.0), max_iter=20)
    y = np.log(dlm.datasets.load_airline_passengers())
    air = fit_em(y, dlm.LocalLinearTrend(0.02, 0.002, 0.01) + dlm.Seasonal(12, 0.01), max_iter=5)
    return {"nile": nile, "airline": air}


def _check(axes, path):
    axes = np.ravel(np.asarray(axes, dtype=object))
    for ax in axes:
        assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title()
        assert ax.get_legend() is not None
        assert ax.lines or ax.collections or ax.patches
    fig = axes[0].figure
    fig.savefig(path, dpi=60)
    plt.close(fig)
    assert path.stat().st_size > 8_000  # an empty 60-dpi figure is about 2 kB


@pytest.mark.parametrize("data", ["nile", "airline"])
@pytest.mark.parametrize("kind", ["diagnostics", "filtered", "smoothed", "forecast", "components"])
def test_every_kind_renders(fits, data, kind, tmp_path):
    axes = fits[data].plot(kind)
    _check(axes, tmp_path / f"{data}_{kind}.png")


def test_plot_content_matches_the_results(fits):
    """The smoothed line is the smoother's mean; the components add up to the signal."""
    res = fits["airline"]
    sm = res.smooth()
    axes = res.plot("smoothed", states=["level"])
    line = [ln for ln in axes[0].lines if ln.get_label().startswith("smoothed")][0]
    np.testing.assert_allclose(line.get_ydata(), sm.a_smooth[:, 0])
    plt.close(axes[0].figure)
    axes = res.plot("components")
    total = sum(ax.lines[0].get_ydata() for ax in axes)
    Z = res.model.Z
    np.testing.assert_allclose(total, sm.a_smooth @ Z[0], rtol=1e-12)
    assert [ax.get_ylabel() for ax in axes] == ["trend", "seasonal"]
    plt.close(axes[0].figure)


def test_bad_kind_and_state(fits):
    with pytest.raises(ValueError, match="kind"):
        fits["nile"].plot("qq")
    with pytest.raises(ValueError, match="unknown state"):
        fits["nile"].plot("filtered", states=["slope"])


def test_fan_chart_of_forecast_draws(tmp_path):
    """The Bayesian forecast fan chart: median line and nested quantile bands of the draws."""
    from pymc_dlm.plots import plot_forecast_draws

    y = dlm.datasets.load_nile()
    draws = 800.0 + 140.0 * np.random.default_rng(0).standard_normal((2000, 10))
    ax = plot_forecast_draws(draws, y, np.arange(1971, 1981))
    _check([ax], tmp_path / "fan.png")
    median = [ln for ln in ax.lines if ln.get_label() == "median forecast"][0]
    np.testing.assert_allclose(median.get_ydata(), np.median(draws, axis=0))
    assert [c.get_label() for c in ax.collections] == ["95%", "80%", "50%"]
    with pytest.raises(ValueError, match=r"draws must be \(S, h\)"):
        plot_forecast_draws(draws[0], y)

