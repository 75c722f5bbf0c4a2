"""The README's main job, run in-process."""

from __future__ import annotations

import pymc_dlm.cli as cli


def test_demo_fits_nile_and_writes_plot(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # MLE of Durbin and Koopman (2012, section 2.10): 1469.1 and 15099; statsmodels llf -633.4646
    level = float(out.split("sigma2_level (eta) :")[1].split()[0])
    obs = float(out.split("sigma2_obs (eps)   :")[1].split()[0])
    assert abs(level / 1469.1 - 1) < 2e-3 and abs(obs / 15099 - 1) < 2e-3
    assert "-633.4646" in out
    png = tmp_path / "nile_local_level.png"
    assert png.stat().st_size > 20_000


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2


# --- pymc-dlm fit, end to end through a subprocess ---------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import pymc_dlm as dlm  # noqa: E402

REPORT = ("summary.txt", "summary.json", "params.csv", "forecast.csv", "smoothed.png",
          "components.png", "forecast.png", "diagnostics.png")


def _run(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "pymc_dlm", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def airline_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "air.csv"
    np.log(dlm.datasets.load_airline_passengers()).to_frame("logpass").to_csv(path)
    return path


def _report(out):
    for name in REPORT:
        assert (out / name).stat().st_size > (5_000 if name.endswith(".png") else 20), name
    return json.loads((out / "summary.json").read_text())


def test_fit_mle_on_nile_by_default(tmp_path):
    proc = _run("fit", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = _report(tmp_path)
    # Durbin and Koopman (2012, section 2.10.3): variances 1469.1 and 15099
    assert summary["parameters"]["sigma2.level"] == pytest.approx(1469.1, rel=1e-3)
    assert summary["parameters"]["sigma2.obs"] == pytest.approx(15099, rel=1e-3)
    fc = pd.read_csv(tmp_path / "forecast.csv", index_col=0)
    assert fc.index[0] == 1971 and len(fc) == 12
    assert "Maximum likelihood" in proc.stdout


def test_fit_em_on_a_csv_with_dates_shows_progress(tmp_path, airline_csv):
    proc = _run("fit", str(airline_csv), "--model", "trend + seasonal(12)", "--method", "em",
                "--steps", "3", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "EM iteration   10" in proc.stderr
    summary = _report(tmp_path)
    # one naming scheme: the variances EM printed in summary.txt, by the same names
    assert summary["method"] == "em" and set(summary["parameters"]) == {
        "sigma2.level", "sigma2.slope", "sigma2.seasonal", "sigma2.obs"}
    text = (tmp_path / "summary.txt").read_text()
    s2_obs = float(text.split("sigma2.obs")[1].split()[0])
    assert summary["parameters"]["sigma2.obs"] == pytest.approx(s2_obs, rel=1e-5)
    fc = pd.read_csv(tmp_path / "forecast.csv", index_col=0, parse_dates=True)
    assert list(fc.index) == list(pd.date_range("1961-01-01", periods=3, freq="MS"))


def test_fit_map_and_nuts(tmp_path):
    proc = _run("fit", "--method", "map", "--out", str(tmp_path / "map"))
    assert proc.returncode == 0, proc.stderr
    s = _report(tmp_path / "map")
    # the HalfNormal(sd(y)) priors pull the MAP slightly off the MLE's llf -633.4646
    assert -633.4646 - 0.01 < s["log_likelihood"] <= -633.4646 + 1e-9
    proc = _run("fit", "--method", "nuts", "--draws", "30", "--tune", "30", "--chains", "1",
                "--seed", "1", "--steps", "4", "--out", str(tmp_path / "nuts"))
    assert proc.returncode == 0, proc.stderr
    s = _report(tmp_path / "nuts")
    assert s["converged"] is None  # one chain: no R-hat
    for name in ("trace.png", "ppc.png", "diagnostics.png", "smoothed.png", "components.png"):
        assert (tmp_path / "nuts" / name).stat().st_size > 5000
    assert not (tmp_path / "nuts" / "rank.png").exists()
    assert set(s["ess_bulk"]) == {"sigma.level", "sigma.obs"} and np.isfinite(s["elpd_loo"])
    import xarray as xr

    tree = xr.open_datatree(tmp_path / "nuts" / "posterior.zarr", engine="zarr", consolidated=False)
    assert tree.posterior["sigma.obs"].shape == (1, 30)
    assert tree["residuals"]["standardized_residual"].shape == (1, 30, 100)
    fc = pd.read_csv(tmp_path / "nuts" / "forecast.csv", index_col=0)
    assert list(fc.columns) == ["mean", "sd", "q2.5", "q97.5"] and fc.index[0] == 1971


@pytest.mark.parametrize("args, message", [
    (["fit", "missing.csv"], "no such data file: missing.csv"),
    (["fit", "{csv}", "--column", "flow"], "no column 'flow'"),
    (["fit", "--model", "level + sesonal(3)"], "unknown term 'sesonal(3)'"),
    (["fit", "{bad}", "--column", "x"], "column 'x' is not numeric (row 3: 'abc')"),
    (["fit", "--method", "ols"], "invalid choice: 'ols'"),
])
def test_user_errors_print_one_line_and_exit_2(tmp_path, airline_csv, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x\n1,2.0\n2,abc\n3,4.0\n")
    args = [a.format(csv=airline_csv, bad=bad) for a in args]
    proc = _run(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
