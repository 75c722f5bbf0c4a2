"""The formula cycle's period and damping estimated: ``cycle(period?, damping?)``."""

import numpy as np
import pytest

import pymc_dlm as dlm

PERIOD, RHO, S2_CYCLE, S2_OBS = 20.0, 0.9, 1.0, 0.5


def _simulate(n: int = 300, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = 2.0 * np.pi / PERIOD
    T = RHO * np.array([[np.cos(lam), np.sin(lam)], [-np.sin(lam), np.cos(lam)]])
    a = rng.normal(size=2) * np.sqrt(S2_CYCLE / (1.0 - RHO**2))
    y = np.empty(n)
    for t in range(n):
        y[t] = a[0] + rng.normal() * np.sqrt(S2_OBS)
        a = T @ a + rng.normal(size=2) * np.sqrt(S2_CYCLE)
    return y


@pytest.fixture(scope="module")
def cycle_fit():
    y = _simulate()
    return y, dlm.fit("cycle(15?, 0.7?)", y)


def test_fit_recovers_the_period_and_damping(cycle_fit):
    _, res = cycle_fit
    e = res.estimates
    assert res.converged
    assert res.param_names == ("log sigma2.cycle", "log(x-2) period.cycle", "logit rho.cycle",
                               "log sigma2.obs")
    assert abs(e["period.cycle"] - PERIOD) < 2.0 and abs(e["rho.cycle"] - RHO) < 0.1
    assert 0.5 < e["sigma2.cycle"] / S2_CYCLE < 2.0 and 0.3 < e["sigma2.obs"] / S2_OBS < 2.0


def test_loglike_equals_statsmodels_unobserved_components(cycle_fit):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    y, res = cycle_fit
    e = res.estimates
    uc = UnobservedComponents(y, irregular=True, cycle=True, stochastic_cycle=True,
                              damped_cycle=True)
    # statsmodels starts the cycle approximately diffuse and burns 2 observations; ours is
    # stationary, N(0, sigma2/(1 - rho^2) I): give statsmodels the same start, no burn
    uc.ssm.initialize_known(np.zeros(2), e["sigma2.cycle"] / (1 - e["rho.cycle"] ** 2) * np.eye(2))
    uc.loglikelihood_burn = 0
    # statsmodels' parameter is the frequency lambda = 2 pi / period
    ll = uc.loglike([e["sigma2.obs"], e["sigma2.cycle"], 2 * np.pi / e["period.cycle"],
                     e["rho.cycle"]])
    assert abs(res.log_likelihood - ll) < 1e-8
    assert abs(dlm.loglike(res.model, y) - ll) < 1e-8


def test_fixed_values_and_bad_terms():
    f = dlm.parse_formula("level + cycle(12, 0.8?)")
    assert f.estimate_names == ("sigma2.level", "sigma2.cycle", "rho.cycle", "sigma2.obs")
    m = f.build([1.0, 0.5, 0.8, 2.0])
    ref = dlm.LocalLevel(1.0) + dlm.Cycle(12.0, 0.8, 0.5) + dlm.Irregular(2.0)
    np.testing.assert_array_equal(m.T, ref.T)
    for bad, match in [("cycle(2?)", r"period > 2"), ("cycle(20, x?)", "expected numbers"),
                       ("cycle(20, 1.0?)", r"damping in \(0, 1\)")]:
        with pytest.raises(ValueError, match=match):
            dlm.parse_formula(bad)
    with pytest.raises(ValueError, match="EM estimates variances only"):
        dlm.fit("cycle(20?)", np.arange(30.0) % 7, method="em")


def test_bayesian_priors_for_the_estimated_cycle():
    y = _simulate(n=40)
    m = dlm.bayesian("cycle(20?, 0.8?)", y)
    assert sorted(v.name for v in m.free_RVs) == ["period.cycle", "rho.cycle", "sigma.cycle",
                                                  "sigma.obs"]
    # the default priors' supports: period in (2, n), damping in (0, 1)
    bounds = [[float(b.eval()) for b in m[n].owner.inputs[-2:]]
              for n in ("period.cycle", "rho.cycle")]
    assert bounds == [[2.0, 40.0], [0.0, 1.0]]
