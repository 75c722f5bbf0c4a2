"""The documentation site builds with MkDocs in strict mode (warnings are errors), API
reference generated from the docstrings included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_strict_build(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    # the reference is generated from the docstrings, equations and examples included
    for text in ("fit_mle", "kalman_filter", "sample_states", "Durbin", "Examples"):
        assert text in api, text
    for page in ("estimation", "bayesian", "forecasting", "diagnostics", "stepwise", "cli", "models"):
        assert (tmp_path / "site" / page / "index.html").stat().st_size > 10_000
