"""The initial state one step before the first observation (a0, P0): a1 = T a0 + c and
P1 = T P0 T' + R Q R' (Shumway and Stoffer 2017, section 6.2; R dlm's m0/C0), numeric and
symbolic, moving with Q."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

import pymc_dlm as dlm
from pymc_dlm.symbolic import leaves, system_tensors


def _llt_before():
    return dlm.LocalLinearTrend(1.0, 0.5, 2.0).replace(c=[0.3, -0.1], a0=[1.0, 2.0],
                                                       P0=[[2.0, 0.5], [0.5, 1.0]])


def test_propagated_moments():
    mod = _llt_before()
    T, R, Q = np.asarray(mod.T), np.asarray(mod.R), np.asarray(mod.Q)
    np.testing.assert_allclose(mod.a1, T @ [1.0, 2.0] + [0.3, -0.1], rtol=1e-15)
    np.testing.assert_allclose(mod.P1, T @ mod.P0 @ T.T + R @ Q @ R.T, rtol=1e-15)
    assert mod.diffuse == (False, False) and mod.stationary == (False, False)


def test_replace_moves_p1_with_q_and_a1_switches_back():
    mod = _llt_before()
    moved = mod.replace(Q=np.diag([4.0, 9.0]))
    np.testing.assert_allclose(moved.P1 - mod.P1, np.diag([3.0, 8.75]), rtol=1e-14)
    np.testing.assert_array_equal(moved.a0, mod.a0)
    back = mod.replace(a1=[0.0, 0.0], P1=np.eye(2))
    assert back.a0 is None and back.P0 is None
    np.testing.assert_array_equal(back.replace(Q=np.eye(2)).P1, np.eye(2))


def test_time_varying_t_uses_the_first_step():
    T = np.stack([np.eye(1) * 0.5, np.eye(1) * 2.0, np.eye(1) * 3.0])
    mod = dlm.StateSpaceModel(Z=[[1.0]], T=T, Q=[[1.0]], H=[[1.0]], a0=[2.0], P0=[[4.0]])
    assert mod.a1[0] == 1.0 and mod.P1[0, 0] == 0.5 * 4.0 * 0.5 + 1.0


def test_symbolic_entries_propagate_in_the_graph():
    s, p0 = pt.dscalar("s"), pt.dscalar("p0")
    mod = dlm.LocalLevel(s, 3.0).replace(a0=[1.0], P0=[[p0]])
    assert not mod.is_numeric
    P1 = system_tensors(mod).P1.eval({s: 2.0, p0: 5.0})
    assert P1[0, 0] == pytest.approx(5.0 + 4.0)
    found = leaves(mod)
    assert any(x is p0 for x in found)
    num = mod.substitute({id(x): v for x, v in zip(found, [4.0, 5.0] if found[0] is not p0
                                                     else [5.0, 4.0], strict=True)})
    assert num.is_numeric and num.P1[0, 0] == pytest.approx(9.0) and num.P0[0, 0] == 5.0


def test_loglike_is_the_marginal_of_alpha_0():
    """A local level with alpha_0 ~ N(a0, P0) equals the model started at t = 1 with
    a1 = a0, P1 = P0 + Q (closed form of one step), in both engines."""
    from pymc_dlm import fused
    from pymc_dlm.numeric import system_arrays
    from pymc_dlm.symbolic import diffuse_plan

    y = dlm.datasets.load_nile().to_numpy()
    before = dlm.LocalLevel(38.0, 120.0).replace(a0=[1000.0], P0=[[1e4]])
    at_one = dlm.LocalLevel(38.0, 120.0).replace(a1=[1000.0], P1=[[1e4 + 38.0 ** 2]],
                                                 diffuse=[False])
    assert dlm.loglike(before, y) == pytest.approx(dlm.loglike(at_one, y), rel=1e-14)
    s = system_arrays(before)
    plan = diffuse_plan(s.Z, s.T, s.P1inf, np.ones((100, 1), bool))
    ll = fused.loglike(system_tensors(before), y[:, None], plan).eval()
    assert ll == pytest.approx(dlm.loglike(at_one, y), rel=1e-12)


def test_composition_stacks_a0_and_p0():
    a = dlm.LocalLevel(1.0, 1.0).replace(a0=[1.0], P0=[[2.0]])
    b = dlm.Seasonal(4, 0.5).replace(a0=[0.0, 0.0, 0.0], P0=np.eye(3))
    ab = a + b
    np.testing.assert_array_equal(ab.a0, [1.0, 0.0, 0.0, 0.0])
    assert ab.P0.shape == (4, 4) and ab.P1.shape == (4, 4)
    with pytest.raises(ValueError, match="cannot add a model whose initial state is one step"):
        _ = a + dlm.Seasonal(4, 0.5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(a1=[0.0], P1=[[1.0]]), "not both"),
    (dict(diffuse=[True]), "no state can be diffuse or stationary"),
    (dict(P0=[[1.0, 0.0]]), r"P0 must be \(m, m\) = \(1, 1\)"),
    (dict(P0=[[-1.0]]), "P0 must have non-negative variances"),
])
def test_bad_initial_states(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dlm.StateSpaceModel(Z=[[1.0]], T=[[1.0]], Q=[[1.0]], a0=[0.0], **kwargs)
