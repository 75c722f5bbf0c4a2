"""fit_many(method="nuts"): NUTS per series (nutpie), one compiled PyMC model, data swapped;
posterior predictive forecasts, saved posteriors, the process pool.

Coverage check: four simulated local levels with different true standard deviations; if the
94% HDIs were calibrated each of the 8 intervals would cover its true value with probability
about 0.94, and 6 or more of 8 then happen with probability 0.99 (binomial: P(X <= 5) =
0.0095).  Fixed seeds make the run deterministic.  Had the data not been swapped (every
series sampled on the first one's data), the level intervals could not cover 0.3 and 3.0 at
once.  Sampling is short (200 + 200 draws, 2 chains) to keep the suite's time; the one fit
(module-scoped, in a pool of two spawned processes: the pool's cost is one compile per worker,
in parallel) serves the coverage, forecast and saving tests (fitting in this process runs the
same per-chunk code, ``_fit_chunk``, through the runner the MLE and MAP tests use).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import pymc_dlm as dlm
from pymc_dlm.workflow.formula import parse_formula

TRUE = [(0.3, 1.0), (1.0, 1.0), (3.0, 1.0), (1.0, 3.0)]  # (sigma.level, sigma.obs)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    rng = np.random.default_rng(20)
    Y = np.stack([dlm.simulate(dlm.LocalLevel(lv, ob), 120, rng=rng)[0][:, 0]
                  for lv, ob in TRUE])
    path = tmp_path_factory.mktemp("posteriors")
    # two spawned worker processes, two series each: each worker compiles the model once
    # and swaps the second series' data in; the stores are written by the workers
    res = dlm.fit_many("level", Y, "nuts", draws=200, tune=200, chains=2, random_seed=1,
                       save=path, n_jobs=2, timeout=300, progress=False)
    assert res.complete
    return Y, res, path


def test_nuts_hdis_cover_the_true_standard_deviations(fits):
    _, res, _ = fits
    table = res.table
    assert (table["error"] == "").all()
    covered = 0
    for b, (lv, ob) in enumerate(TRUE):
        for name, true in (("sigma.level", lv), ("sigma.obs", ob)):
            lo, hi = table.loc[b, f"{name} hdi94_lb"], table.loc[b, f"{name} hdi94_ub"]
            covered += int(lo <= true <= hi)
    assert covered >= 6
    # 400 draws: ESS of the slowest-mixing series (sigma.level = 3) is about 34
    assert (table["sigma.level r_hat"] < 1.1).all() and (table["sigma.level ess_bulk"] > 25).all()
    assert res.param_names == ("sigma.level", "sigma.obs")
    assert all(res.posterior[b].shape == (400, 2) for b in range(4))
    # the draws summarised are those kept: the table's mean is their average
    assert res.table.loc[2, "sigma.level mean"] == pytest.approx(res.posterior[2][:, 0].mean(),
                                                                 rel=1e-12)


def test_nuts_forecast_is_the_posterior_mixture_of_the_forecasts_at_the_draws(fits):
    """Independent reference: dlm.forecast of the numeric model at each of series 2's 400
    draws; the predictive mean is their average, its variance the average variance plus the
    variance of the means, and scipy's normal CDF averaged over the draws at the reported
    quantiles gives back their probabilities.  Same draws, so the tolerance is rounding's."""
    Y, res, _ = fits
    fc = res.forecast(3, quantiles=[0.1, 0.5])
    assert fc.columns.tolist() == ["id", "time", "mean", "mean_se", "mean_ci_lower",
                                   "mean_ci_upper", "q0.1", "q0.5"]
    assert len(fc) == 12 and fc["time"].tolist()[:3] == [120, 121, 122]
    formula = parse_formula("level")
    means, varis = [], []
    for th in res.posterior[2]:
        one = dlm.forecast(formula.build(th), Y[2], 3)
        means.append(one.y_mean[:, 0])
        varis.append(one.y_cov[:, 0, 0])
    mu, var = np.array(means), np.array(varis)  # (400, 3)
    got = fc[fc["id"] == 2]
    np.testing.assert_allclose(got["mean"], mu.mean(0), rtol=1e-12)
    np.testing.assert_allclose(got["mean_se"] ** 2, var.mean(0) + mu.var(0), rtol=1e-10)
    for col, p in (("mean_ci_lower", 0.025), ("mean_ci_upper", 0.975), ("q0.1", 0.1),
                   ("q0.5", 0.5)):
        cdf = stats.norm.cdf(got[col].to_numpy()[None], mu, np.sqrt(var)).mean(0)
        np.testing.assert_allclose(cdf, p, atol=1e-10)
    # parameter uncertainty widens the interval beyond the plug-in one at the posterior mean
    plug = dlm.forecast(formula.build(res.posterior[2].mean(0)), Y[2], 3)
    assert (got["mean_se"].to_numpy() > np.sqrt(plug.y_cov[:, 0, 0])).all()
    thin = res.forecast(3, n_draws=50)
    assert np.isfinite(thin["mean"]).all() and not np.allclose(thin["mean_se"], fc["mean_se"])
    ref = res.forecast(3, n_draws=50, quantiles=[0.5])
    by_hand = _mixture_of(res.posterior[1][np.linspace(0, 399, 50).round().astype(int)], Y[1])
    np.testing.assert_allclose(ref[ref["id"] == 1]["mean"], by_hand, rtol=1e-12)


def _mixture_of(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    formula = parse_formula("level")
    return np.mean([dlm.forecast(formula.build(th), y, 3).y_mean[:, 0] for th in draws], axis=0)


def test_nuts_forecast_on_a_dask_cluster_equals_here(fits):
    from dask import distributed  # a test dependency (pyproject's test extra)

    _, res, _ = fits
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        fc = res.forecast(2, n_draws=40, quantiles=[0.9], client=client, chunk_size=3)
    pd.testing.assert_frame_equal(fc, res.forecast(2, n_draws=40, quantiles=[0.9]))


def test_nuts_saved_posteriors_round_trip(fits):
    _, res, path = fits
    assert sorted(p.name for p in path.iterdir()) == ["0.zarr", "1.zarr", "2.zarr", "3.zarr"]
    for b in (0, 3):
        tree = xr.open_datatree(path / f"{b}.zarr", engine="zarr", consolidated=False)
        post = tree["posterior"]
        assert post["sigma.level"].shape == (2, 200)
        np.testing.assert_array_equal(
            np.stack([post[n].to_numpy().reshape(-1) for n in res.param_names], axis=1),
            res.posterior[b])
        assert int(tree["sample_stats"]["diverging"].sum()) == res.table.loc[b, "divergences"]


def test_map_forecast_equals_the_forecast_at_the_mode(fits):
    Y, _, _ = fits
    mp = dlm.fit_many("level", Y[:2], "map", progress=False)
    fc = mp.forecast(4, quantiles=[0.9])
    for b in range(2):
        # the table reports variances (docs/estimation.md's naming scheme)
        mode = np.sqrt(mp.table.loc[b, ["sigma2.level", "sigma2.obs"]].to_numpy(float))
        ref = dlm.forecast(dlm.LocalLevel(*mode), Y[b], 4)
        got = fc[fc["id"] == b]
        np.testing.assert_allclose(got["mean"], ref.y_mean[:, 0], rtol=1e-12)
        np.testing.assert_allclose(got["mean_se"], np.sqrt(ref.y_cov[:, 0, 0]), rtol=1e-12)
        np.testing.assert_allclose(got["q0.9"], stats.norm.ppf(0.9, ref.y_mean[:, 0],
                                                               np.sqrt(ref.y_cov[:, 0, 0])),
                                   rtol=1e-12)


def test_nuts_bad_options():
    with pytest.raises(ValueError, match=r"method='nuts' takes \['draws', 'tune', 'chains', "
                                         r"'random_seed', 'target_accept'\]; got \['maxiter'\]"):
        dlm.fit_many("level", np.zeros((2, 10)), "nuts", maxiter=5)
    with pytest.raises(ValueError, match="save= writes NUTS posteriors"):
        dlm.fit_many("level", np.zeros((2, 10)), "map", save="x")
    with pytest.raises(ValueError, match=r"same store name \['a_b.zarr'\]"):
        dlm.fit_many("level", pd.DataFrame({"a b": [1.0, 2.0], "a/b": [1.0, 2.0]}), "nuts",
                     save="x")


def test_draws_to_system_arrays_equal_the_models_at_each_draw():
    """The vectorised map from a formula's parameter draws to the stacked system arrays equals
    the numeric model built at each draw (a multi-state formula: some arrays constant)."""
    from pymc_dlm.numeric.assemble import system_arrays
    from pymc_dlm.workflow import many

    formula = parse_formula("trend + seasonal(4)")
    draws = np.random.default_rng(2).uniform(0.1, 2.0, size=(5, 4))
    got = many._draw_systems("trend + seasonal(4)", formula.param_names)(draws)
    for s, th in enumerate(draws):
        for a, b in zip(got, system_arrays(formula.build(th)), strict=True):
            np.testing.assert_allclose(a[s], b, rtol=1e-14)
    with pytest.raises(ValueError, match=r"the draws are of \['sigma.level'\]"):
        many._draw_systems("level", ("sigma.level",))
