"""The scan filter (symbolic engine) against the NumPy engine on every reference model, its
gradient against finite differences, and its handling of numerical trouble."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.gradient import verify_grad

import pymc_dlm as dlm
from pymc_dlm.numeric import system_arrays
from pymc_dlm.symbolic import DiffusePlan, diffuse_plan, leaves, loglike, loglike_t, system_tensors
from reference_models import REFERENCE_MODELS, nile


class Recorder:
    """The ``v`` of the symbolic engine: one named float64 scalar per parameter."""

    def __init__(self):
        self.vars, self.values = [], []

    def __call__(self, name, value):
        var = pt.dscalar(name)
        self.vars.append(var)
        self.values.append(np.float64(value))
        return var


PYTHON_MODE = Mode(linker="py", optimizer="fast_compile")


def mode_for(name):
    """Nile runs through PyTensor's default (numba) backend; the other reference models through
    the Python linker (``Mode(linker="py")``): the same graph and float64 arithmetic, without minutes of
    numba compilation per graph (the scan engine is the reference; the fused engine is the
    compiled default, tested on every model in tests/fused)."""
    return None if name == "nile" else PYTHON_MODE


def build(name):
    """(numeric model, y (n, p), params, values, compiled llf_t(params..., y))."""
    mod_num, y = REFERENCE_MODELS[name]()
    y = np.asarray(y, float).reshape(len(y), -1)
    rec = Recorder()
    mod_sym, _ = REFERENCE_MODELS[name](rec)
    sys_num = system_arrays(mod_num)
    nd = diffuse_plan(sys_num.Z, sys_num.T, sys_num.P1inf, ~np.isnan(y))
    yv = pt.dmatrix("y")
    ll_t = loglike_t(system_tensors(mod_sym), yv, nd)
    fn = pytensor.function([*rec.vars, yv], ll_t, mode=mode_for(name))
    return mod_num, y, rec, nd, fn, mod_sym


@pytest.fixture(scope="module", params=list(REFERENCE_MODELS))
def case(request):
    return build(request.param)


def test_loglike_equals_numpy_engine(case):
    mod_num, y, rec, nd, fn, _ = case
    ref = dlm.kalman_filter(mod_num, y)
    assert nd.n_steps == ref.n_diffuse
    got = fn(*rec.values, y)
    np.testing.assert_allclose(got.sum(), ref.llf, rtol=1e-10)
    np.testing.assert_allclose(got, ref.llf_t, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["nile", "bivariate", "ar2"])
def test_gradient_matches_finite_differences(name):
    mod_num, y, rec, nd, _, _ = build(name)
    rng = np.random.default_rng(0)

    def total(*params):
        mod, _ = REFERENCE_MODELS[name](_Subst(params))
        return loglike(system_tensors(mod), y, nd)

    # away from the reference values (Nile's are the MLE, where the gradient vanishes)
    point = [np.float64(x * 1.2) for x in rec.values]
    verify_grad(total, point, rng=rng, abs_tol=1e-6, rel_tol=1e-5, eps=1e-7, mode=mode_for(name))


class _Subst:
    """A ``v`` that hands out given tensors in order (what verify_grad passes in)."""

    def __init__(self, params):
        self.params = iter(params)

    def __call__(self, name, value):
        return next(self.params)


def test_nile_value_and_substituted_leaves():
    s_level, s_obs = pt.dscalar("s_level"), pt.dscalar("s_obs")
    mod = dlm.LocalLevel(s_level, s_obs)
    found = leaves(mod)
    assert len(found) == 2  # the variances s_obs^2 (H) and s_level^2 (Q), in matrix order
    y = dlm.datasets.load_nile().to_numpy()[:, None]
    plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    ll = loglike(system_tensors(mod), y, plan)
    assert float(ll.eval({s_level: 1469.1**0.5, s_obs: 15099**0.5})) == pytest.approx(-633.4646, abs=1e-4)
    subs = {id(found[0]): pt.constant(15099.0), id(found[1]): pt.constant(1469.1)}
    assert float(loglike(system_tensors(mod, subs), y, plan).eval()) == pytest.approx(-633.4646, abs=1e-4)


def test_non_pd_F_gives_minus_inf_not_nan():
    y = np.array([[1.0, 2.0], [0.5, 0.1], [0.2, 0.3]])
    h = pt.dscalar("h")
    mod = dlm.StateSpaceModel(Z=np.eye(2), T=np.eye(2), Q=np.eye(2), H=[[1.0, h], [h, 1.0]],
                              P1=np.eye(2))
    ll = loglike(system_tensors(mod), y, diffuse_plan(np.eye(2), np.eye(2), np.zeros((2, 2)), y > 0))
    f = pytensor.function([h], ll)
    assert np.isfinite(f(0.5))
    assert f(5.0) == -np.inf
    univ = dlm.StateSpaceModel(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], H=[[h]], P1=[[0.0]])
    g = pytensor.function([h], loglike(system_tensors(univ), y[:, :1], DiffusePlan(())))
    assert g(-1.0) == -np.inf


def test_diffuse_plan_matches_numpy_engine_with_missing_values():
    mod, y = REFERENCE_MODELS["trend_seasonal"]()
    y = y.copy()
    y[2:5] = np.nan
    s = system_arrays(mod)
    plan = diffuse_plan(s.Z, s.T, s.P1inf, ~np.isnan(y)[:, None])
    assert plan.n_steps == dlm.kalman_filter(mod, y).n_diffuse >= 13 + 3
    assert plan.steps[2] == plan.steps[3] == ()
    assert sum(d for rows in plan.steps for _, d in rows) == 13
    assert diffuse_plan(s.Z, s.T, s.P1inf, np.zeros((7, 1), bool)).n_steps == 7


def test_y_must_be_two_dimensional():
    mod, y = nile()
    with pytest.raises(ValueError, match=r"y must be \(n, p\)"):
        loglike_t(system_tensors(mod), y, diffuse_plan(np.eye(1), np.eye(1), np.eye(1), y[:, None] > 0))
