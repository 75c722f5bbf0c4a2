"""Imports flow one way: each layer must not load the layers above it."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("pymc_dlm.spec", ["pytensor", "pymc", "numba", "matplotlib", "pymc_dlm.numeric"]),
    ("pymc_dlm.numeric", ["pytensor", "pymc", "matplotlib", "pymc_dlm.symbolic", "pymc_dlm.fused"]),
    ("pymc_dlm.symbolic", ["pymc", "matplotlib", "pymc_dlm.numeric", "pymc_dlm.fused", "pymc_dlm.bayes"]),
    ("pymc_dlm.fused", ["pymc", "matplotlib", "pymc_dlm.bayes"]),
    ("pymc_dlm.bayes", ["matplotlib"]),
    ("pymc_dlm.diagnostics", ["pytensor", "pymc", "matplotlib", "pymc_dlm.symbolic", "pymc_dlm.fused",
                              "pymc_dlm.bayes", "pymc_dlm.estimation"]),
    ("pymc_dlm.estimation", ["pymc", "matplotlib", "pymc_dlm.bayes", "pymc_dlm.plots"]),
    ("pymc_dlm.plots", ["pytensor", "pymc", "matplotlib", "pymc_dlm.bayes", "pymc_dlm.estimation"]),
    ("pymc_dlm.workflow", ["pymc", "matplotlib", "pymc_dlm.bayes", "pymc_dlm.plots", "pymc_dlm.cli"]),
    ("pymc_dlm", ["pytensor", "pymc", "matplotlib", "numba", "pymc_dlm.numeric"]),
]


@pytest.mark.parametrize("module, forbidden", CASES)
def test_layer_does_not_import_upper_layers(module, forbidden):
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"
