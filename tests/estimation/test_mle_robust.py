"""fit_mle from any start a user might give: the maximum or ``converged=False``.

The traps of issue 23: a small starting variance makes the gradient on the log scale vanish
(:math:`\\partial\\ell/\\partial\\log\\sigma^2 = \\sigma^2\\,\\partial\\ell/\\partial\\sigma^2`), so the
optimiser stopped at a variance near zero and called it converged (Nile from
``LocalLevel(38, 0.01)``: -648.27 against the maximum -633.4646).  Each reference model is
fitted from a grid of starts, every variance ``c`` times the data's variance for c from 1e-12
to 1e6 (all alike, and one small with the others large); each fit must reach the maximum
log-likelihood to 1e-4 and say ``converged=True``.

The maxima are independent references: D&K (2012, section 2.10) for Nile; statsmodels'
``UnobservedComponents(use_exact_diffuse=True).fit()`` (its llf is in the same convention as
ours) for the others.  One compiled likelihood per model serves every start (the graph does
not depend on the starting values).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import statsmodels.api as sm

import pymc_dlm as dlm

GRID = (1e-12, 1e-6, 1.0, 1e6)


@functools.cache
def reference(name: str):
    """(y, model builder from variances, statsmodels' maximum log-likelihood)."""
    if name == "nile":
        y = dlm.datasets.load_nile().to_numpy()
        return y, lambda v: dlm.LocalLevel(v[1] ** 0.5, v[0] ** 0.5), -633.46456
    if name == "trend_seasonal":
        rng = np.random.default_rng(23)
        n = 120
        level = np.cumsum(0.05 + np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 0.3, n))
        season = np.tile(rng.normal(0, 1.0, 12) - 0, n // 12)
        season -= np.tile(season[:12].mean(), n)
        y = level + season + rng.normal(0, 0.5, n)
        def build(v):
            return dlm.LocalLinearTrend(v[1] ** 0.5, v[2] ** 0.5, v[0] ** 0.5) + dlm.Seasonal(12, v[3] ** 0.5)
        ref = sm.tsa.UnobservedComponents(y, "lltrend", seasonal=12, use_exact_diffuse=True)
    elif name == "uk_drivers":
        df = dlm.datasets.load_uk_drivers()
        y = np.log(df["drivers_ksi"].to_numpy())
        X = df[["log_petrol_price", "seatbelt_law"]].to_numpy()
        def build(v):
            return (dlm.LocalLevel(v[1] ** 0.5, v[0] ** 0.5) + dlm.Seasonal(12, v[2] ** 0.5)
                    + dlm.Regression(X, names=["petrol", "law"]))
        # mle_regression=False: the coefficients are diffuse states, as in our Regression
        ref = sm.tsa.UnobservedComponents(y, "llevel", seasonal=12, exog=X, mle_regression=False,
                                          use_exact_diffuse=True)
    elif name == "airline":
        y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
        def build(v):
            return dlm.LocalLinearTrend(v[1] ** 0.5, v[2] ** 0.5, v[0] ** 0.5) + dlm.Seasonal(12, v[3] ** 0.5)
        ref = sm.tsa.UnobservedComponents(y, "lltrend", seasonal=12, use_exact_diffuse=True)
    fits = [ref.fit(disp=0, start_params=s) for s in (None,)]
    return y, build, max(f.llf for f in fits)


MODELS = ("nile", "trend_seasonal", "uk_drivers", "airline")


def starts(k: int):
    out = [np.full(k, c) for c in GRID]
    out += [np.where(np.arange(k) == i, 1e-10, 1.0) for i in range(k)]
    return out


@pytest.mark.parametrize("name", MODELS)
def test_every_start_reaches_the_maximum(name):
    y, build, ll_max = reference(name)
    s = float(np.var(np.diff(y)))
    k = 2 if name == "nile" else (3 if name == "uk_drivers" else 4)
    for c in starts(k):
        res = dlm.fit(build(c * s), y)

        assert res.converged, (c, res.message)
        assert res.log_likelihood == pytest.approx(ll_max, abs=1e-4), c


@pytest.mark.parametrize("shift", [None, -25.0, 12.0])
def test_formula_fit_reaches_the_maximum_from_extreme_starts(shift):
    """Issue 23: ``dlm.fit("trend + seasonal(12)", y)`` stopped 0.22 below the maximum with
    converged=True and NaN standard errors.  The formula's own (data-based) start, and every
    log-variance moved by -25 (variances e^-25 ~ 1e-11 times the start) or +12."""
    from pymc_dlm.workflow import formula_start, parse_formula

    y, _, ll_max = reference("trend_seasonal")
    init = formula_start(parse_formula("trend + seasonal(12)"), y)
    res = dlm.fit("trend + seasonal(12)", y,
                  init_params=None if shift is None else init + shift)
    assert res.converged, res.message
    assert res.log_likelihood == pytest.approx(ll_max, abs=1e-4)
    assert np.isfinite(res.estimates_bse[~res.boundary]).all()


# --- full covariance blocks: the first-order condition on the cone of PSD matrices ---------
#
# Two series whose levels share one disturbance (true level covariance (1, 0.6)(1, 0.6)', rank
# one), fitted with Q = LL' (log-Cholesky) and log observation variances.  At the maximum the
# Cholesky diagonal log L22 ("log chol[11]") runs to about -16: Q is singular, the gradient in
# psi vanishes in every direction, and only the cone condition says whether the likelihood
# would rise by adding variance along Q's null direction.  The function's compiled likelihood
# and one compiled dl/dQ serve the first three tests (cold, the five cost ~20 s).

CHOL_NAMES = ("log chol[00]", "log chol[11]", "chol[10]", "log sigma2.obs[0]",
              "log sigma2.obs[1]")


@functools.cache
def rank_one_levels():
    rng = np.random.default_rng(5)
    n = 150
    level = np.cumsum(np.outer(rng.normal(0, 1.0, n), [1.0, 0.6]), axis=0)
    return level + rng.normal(0, [1.0, 0.8], (n, 2))


def cholesky_sutse(p):
    import pytensor.tensor as pt

    L = pt.stack([pt.stack([pt.exp(p[0]), 0.0]), pt.stack([p[2], pt.exp(p[1])])])
    return dlm.SUTSE(dlm.LocalLevel(1.0), [L @ L.T], pt.diag(pt.exp(p[3:5])), series=["a", "b"])


@functools.cache
def cholesky_fit(fixed: tuple = (), start: tuple = ()):
    from pymc_dlm.estimation import fit_mle

    init = np.zeros(5)
    for name, value in start:
        init[CHOL_NAMES.index(name)] = value
    return fit_mle(cholesky_sutse, rank_one_levels(), init, param_names=CHOL_NAMES,
                   fixed=dict(fixed))


#: the trap: log L22 started at -30 (free), where its gradient is ~e^-60 and the optimiser
#: never moves it; series b's observation variance held at 0.01 makes the data want more
TRAP = dict(fixed=(("log sigma2.obs[1]", np.log(0.01)),), start=(("log chol[11]", -30.0),))


def cone(mod, min_size=2):
    """The cone conditions at a model (the private helper fit_mle calls)."""
    from pymc_dlm.estimation import mle
    from pymc_dlm.estimation.checks import data_scale
    from pymc_dlm.symbolic import diffuse_plan

    y = rank_one_levels()
    plan = diffuse_plan(np.asarray(mod.Z), np.asarray(mod.T),
                        np.diag(np.asarray(mod.diffuse, float)), ~np.isnan(y))
    moved = lambda: mod.replace(H=mod.H + 1.0, Q=mod.Q + 1.0)  # noqa: E731 - every entry free
    return mle._cone_conditions(mod, moved, y, plan, data_scale(y),
                                {"convention": "statsmodels", "burn": 0}, min_size)


def test_rank_one_level_covariance_is_a_maximum_on_the_cone():
    """At the maximum Q is singular (smallest eigenvalue < 1e-7 s) and U'GU < 0 on its null
    space, so converged=True.  Reference: statsmodels' likelihood maximised over rank-one
    level covariances Q = vv' (R = v, an independent parameterisation; Nelder-Mead), which
    contains the maximum over the cone when the condition holds: equal to 1e-6."""
    import statsmodels.api as sm

    class RankOne(sm.tsa.statespace.MLEModel):
        def __init__(self, y):
            super().__init__(y, k_states=2, k_posdef=1, initialization="diffuse")
            self["design"], self["transition"], self["state_cov"] = np.eye(2), np.eye(2), np.eye(1)

        @property
        def start_params(self):
            return np.array([1.0, 0.5, 0.0, 0.0])

        def update(self, params, **kwargs):
            params = super().update(params, **kwargs)
            self["selection"] = params[:2, None]
            self["obs_cov"] = np.diag(np.exp(params[2:]))

    res = cholesky_fit()
    ref = RankOne(rank_one_levels()).fit(disp=0, method="nm", maxiter=2000)
    assert res.converged, res.message
    assert "KKT on the covariance cone: <=" in res.message
    (check,) = cone(res.model)
    assert check.eigenvalues[0] < 1e-7 * float(np.var(np.diff(rank_one_levels(), axis=0)))
    assert check.derivative < 0
    assert res.log_likelihood == pytest.approx(ref.llf, abs=1e-6)


def test_a_singular_covariance_the_data_leave_is_not_converged():
    """Series b's observation variance held at 0.01 (its true one is 0.64) makes its level
    need its own disturbance, while log L22 started at -30 keeps Q of rank one (its gradient
    is ~e^-60: the optimiser never moves it): the gradient in the free parameters vanishes
    (what converged=True asked before), but the likelihood rises along Q's null direction
    u = (-L21, L11)/|.|: converged=False, and the message names the block and the value."""
    res = cholesky_fit(**TRAP)
    assert res.params[1] == pytest.approx(-30.0, abs=1e-3)
    assert not res.converged
    assert "Q block (0, 1) singular" in res.message
    assert "KKT on the covariance cone fails" in res.message
    (check,) = cone(res.model)
    L11, L21 = np.exp(res.params[0]), res.params[2]
    u = np.array([-L21, L11]) / np.hypot(L11, L21)
    assert abs(check.direction @ u) == pytest.approx(1.0, abs=1e-10)
    assert check.derivative > 100.0
    # the full-rank fit from the same start is far better, as the condition says
    free = cholesky_fit((("log sigma2.obs[1]", np.log(0.01)),))
    assert free.log_likelihood > res.log_likelihood + 10.0


def test_a_covariance_singular_by_design_is_not_a_boundary():
    """A rank-one parameterisation Q = l l' (and, the same, log L22 held at -30 by fixed=)
    cannot leave the singular matrices: the model is a rank-one model and its maximum is a
    maximum, whatever the data would say about a full-rank Q.  The check finds Q singular at
    parameter values far from the estimate too and leaves it alone (converged=True at the
    data-wanting-more point where the trap above is not converged); the log-likelihoods of
    the two equivalent rank-one models agree (1e-6)."""
    import pytensor.tensor as pt

    from pymc_dlm.estimation import fit_mle

    def rank_one(p):
        level = pt.stack([p[0], p[1]])
        return dlm.SUTSE(dlm.LocalLevel(1.0), [pt.outer(level, level)],
                         pt.diag(pt.stack([pt.exp(p[2]), 0.01])), series=["a", "b"])

    y = rank_one_levels()
    ll_l = fit_mle(rank_one, y, np.array([1.0, 0.5, 0.0]),
                   param_names=("l0", "l1", "log sigma2.obs[0]"))
    held = cholesky_fit(fixed=(("log chol[11]", -30.0), ("log sigma2.obs[1]", np.log(0.01))))
    for res in (ll_l, held):
        assert res.converged, res.message
        assert "covariance cone" not in res.message
    assert ll_l.log_likelihood == pytest.approx(held.log_likelihood, abs=1e-6)
    assert ll_l.log_likelihood < cholesky_fit(fixed=TRAP["fixed"]).log_likelihood - 10.0


def test_cone_derivative_is_a_central_difference_of_the_loglikelihood():
    """u'Gu from the fused engine's adjoint pass equals a central difference of the NumPy
    engine's log-likelihood along Q + eps uu', to 1e-6 relative.  At the boundary the
    likelihood bends sharply along u (the second difference is ~1e7: h = 1e-6 is 1.3e-5 off),
    so h = 1e-8: truncation ~3e-6 and rounding ~1e-5 absolute of a derivative ~2300.  The
    NumPy filter is called on the arrays, as Q - h uu' is just outside the cone (the model
    refuses it)."""
    from pymc_dlm.numeric.assemble import system_arrays
    from pymc_dlm.numeric.filter import TOL, _loglike_t

    res = cholesky_fit(**TRAP)
    (check,) = cone(res.model)
    sys, y, h = system_arrays(res.model), rank_one_levels(), 1e-8
    uu = np.outer(check.direction, check.direction)

    def ll(e):
        return _loglike_t(sys._replace(Q=sys.Q + e * uu), y, TOL).sum()

    assert check.derivative == pytest.approx((ll(h) - ll(-h)) / (2 * h), rel=1e-6)


def test_cone_condition_on_a_1x1_block_is_the_scalar_kkt_value():
    """On a 1x1 block the cone condition is the scalar one: H[1, 1] put at zero, s * dl/dH11
    from the cone's gradient equals maximize's KKT value kappa (the exact gradient of the
    log-variance at 1e-10 s, divided by it), to 1e-6 relative (the probe's offset)."""
    from pymc_dlm.estimation import mle
    from pymc_dlm.estimation.checks import data_scale

    res = cholesky_fit()
    y, s = rank_one_levels(), data_scale(rank_one_levels())
    fn = mle._compile(cholesky_sutse, y, res.params)[3]
    x = res.params.copy()
    x[4] = mle._ZERO
    free, variances = np.ones(5, bool), np.array([False, False, False, True, True])
    *_, kappa = mle._kkt(fn, x, free, variances, np.full(5, s))
    at_zero = res.model.replace(H=np.diag([res.model.H[0, 0], 0.0]))
    scalar = [c for c in cone(at_zero, min_size=1) if c.matrix == "H"]
    assert [c.index for c in scalar] == [(1,)]
    assert scalar[0].derivative * s == pytest.approx(kappa[4], rel=1e-6)


def test_the_automatic_parameterisation_restarts_a_trapped_block():
    """Handed the numeric SUTSE model with Q nearly singular (L22 = 1e-6, the trap: the
    gradient in log L22 vanishes) where the data want full rank, fit_mle's own
    log-Cholesky parameters map the failing direction back: the block restarts at the best
    of Q + c s uu' and the fit reaches the maximum found from a full-rank start with the
    hand-written Cholesky function (to 1e-6), converged."""
    from pymc_dlm.estimation import fit_mle

    trap = dlm.SUTSE(dlm.LocalLevel(1.0), [[[1.0, 0.6], [0.6, 0.36 + 1e-12]]], np.eye(2),
                     series=["a", "b"])
    res = fit_mle(trap, rank_one_levels(), fixed={"sigma2.obs[1]": 0.01})
    ref = cholesky_fit((("log sigma2.obs[1]", np.log(0.01)),))
    assert ref.converged and np.linalg.eigvalsh(ref.model.Q)[0] > 0.1
    assert res.converged, res.message
    assert "restarted with the singular block(s) inflated" in res.message
    assert res.restarts >= 1
    assert res.log_likelihood == pytest.approx(ref.log_likelihood, abs=1e-6)
