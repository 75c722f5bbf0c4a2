"""The fused Op (numba filter + adjoint gradient) against the NumPy engine, the scan graph and
finite differences, on every reference model and on each system matrix."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.gradient import verify_grad
from pytensor.graph.traversal import io_toposort

import pymc_dlm as dlm
from pymc_dlm import fused, symbolic
from pymc_dlm.fused import KalmanLoglike
from pymc_dlm.numeric import system_arrays
from pymc_dlm.symbolic import diffuse_plan, system_tensors
from reference_models import REFERENCE_MODELS

TOL = dlm.numeric.filter.TOL


class Recorder:
    """A ``v`` for the reference builders: one float64 scalar per parameter."""

    def __init__(self):
        self.vars, self.values = [], []

    def __call__(self, name, value):
        self.vars.append(pt.dscalar(name))
        self.values.append(np.float64(value))
        return self.vars[-1]


def build(name, engine, mode=None):
    mod_num, y = REFERENCE_MODELS[name]()
    y = np.asarray(y, float).reshape(len(y), -1)
    rec = Recorder()
    mod_sym, _ = REFERENCE_MODELS[name](rec)
    s = system_arrays(mod_num)
    plan = diffuse_plan(s.Z, s.T, s.P1inf, ~np.isnan(y))
    ll_t = engine.loglike_t(system_tensors(mod_sym), y, plan)
    total = pt.sum(ll_t)
    grad = pt.grad(total, rec.vars)
    fn = pytensor.function(rec.vars, [ll_t, *grad], mode=mode)
    return mod_num, y, rec, fn


@pytest.fixture(scope="module", params=list(REFERENCE_MODELS))
def case(request):
    return request.param, build(request.param, fused)


def test_loglike_equals_numpy_engine(case):
    _, (mod_num, y, rec, fn) = case
    ref = dlm.kalman_filter(mod_num, y)
    got = fn(*rec.values)[0]
    np.testing.assert_allclose(got.sum(), ref.llf, rtol=1e-10)
    np.testing.assert_allclose(got, ref.llf_t, rtol=1e-10, atol=1e-10)


def test_gradient_matches_central_differences(case):
    # away from the reference values (Nile's are the MLE, where the gradient vanishes)
    name, (mod_num, y, rec, fn) = case
    point = [1.2 * x for x in rec.values]
    grad = np.array(fn(*point)[1:])
    num = np.empty_like(grad)
    for i, x in enumerate(point):
        h = 1e-6 * max(1.0, abs(x))
        up = [*point[:i], x + h, *point[i + 1:]]
        dn = [*point[:i], x - h, *point[i + 1:]]
        num[i] = (fn(*up)[0].sum() - fn(*dn)[0].sum()) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6 * np.abs(grad).max())


def test_value_and_gradient_equal_the_scan_graph():
    _, y, rec, fn_fused = build("nile", fused)
    _, _, _, fn_scan = build("nile", symbolic)
    point = [1.3 * x for x in rec.values]
    a, b = fn_fused(*point), fn_scan(*point)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10)
    np.testing.assert_allclose(a[1:], b[1:], rtol=1e-9)


# --- the Op on each matrix: time-varying Z and Q, correlated H, missing values -----------
def _system(rng, n=15, p=2, m=3, r=2):
    def spd(k):
        A = rng.standard_normal((k, k))
        return A @ A.T / k + np.eye(k)

    y = rng.standard_normal((n, p))
    y[2, 0] = y[5] = y[9, p - 1] = np.nan
    return dict(
        y=y, Z=rng.standard_normal((n, p, m)), d=rng.standard_normal((1, p)), H=spd(p)[None],
        T=0.5 * rng.standard_normal((1, m, m)), c=rng.standard_normal((n, m)),
        R=rng.standard_normal((1, m, r)), Q=np.stack([spd(r) for _ in range(n)]),
        a1=rng.standard_normal(m), P1=spd(m),
    )


@pytest.mark.parametrize("which", ["y", "Z", "d", "H", "T", "c", "R", "Q", "a1", "P1"])
def test_op_gradient_on_each_matrix(which):
    rng = np.random.default_rng(7)
    vals = _system(rng)
    names = list(vals)

    def total(x):
        args = [x if k == which else vals[k] for k in names]
        return KalmanLoglike(TOL)(*args)[0].sum()

    x0 = vals[which]
    if which == "y":
        x0 = np.where(np.isnan(x0), 0.3, x0)  # finite differences need numbers; NaN stays NaN
        keep = np.isnan(vals["y"])

        def total(x):  # noqa: F811 - y with the same missing pattern
            args = [pt.where(keep, np.nan, x) if k == "y" else vals[k] for k in names]
            return KalmanLoglike(TOL)(*args)[0].sum()

    verify_grad(total, [x0], rng=rng, abs_tol=1e-6, rel_tol=1e-6, eps=1e-7)


@pytest.mark.parametrize("size", [dict(p=2, m=3, r=2), dict(p=1, m=1, r=1)],
                         ids=["general", "scalar"])
def test_op_matches_numpy_filter_from_a_proper_start(size):
    rng = np.random.default_rng(3)
    v = _system(rng, **size)
    ll = KalmanLoglike(TOL)(*v.values())[0].eval()
    mod = dlm.StateSpaceModel(Z=v["Z"], d=v["d"][0], H=v["H"][0], T=v["T"][0], c=v["c"],
                              R=v["R"][0], Q=v["Q"], a1=v["a1"], P1=v["P1"])
    np.testing.assert_allclose(ll, dlm.kalman_filter(mod, v["y"]).llf_t, rtol=1e-12)


def test_non_pd_F_gives_minus_inf_and_zero_gradient():
    s = pt.dvector("s")
    y = dlm.datasets.load_nile().to_numpy()[:, None]
    plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    # H = -s0**2 < 0 makes F_t = P_t + H negative once P_t has settled
    sys = system_tensors(dlm.StateSpaceModel(Z=[[1.0]], T=[[1.0]], H=pt.reshape(-(s[0] ** 2), (1, 1)),
                                             Q=pt.reshape(s[1] ** 2, (1, 1)), diffuse=[True]))
    total = fused.loglike(sys, y, plan)
    fn = pytensor.function([s], [total, pt.grad(total, s)])
    val, grad = fn(np.array([100.0, 1.0]))
    assert val == -np.inf
    np.testing.assert_array_equal(grad, 0.0)


def test_op_is_compiled_by_numba_not_object_mode():
    import warnings

    rng = np.random.default_rng(0)
    v = _system(rng)
    x = pt.dmatrix("Z0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # object-mode fallback warns
        out = KalmanLoglike(TOL)(v["y"], x[None], *list(v.values())[2:])[0].sum()
        fn = pytensor.function([x], [out, pt.grad(out, x)], mode="NUMBA")
        fn(v["Z"][0])
    kinds = {type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes}
    assert {"KalmanLoglike", "KalmanLoglikeGrad"} <= kinds


def test_one_state_nodes_use_the_small_callbacks_under_their_own_cache_key():
    """A node whose static shapes say m = p = r = 1 calls the one-state callbacks
    (native._c_filter1, _c_grad1); a node of unknown shapes the general ones, which take the
    same scalar path at run time.  Same numbers, bit for bit; and PyTensor's on-disk cache
    keys differ, so it can never hand one node's machine code to the other."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    from pymc_dlm.fused.op import _one_state

    v = _system(np.random.default_rng(5), n=30, p=1, m=1, r=1)
    h, y = pt.dscalar("h"), pt.dmatrix("y")
    H = h[None, None, None] + v["H"]
    rest = [H if k == "H" else v[k] for k in list(v)[1:]]
    one = KalmanLoglike(TOL)(v["y"], *rest)[0].sum()
    general = KalmanLoglike(TOL)(y, *rest)[0].sum()
    nodes = [x.owner.inputs[0].owner for x in (one, general)]
    assert [_one_state(node) for node in nodes] == [True, False]
    keys = {numba_funcify_and_cache_key(node.op, node=node)[1] for node in nodes}
    assert len(keys) == 2
    f1 = pytensor.function([h], [one, pt.grad(one, h)], mode="NUMBA")
    f2 = pytensor.function([h, y], [general, pt.grad(general, h)], mode="NUMBA")
    np.testing.assert_array_equal(f1(0.1), f2(0.1, v["y"]))
    assert np.isfinite(f1(0.1)).all()


# --- the diffuse-steps Op: each matrix, time-varying, missing rows, non-diffuse rows --------
def _diffuse_system(rng, n=4, p=2, m=3, r=2):
    def spd(k):
        A = rng.standard_normal((k, k))
        return A @ A.T / k + np.eye(k)

    y = rng.standard_normal((n, p))
    y[0, 1] = np.nan  # the diffuse period then takes two steps
    P1inf = np.diag([1.0, 0.0, 1.0])
    P1 = np.zeros((m, m))
    P1[1, 1] = 2.0
    return dict(
        y=y, Z=rng.standard_normal((n, p, m)), d=rng.standard_normal((1, p)),
        H=np.diag(rng.uniform(0.5, 2.0, p))[None], T=0.7 * rng.standard_normal((n, m, m)),
        c=rng.standard_normal((1, m)), R=rng.standard_normal((1, m, r)),
        Q=np.stack([spd(r) for _ in range(n)]), a1=rng.standard_normal(m), P1=P1,
    ), P1inf


@pytest.mark.parametrize("which", ["y", "Z", "d", "H", "T", "c", "R", "Q", "a1", "P1"])
def test_diffuse_op_gradient_on_each_matrix(which):
    """verify_grad of a weighted sum of the per-step log-likelihoods of the Op with a diffuse
    plan: two diffuse steps (a diffuse and an ordinary row, a missing one), then the filter,
    so the gradient flows back through both adjoint passes."""
    from pymc_dlm.fused import plan_arrays

    rng = np.random.default_rng(11)
    vals, P1inf = _diffuse_system(rng, n=7)
    plan = diffuse_plan(vals["Z"], vals["T"], P1inf, ~np.isnan(vals["y"]))
    assert plan.n_steps >= 2 and any(not f for s in plan.steps for _, f in s)
    rows, flags = plan_arrays(plan, 2)
    names = list(vals)
    w = rng.standard_normal(7)
    keep = np.isnan(vals["y"])

    def total(x):
        args = [x if k == which else vals[k] for k in names]
        if which in ("H", "Q", "P1"):  # symmetric inputs
            args[names.index(which)] = 0.5 * (x + pt.swapaxes(x, -1, -2))
        if which == "y":  # the same missing pattern; finite differences need numbers
            args[0] = pt.where(keep, np.nan, x)
        ll = KalmanLoglike(TOL, 1e-10)(*args, P1inf, rows, flags)[0]
        return (ll * w).sum()

    x0 = np.where(keep, 0.3, vals["y"]) if which == "y" else vals[which]
    verify_grad(total, [x0], rng=rng, abs_tol=1e-6, rel_tol=1e-6, eps=1e-7)


def test_diffuse_op_equals_the_symbolic_diffuse_steps():
    """The Op with a diffuse plan gives the log-likelihoods of the symbolic engine's
    written-out diffuse steps followed by the Op from their a_{d+1}, P_{d+1}."""
    from pymc_dlm.fused import plan_arrays
    from pymc_dlm.symbolic.filter import diffuse_steps
    from pymc_dlm.symbolic.assemble import SystemTensors

    vals, P1inf = _diffuse_system(np.random.default_rng(5), n=7)
    plan = diffuse_plan(vals["Z"], vals["T"], P1inf, ~np.isnan(vals["y"]))
    nd = plan.n_steps
    ll = KalmanLoglike(TOL, 1e-10)(*vals.values(), P1inf, *plan_arrays(plan, 2))[0]
    const = ("d", "H", "c", "R")  # leading time axis of 1: constant matrices
    sys = SystemTensors(**{k: pt.as_tensor_variable(v[0] if k in const else v)
                           for k, v in vals.items() if k != "y"}, P1inf=P1inf)
    _, a_ref, P_ref, parts = diffuse_steps(sys, vals["y"], plan, h_diagonal=True)
    rest = {k: (v if k in const else v[nd:]) for k, v in vals.items() if k not in ("a1", "P1")}
    ll_rest = KalmanLoglike(TOL)(*rest.values(), a_ref, P_ref)[0]
    np.testing.assert_allclose(ll.eval(), pt.concatenate([*parts, ll_rest]).eval(), rtol=1e-12)


def test_thirteen_diffuse_states_fused_equals_scan():
    """Trend + seasonal (13 diffuse states): value and gradient of both engines agree."""
    _, y, rec, fn_fused = build("trend_seasonal", fused)
    _, _, _, fn_scan = build("trend_seasonal", symbolic, Mode(linker="py", optimizer="fast_compile"))  # see test_scan_filter
    point = [1.3 * x for x in rec.values]
    a, b = fn_fused(*point), fn_scan(*point)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a[1:], b[1:], rtol=1e-8)


def test_a_symbolic_but_structurally_diagonal_h_uses_the_diffuse_op():
    """H = diag(s^2) with s symbolic: the exact diffuse steps run in the numba Op (not
    written out symbolically) and the log-likelihood and gradient equal the NumPy engine
    and the symbolic diffuse steps; a full symbolic H keeps the symbolic path."""

    rng = np.random.default_rng(8)
    S = 3
    sd_obs = np.array([1.0, 1.5, 0.7])
    num = dlm.StateSpaceModel(Z=np.eye(S), T=np.eye(S), R=np.eye(S), Q=np.eye(S) * 0.3,
                              H=np.diag(sd_obs**2))
    y = dlm.simulate(num.replace(P1=np.eye(S), diffuse=[False] * S), 40, rng=rng)[0]
    y[3, 1] = np.nan
    s = pt.dvector("s")
    sym = num.replace(H=pt.diag(s**2))
    sys = system_tensors(sym)
    plan = diffuse_plan(np.eye(S), np.eye(S), np.eye(S), ~np.isnan(y))
    ll = fused.loglike(sys, y, plan)

    def planned_steps(out):  # the diffuse steps planned inside the Op
        [node] = [n for n in io_toposort([s], [out]) if isinstance(n.op, KalmanLoglike)]
        return node.inputs[11].eval().shape[0]

    assert planned_steps(ll) == plan.n_steps > 0
    ref = fused.loglike(sys, y, plan, h_diagonal=False)  # the symbolic diffuse steps
    f = pytensor.function([s], [ll, pt.grad(ll, s)])
    g = pytensor.function([s], [ref, pt.grad(ref, s)], mode=Mode(linker="py", optimizer="fast_compile"))
    got, want = f(sd_obs), g(sd_obs)
    assert got[0] == pytest.approx(dlm.loglike(num, y), rel=1e-12)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9)
    full = fused.loglike(system_tensors(num.replace(H=pt.outer(s, s) + pt.eye(S))), y, plan)
    assert planned_steps(full) == 0


def test_one_state_loops_equal_the_general_loops_and_finite_differences():
    """m = p = r = 1 runs scalar loops (adjoint._forward_scalar/_backward_scalar).  The same
    system with a second, unloaded disturbance (R = [r, 0], Q = diag(q, 1): the same R Q R')
    runs the general loops; values and gradients agree, and verify_grad checks every matrix
    of the scalar one at once (time-varying Z, c, Q; missing values; proper start)."""
    from pymc_dlm.numeric.adjoint import loglike_and_grad

    rng = np.random.default_rng(11)
    v = _system(rng, n=40, p=1, m=1, r=1)
    names = list(v)
    ll1, g1 = loglike_and_grad(*v.values(), TOL)
    wide = dict(v, R=np.concatenate([v["R"], np.zeros_like(v["R"])], axis=2),
                Q=np.stack([np.diag([q[0, 0], 1.0]) for q in v["Q"]]))
    ll2, g2 = loglike_and_grad(*wide.values(), TOL)
    np.testing.assert_allclose(ll1, ll2, rtol=1e-14)
    for k in names:
        want = g2[k][:, :, :1] if k == "R" else g2[k][:, :1, :1] if k == "Q" else g2[k]
        np.testing.assert_allclose(g1[k], want, rtol=1e-12, atol=1e-14, err_msg=k)
    keep = np.isnan(v["y"])
    x0 = [np.where(keep, 0.3, v["y"])] + [v[k] for k in names[1:]]

    def total(*xs):
        return KalmanLoglike(TOL)(pt.where(keep, np.nan, xs[0]), *xs[1:])[0].sum()

    verify_grad(total, x0, rng=rng, abs_tol=1e-6, rel_tol=1e-6, eps=1e-7)


def test_one_state_diffuse_steps_equal_the_general_steps_and_finite_differences():
    """m = p = r = 1 runs the whole series on scalars (adjoint_series: the diffuse steps in
    adjoint_diffuse.scalar_forward/scalar_backward, then the scalar filter loops).  Plan: an
    ordinary row (Z_1 = 0), a missing step, then the diffuse row; two regular steps follow.
    Against the general code (a second, unloaded disturbance: the same R Q R'), forward and
    backward over the whole series, and verify_grad of the Op on every input at once, y
    included."""
    from pymc_dlm.fused import plan_arrays
    from pymc_dlm.numeric.adjoint_series import series_backward, series_forward

    rng = np.random.default_rng(2)
    n = 3
    vals = dict(y=np.array([[0.4], [np.nan], [1.3], [0.7], [-0.2]]),
                Z=np.array([0.0, 0.8, 1.2, 1.0, 0.9])[:, None, None],
                d=np.array([[0.3]]), H=np.array([[[0.7]]]),
                T=np.array([0.9, 1.1, 0.8, 1.0, 0.7])[:, None, None], c=np.array([[0.2]]),
                R=np.array([[[1.3]]]), Q=np.array([0.5, 0.6, 0.4, 0.3, 0.8])[:, None, None],
                a1=np.array([0.1]), P1=np.array([[0.0]]))
    P1inf = np.eye(1)
    plan = diffuse_plan(vals["Z"], vals["T"], P1inf, ~np.isnan(vals["y"]))
    assert plan.n_steps == n and [list(s) for s in plan.steps] == [[(0, False)], [], [(0, True)]]
    rows, flags = plan_arrays(plan, 1)
    wide = dict(vals, R=np.concatenate([vals["R"], np.zeros_like(vals["R"])], axis=2),
                Q=np.stack([np.diag([q[0, 0], 1.0]) for q in vals["Q"]]))
    N = len(vals["y"])
    llbar = rng.standard_normal(N)
    got = {}
    for name, v in (("scalar", vals), ("general", wide)):
        out = np.empty(N), np.empty((N - n, 1)), np.empty((N - n, 1, 1))
        assert series_forward(*v.values(), P1inf, rows, flags, TOL, 1e-10, *out) == -1
        grads = [np.full(x.shape, np.nan) for x in v.values()]
        series_backward(*v.values(), P1inf, rows, flags, TOL, 1e-10, *out, llbar, True, True,
                        *grads)
        got[name] = (*out, *grads)
    for k, (x1, x2) in enumerate(zip(got["scalar"], got["general"], strict=True)):
        want = x2[:, :, :1] if k == 9 else x2[:, :1, :1] if k == 10 else x2  # R, Q
        np.testing.assert_allclose(x1, want, rtol=1e-12, atol=1e-14, err_msg=str(k))
    w = rng.standard_normal(len(vals["y"]))
    keep = np.isnan(vals["y"])

    def total(*xs):
        ll = KalmanLoglike(TOL, 1e-10)(pt.where(keep, np.nan, xs[0]), *xs[1:], P1inf, rows,
                                        flags)[0]
        return (ll * w).sum()

    x0 = [np.where(keep, 0.3, vals["y"])] + [vals[k] for k in list(vals)[1:]]
    verify_grad(total, x0, rng=rng, abs_tol=1e-6, rel_tol=1e-6, eps=1e-7)


def test_strided_views_as_inputs_give_the_same_numbers():
    """The numba wrappers pass arrays to the kernels by address: a strided view (here Z as a
    transpose, T as every other slice) must be made contiguous first, contiguous ones are not
    copied."""
    rng = np.random.default_rng(4)
    v = _system(rng)
    Zt = pt.dtensor3("Zt")  # (n, m, p): Z is its transpose, a strided view inside the graph
    Tb = pt.dtensor3("Tb")  # (2, m, m): T is Tb[::2]
    args = [Zt.transpose(0, 2, 1) if k == "Z" else Tb[::2] if k == "T" else v[k] for k in v]
    ll = KalmanLoglike(TOL)(*args)[0].sum()
    fn = pytensor.function([Zt, Tb], [ll, *pt.grad(ll, [Zt, Tb])], mode="NUMBA")
    Tb_val = np.concatenate([v["T"], np.full_like(v["T"], 9.0)])
    got = fn(np.ascontiguousarray(v["Z"].transpose(0, 2, 1)), Tb_val)
    ll_ref, g = dlm.numeric.adjoint.loglike_and_grad(*v.values(), TOL)
    np.testing.assert_allclose(got[0], ll_ref.sum(), rtol=1e-13)
    np.testing.assert_allclose(got[1], g["Z"].transpose(0, 2, 1), rtol=1e-12)
    np.testing.assert_allclose(got[2][0], g["T"][0], rtol=1e-12)
    np.testing.assert_array_equal(got[2][1], 0.0)


def test_the_gradient_of_a_constant_T_or_Z_is_not_computed():
    """A model whose T (Z) is a constant gets KalmanLoglikeGrad(grad_T=False) (grad_Z=False):
    the other gradients are those of the full adjoint pass, bit for bit, T's (Z's) is zero
    (nobody can ask for it).  An expression of constants is differentiable (pt.grad may ask
    for it), so it gets grad_T=True."""
    from pymc_dlm.fused import KalmanLoglikeGrad
    from pymc_dlm.numeric.adjoint import filter_moments, gradients

    rng = np.random.default_rng(8)
    v = _system(rng)
    args = [np.ascontiguousarray(x) for x in v.values()]
    moments = filter_moments(*args, TOL)
    full = gradients(*args, *moments, np.ones(len(v["y"])), TOL, True, True)
    for skip in (1, 4):  # Z, T
        part = gradients(*args, *moments, np.ones(len(v["y"])), TOL, skip != 4, skip != 1)
        for k, (a, b) in enumerate(zip(full, part, strict=True)):
            if k == skip:
                assert np.abs(a).max() > 0
                np.testing.assert_array_equal(b, 0.0)
            else:
                np.testing.assert_array_equal(a, b)
    Q = pt.dtensor3("Q")
    Texpr = pt.as_tensor_variable(v["T"]) * 1.0
    Tvar = pt.dtensor3("T")
    for T, want in ((v["T"], False), (Texpr, True), (Tvar, True)):
        wrt = [Q] + ([T] if want else [])
        ll = KalmanLoglike(TOL)(*[T if k == "T" else Q if k == "Q" else v[k] for k in v])[0].sum()
        ins = [Q] + ([Tvar] if T is Tvar else [])
        fn = pytensor.function(ins, pt.grad(ll, wrt), mode="NUMBA")
        ops = [n.op for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, KalmanLoglikeGrad)]
        assert [(op.grad_T, op.grad_Z) for op in ops] == [(want, False)]
        got = fn(*[v["Q"]] + ([v["T"]] if T is Tvar else []))
        np.testing.assert_allclose(got[0], full[7], rtol=1e-12)
        if want:  # the gradient with respect to T, a variable or an intermediate expression
            np.testing.assert_allclose(got[1], full[4], rtol=1e-12)


def test_steady_state_steps_are_differentiated_as_the_forward_pass_ran_them():
    """After the Riccati recursion converges the forward pass reuses one step's F, M and
    Cholesky factors (adjoint._forward_loop); the adjoint pass differentiates those steps as
    run (P frozen, the adjoints of that step's F and M summed: adjoint.steady_sources).  Three
    steady runs (a partly and a fully missing step end the first two); time-varying d and c;
    per-step weights.  The gradient equals the full recursion's (steady state switched off)
    to rounding: the two functions differ by ~8 ulps of P."""
    from pymc_dlm.numeric.adjoint import (
        STEADY_TOL,
        loglike_backward,
        loglike_forward,
        steady_sources,
    )

    rng = np.random.default_rng(21)
    n, p, m, r = 600, 2, 4, 2
    T = np.array([[0.9, 0.2, 0.0, 0.0], [0.0, 0.7, 0.0, 0.0], [0.0, 0.0, 0.5, -0.3],
                  [0.0, 0.0, 1.0, 0.0]])[None]
    Z = rng.standard_normal((1, p, m))
    R = rng.standard_normal((1, m, r))
    A = rng.standard_normal((p, p))
    H, Q = (A @ A.T + np.eye(p))[None], np.diag([0.5, 1.5])[None]
    d, c = 0.1 * rng.standard_normal((n, p)), 0.1 * rng.standard_normal((n, m))
    y = rng.standard_normal((n, p))
    y[120, 1] = np.nan
    y[300] = np.nan
    a1, P1 = rng.standard_normal(m), 3.0 * np.eye(m)
    llbar = rng.uniform(0.5, 1.5, n)
    out = {}
    for tol in (STEADY_TOL, -1.0):
        llf, a_pred, P_pred = np.empty(n), np.empty((n, m)), np.empty((n, m, m))
        assert loglike_forward(y, Z, d, H, T, c, R, Q, a1, P1, TOL, tol, a_pred, P_pred,
                               llf) == -1
        g = [np.zeros_like(x) for x in (y, Z, d, H, T, c, R, Q)]
        ga1, gP1 = loglike_backward(y, Z, d, H, T, c, R, Q, a_pred, P_pred, TOL, llbar, *g,
                                    True, True, tol)
        out[tol] = llf, [*g, ga1, gP1], steady_sources(y, Z, H, T, R, Q, P_pred, tol)
    (llf1, g1, src), (llf2, g2, none) = out[STEADY_TOL], out[-1.0]
    runs = set(src[src >= 0].tolist())
    assert len(runs) == 3 and (src >= 0).sum() > 300 and (none < 0).all()
    np.testing.assert_allclose(llf1, llf2, rtol=1e-12)
    for name, x1, x2 in zip("y Z d H T c R Q a1 P1".split(), g1, g2, strict=True):
        np.testing.assert_allclose(x1, x2, rtol=0, atol=1e-10 * np.abs(x2).max(), err_msg=name)
