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
