"""fit_many: per-series fits equal the one-series estimators; Dask gives the same table;
a failing series is recorded, not raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_em, fit_mle


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
    fc = local.forecast(3)
    assert list(fc.columns) == ["id", "time", "mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert len(fc) == 3 * 5
    s3 = fc[fc["id"] == "s3"]
    assert s3["time"].tolist() == [2060, 2061, 2062]  # continues after its last observation
    ref = dlm.forecast(local.models["s0"], panel["s0"], 3).summary_frame()
    np.testing.assert_allclose(fc[fc["id"] == "s0"]["mean"], ref["mean"], rtol=1e-12)


def test_dask_local_cluster_gives_the_same_table(panel, local):
    from dask import distributed  # a test dependency (pyproject's test extra)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = dlm.fit_many(dlm.LocalLevel(1.0, 1.0), panel, client=client, chunk_size=2,
                           progress=False)
    pd.testing.assert_frame_equal(res.table, local.table)


def test_bad_inputs(panel):
    with pytest.raises(ValueError, match="method must be one of"):
        dlm.fit_many("level", panel, "nuts")
    with pytest.raises(ValueError, match="no id column 'shop'"):
        dlm.fit_many("level", panel.reset_index(), id_col="shop")
    with pytest.raises(ValueError, match=r"must be \(B, n\)"):
        dlm.fit_many("level", np.zeros(5))


def test_process_pool_gives_the_same_table(panel):
    """n_jobs=2: chunks in two spawned worker processes; a formula's start comes from each
    series' own data, so the fits are those of the in-process run."""
    subset = panel[["s0", "s1", "s2", "empty"]]
    local = dlm.fit_many("level", subset, progress=False)
    pooled = dlm.fit_many("level", subset, n_jobs=2, chunk_size=2, progress=False)
    pd.testing.assert_frame_equal(pooled.table, local.table)
    assert local.table.loc["s1", "converged"]
