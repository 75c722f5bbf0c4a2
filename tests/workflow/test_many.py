"""fit_many: per-series fits equal the one-series estimators; Dask gives the same table;
a failing series is recorded, not raised; equal models compile once per process whatever the
threading; the batched forecasts equal pymc_dlm.forecast of each series.

Failures of a run (timeouts, lost workers, interrupts) are in test_many_failures.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_em, fit_mle
from pymc_dlm.workflow import many


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(11)
    n = 80
    cols = {}
    for b in range(5):
        y = dlm.simulate(dlm.LocalLevel(0.5 + 0.2 * b, 1.0), n, rng=rng)[0][:, 0]
        if b == 3:
            y[60:] = np.nan  # a shorter series
            y[20:23] = np.nan
        cols[f"s{b}"] = y
    cols["empty"] = np.full(n, np.nan)
    return pd.DataFrame(cols, index=pd.RangeIndex(2000, 2000 + n, name="year"))


@pytest.fixture(scope="module")
def local(panel):
    return dlm.fit_many(dlm.LocalLevel(1.0, 1.0), panel, progress=False)


def test_each_series_equals_fit_mle(panel, local):
    table = local.table
    assert list(table.index) == list(panel.columns)
    for sid in ["s0", "s3"]:
        ref = fit_mle(dlm.LocalLevel(1.0, 1.0), panel[sid].dropna() if sid == "s0" else panel[sid])
        row = table.loc[sid]
        assert row["log_likelihood"] == pytest.approx(ref.log_likelihood, abs=1e-7)
        # the table holds the variances (fit_mle's estimates), as for EM
        np.testing.assert_allclose(row[list(ref.estimates.index)].to_numpy(float),
                                   ref.estimates.to_numpy(), rtol=1e-4)
    assert table.loc["s3", "nobs"] == 57
    assert table["converged"].iloc[:5].all() and (table["error"].iloc[:5] == "").all()


def test_all_missing_series_is_a_recorded_error(local):
    row = local.table.loc["empty"]
    assert row["error"] == "ValueError: the series has no observed value"
    assert not row["converged"] and np.isnan(row["log_likelihood"])
    assert "empty" not in local.models


def test_long_format_and_em(panel):
    long = panel.iloc[:, :3].reset_index().melt(id_vars="year", var_name="store",
                                                value_name="sales")
    res = dlm.fit_many(dlm.LocalLevel(1.0, 1.0), long, "em", id_col="store", time_col="year",
                       progress=False, max_iter=50)
    ref = fit_em(panel["s1"], dlm.LocalLevel(1.0, 1.0), max_iter=50)
    assert res.table.loc["s1", "log_likelihood"] == pytest.approx(ref.log_likelihood, rel=1e-12)
    assert res.table.loc["s1", "sigma2.obs"] == pytest.approx(ref.params["sigma2.obs"], rel=1e-12)


def test_forecasts_of_many_series_in_one_long_frame(panel, local):
    """The batched forecast (one compiled pass) equals pymc_dlm.forecast of every series,
    each at its own length (s3 ends 20 steps early): the same recursion, so to 1e-12."""
    fc = local.forecast(3, alpha=0.1)
    assert list(fc.columns) == ["id", "time", "mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert fc["id"].tolist() == [s for s in ["s0", "s1", "s2", "s3", "s4"] for _ in range(3)]
    assert fc[fc["id"] == "s3"]["time"].tolist() == [2060, 2061, 2062]  # after its last value
    for sid in ["s0", "s1", "s2", "s3", "s4"]:
        ref = dlm.forecast(local.models[sid], local.data[sid], 3).summary_frame(alpha=0.1)
        got = fc[fc["id"] == sid]
        assert got["time"].tolist() == ref.index.tolist()
        for col in ref.columns:
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-12, atol=0)


def test_forecast_bad_arguments(local):
    with pytest.raises(ValueError, match="steps must be an integer >= 1; got 0"):
        local.forecast(0)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\); got 1.5"):
        local.forecast(2, alpha=1.5)


def test_equal_models_compile_once_from_two_threads(panel):
    """Two threads fit equal-but-distinct formula strings (then two distinct LocalLevel
    objects of one structure), a chunk per series: one compiled log-likelihood for each
    structure, and the same tables."""
    texts = ["".join(["lev", "el"]), "".join(["le", "vel"])]
    assert texts[0] == texts[1] and texts[0] is not texts[1]
    sub = panel[["s0", "s1", "s2", "s4"]]
    many._CACHE.clear()
    before = many._STATS["compiles"]
    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(
            lambda f: dlm.fit_many(f, sub, chunk_size=1, progress=False).table, texts))
    assert many._STATS["compiles"] - before == 1
    pd.testing.assert_frame_equal(tables[0], tables[1])
    models = [dlm.LocalLevel(1.0, 1.0), dlm.LocalLevel(0.5, 2.0)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda mod: dlm.fit_many(mod, sub, chunk_size=1, progress=False), models))
    assert many._STATS["compiles"] - before == 2


def test_dask_local_cluster_gives_the_same_table(panel, local):
    from dask import distributed  # a test dependency (pyproject's test extra)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = dlm.fit_many(dlm.LocalLevel(1.0, 1.0), panel, client=client, chunk_size=2,
                           progress=False)
        fc = res.forecast(3, client=client, chunk_size=2)  # on the workers
    pd.testing.assert_frame_equal(res.table, local.table)
    pd.testing.assert_frame_equal(fc, local.forecast(3))


def test_bad_inputs(panel):
    with pytest.raises(ValueError, match="method must be one of"):
        dlm.fit_many("level", panel, "ols")
    with pytest.raises(ValueError, match="no id column 'shop'"):
        dlm.fit_many("level", panel.reset_index(), id_col="shop")
    with pytest.raises(ValueError, match=r"must be \(B, n\)"):
        dlm.fit_many("level", np.zeros(5))
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0; got 0"):
        dlm.fit_many("level", panel, timeout=0)


def test_duplicate_ids_raise_before_any_fit(panel):
    wide = panel[["s0", "s1", "s0"]]
    with pytest.raises(ValueError, match=r"duplicate series ids \['s0'\]"):
        dlm.fit_many("level", wide, progress=False)
    long = panel[["s0"]].reset_index().melt(id_vars="year", var_name="store")
    with pytest.raises(ValueError, match=r"1 duplicate \(store, year\) rows, e.g. \(s0, 2000\)"):
        dlm.fit_many("level", pd.concat([long, long.iloc[:1]]), id_col="store", time_col="year")


def test_inf_anywhere_is_its_series_error(panel, local):
    """A trailing inf is not dropped as missing: the series fails with a message naming the
    position; the other series' fits are unchanged."""
    sub = panel[["s0", "s1", "s2"]].copy()
    sub.iloc[79, 1] = np.inf
    sub.iloc[5, 2] = -np.inf
    res = dlm.fit_many("level", sub, progress=False)
    assert res.table.loc["s1", "error"] == ("ValueError: the series contains inf at position 79 "
                                            "(of 80); expected finite numbers, NaN for missing "
                                            "values")
    assert res.table.loc["s2", "error"].startswith("ValueError: the series contains inf at "
                                                   "position 5 ")
    assert res.table.loc["s1", "nobs"] == 79 and list(res.models) == ["s0"]
    ref = dlm.fit_many("level", sub[["s0"]], progress=False).table.loc["s0"]
    pd.testing.assert_series_equal(res.table.loc["s0"], ref)


def test_long_frame_keeps_the_order_of_first_appearance(panel):
    long = panel[["s2", "s0", "s1"]].reset_index().melt(id_vars="year", var_name="store")
    long = long.iloc[::-1]  # times reversed too: each series is sorted by time_col
    res = dlm.fit_many("level", long, id_col="store", time_col="year", progress=False)
    assert list(res.table.index) == ["s1", "s0", "s2"]
    np.testing.assert_array_equal(res.data["s2"].to_numpy(), panel["s2"].to_numpy())
    assert res.data["s2"].index[0] == 2000


def test_process_pool_gives_the_same_table(panel):
    """n_jobs=2: chunks in two spawned worker processes; a formula's start comes from each
    series' own data, so the fits are those of the in-process run."""
    subset = panel[["s0", "s1", "s2", "empty"]]
    local = dlm.fit_many("level", subset, progress=False)
    pooled = dlm.fit_many("level", subset, n_jobs=2, chunk_size=2, progress=False)
    pd.testing.assert_frame_equal(pooled.table, local.table)
    assert local.table.loc["s1", "converged"]


def test_map_is_pymc_find_map_of_the_bayesian_model():
    """method="map" with the default priors (as dlm.bayesian: HalfNormal(sd(y)) on each
    standard deviation) against pm.find_MAP of dlm.bayesian(LocalLevel, Nile): our log prior +
    log-likelihood is PyMC's model logp without Jacobian at our mode (1e-9), at least
    find_MAP's value there, and the standard deviations agree to find_MAP's L-BFGS-B
    tolerance (rtol 1e-5; measured 5e-7)."""
    import pymc as pm

    y = dlm.datasets.load_nile()
    res = dlm.fit_many("level", y.to_frame(), "map", progress=False)
    row = res.table.iloc[0]
    model = dlm.bayesian(dlm.LocalLevel, y)
    ref = pm.find_MAP(model=model, progressbar=False, return_inferencedata=True, jitter=False)
    sig = {k: float(ref.posterior[k].item()) for k in ("sigma_level", "sigma_obs")}
    # the table reports variances (sigma2.X, the one naming scheme of docs/estimation.md)
    np.testing.assert_allclose(np.sqrt([row["sigma2.level"], row["sigma2.obs"]]),
                               [sig["sigma_level"], sig["sigma_obs"]], rtol=1e-5)
    logp = model.compile_logp(jacobian=False)
    ours = logp({"sigma_level_log__": 0.5 * np.log(row["sigma2.level"]),
                 "sigma_obs_log__": 0.5 * np.log(row["sigma2.obs"])})
    theirs = logp({f"{k}_log__": np.log(v) for k, v in sig.items()})
    assert row["log_likelihood"] + row["log_prior"] == pytest.approx(ours, abs=1e-9)
    assert ours >= theirs - 1e-9
    assert row["converged"]


def test_map_with_flat_priors_is_the_mle(panel):
    import pymc as pm

    sub = panel[["s0", "s3"]]
    flat = {"sigma.level": pm.HalfFlat.dist(), "sigma.obs": pm.HalfFlat.dist()}
    res = dlm.fit_many("level", sub, "map", priors=flat, progress=False)
    mle = dlm.fit_many("level", sub, progress=False)
    assert (res.table["log_prior"] == 0.0).all()
    pd.testing.assert_frame_equal(res.table.drop(columns="log_prior"), mle.table,
                                  check_exact=False, rtol=1e-12)


def test_map_bad_arguments(panel):
    import pymc as pm

    with pytest.raises(ValueError, match="priors are for method='map' or 'nuts'; got method='mle'"):
        dlm.fit_many("level", panel, priors={})
    with pytest.raises(TypeError, match="method='map' takes a formula"):
        dlm.fit_many(dlm.LocalLevel(1.0, 1.0), panel, "map")
    with pytest.raises(ValueError, match=r"priors for \['sigma.slope'\]: not parameters of "
                                         r"'level'; expected some of \['sigma.level', "
                                         r"'sigma.obs'\]"):
        dlm.fit_many("level", panel, "map", priors={"sigma.slope": pm.HalfNormal.dist(1.0)})
