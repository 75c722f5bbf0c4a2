"""``convention`` and ``burn`` in the graph engines (fused Op and scan) against the NumPy
engine, whose values are checked against R, Commandeur and Koopman (2007) and Kim and Nelson
(1999) in tests/numeric/test_conventions.py; and the gradient of a burnt-in likelihood
against central differences of the NumPy engine."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import pymc_dlm as dlm
from pymc_dlm import fused, symbolic
from pymc_dlm.numeric import system_arrays
from pymc_dlm.symbolic import diffuse_plan, system_tensors
from reference_models import REFERENCE_MODELS

sys.path.insert(0, str(Path(__file__).parents[1] / "numeric"))
from test_conventions import kim_nelson_tvp  # noqa: E402


def _plan(mod, y):
    s = system_arrays(mod)
    return diffuse_plan(s.Z, s.T, s.P1inf, ~np.isnan(y))


@pytest.mark.parametrize("engine", [fused, symbolic], ids=["fused", "scan"])
@pytest.mark.parametrize("kw", [dict(convention="kfas"), dict(burn=7),
                                dict(convention="kfas", burn=1)], ids=str)
def test_nile_options_equal_numpy_engine(engine, kw):
    mod, y = REFERENCE_MODELS["nile"]()
    y = y[:, None]
    got = float(engine.loglike(system_tensors(mod), y, _plan(mod, y), **kw).eval())
    assert got == pytest.approx(dlm.loglike(mod, y, **kw), rel=1e-12)


def test_kfas_with_thirteen_diffuse_elements_fused_equals_numpy():
    mod, y = REFERENCE_MODELS["trend_seasonal"]()
    y = y[:, None]
    plan = _plan(mod, y)
    assert plan.n_diffuse_obs == 13
    ll_t = fused.loglike_t(system_tensors(mod), y, plan, convention="kfas").eval()
    np.testing.assert_allclose(ll_t, dlm.kalman_filter(mod, y, convention="kfas").llf_t,
                               rtol=1e-10, atol=1e-10)


def test_burnt_in_tvp_regression_value_and_gradient():
    """Kim and Nelson's likelihood over t = 11..106 by the fused Op, and its gradient in the
    six log-variances against central differences of the NumPy engine's burn=10."""
    mod, y = kim_nelson_tvp()
    y = y[:, None]
    psi = pt.dvector("psi")
    v = pt.exp(psi)
    Q = pt.diag(v[1:])
    sym = mod.replace(H=v[0].reshape((1, 1)), Q=Q, P1=50.0 * pt.eye(5) + Q)
    ll = fused.loglike(system_tensors(sym), y, _plan(mod, y), burn=10)
    fn = pytensor.function([psi], [ll, pt.grad(ll, psi)])
    x0 = np.log(np.r_[mod.H[0, 0], np.diag(mod.Q)])
    val, grad = fn(x0)
    assert val == pytest.approx(-97.092423, abs=1e-6)

    def numeric(x):
        Qx = np.diag(np.exp(x[1:]))
        return dlm.loglike(mod.replace(H=[[np.exp(x[0])]], Q=Qx, P1=50.0 * np.eye(5) + Qx),
                           y, burn=10)

    h = 1e-5
    fd = [(numeric(x0 + h * e) - numeric(x0 - h * e)) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_bad_options_are_rejected():
    mod, y = REFERENCE_MODELS["nile"]()
    y = y[:, None]
    sys_, plan = system_tensors(mod), _plan(mod, y)
    with pytest.raises(ValueError, match="convention must be one of"):
        fused.loglike(sys_, y, plan, convention="R")
    with pytest.raises(ValueError, match=r"burn must satisfy 0 <= burn < n = 100; got 100"):
        symbolic.loglike(sys_, y, plan, burn=100)
    with pytest.raises(TypeError, match="burn must be an integer"):
        fused.loglike(sys_, y, plan, burn=2.0)
