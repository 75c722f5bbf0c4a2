"""Parameter and state names of the model families follow the one scheme of
docs/estimation.md: ``sigma2.<component>``, ``sigma2.<state>``, ``cov(...)``, ``phi.*``."""

import re

import numpy as np
import pytest

import pymc_dlm as dlm
from pymc_dlm.estimation.structure import variance_groups, variance_parameterization
from pymc_dlm.estimation.transforms import natural_scale

COV = np.array([[1.0, 0.3], [0.3, 1.0]])

FAMILIES = {
    # name: (model, states, fit_em's / fit_mle's free variances)
    "sarima": (dlm.SARIMAX((1, 1, 1), (1, 0, 0, 4), ar=[0.3], ma=[0.2], seasonal_ar=[0.1],
                           sigma=1.0),
               ("arima_lag1", "arima_0", "arima_1", "arima_2", "arima_3", "arima_4"),
               ("sigma2.arima",)),
    "arma+irregular": (dlm.SARIMAX((1, 0, 1), ar=[0.3], ma=[0.4], sigma=1.0)
                       + dlm.Irregular(0.5),
                       ("arima_0", "arima_1"), ("sigma2.obs", "sigma2.arima")),
    "var": (dlm.VAR(np.array([[[0.5, 0.1], [0.0, 0.3]]]), COV, names=["gdp", "inv"]),
            ("gdp", "inv"), ("cov(gdp, inv)",)),
    "factor": (dlm.DynamicFactor(np.array([[1.0], [0.5], [0.3]]), [[0.5]],
                                 sigma_obs=[1.0, 1.0, 1.0]),
               ("factor0",), ("sigma2.obs[0]", "sigma2.obs[1]", "sigma2.obs[2]",
                              "sigma2.factor")),
    "factor+idio": (dlm.DynamicFactor(np.array([[1.0], [0.5]]), [[0.5]], idio_ar=[0.2, 0.2],
                                      idio_sigma=[1.0, 1.0]),
                    ("factor0", "e.y0", "e.y1"),
                    ("sigma2.factor0", "sigma2.e.y0", "sigma2.e.y1")),
    "sutse": (dlm.SUTSE(dlm.LocalLevel(1.0), [COV], COV, series=["a", "b"]),
              ("level.a", "level.b"), ("cov(obs[0], obs[1])", "cov(level.a, level.b)")),
    "damped": (dlm.DampedTrend(1.0, 0.5, 0.9) + dlm.Irregular(1.0), ("level", "slope"),
               ("sigma2.obs", "sigma2.level", "sigma2.slope")),
    "poly": (dlm.PolynomialTrend(3, [0.1, 0.2, 0.3]) + dlm.Irregular(1.0),
             ("poly_0", "poly_1", "poly_2"),
             ("sigma2.obs", "sigma2.poly_0", "sigma2.poly_1", "sigma2.poly_2")),
    "cycle": (dlm.Cycle(20.0, 0.9, 1.0) + dlm.Irregular(1.0), ("cycle", "cycle_star"),
              ("sigma2.obs", "sigma2.cycle")),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_state_and_variance_names(family):
    model, states, variances = FAMILIES[family]
    assert model.state_names == states
    assert tuple(g.name for g in variance_groups(model, ("H", "Q"))) == variances
    # fit_mle on the numeric model optimises log variances / log-Cholesky factors of them
    names = variance_parameterization(model)[2]
    assert {re.sub(r"^(log )?(chol\[\d+\] )?", "", n) for n in names} == set(variances)


@pytest.mark.parametrize(("text", "estimates", "unconstrained"), [
    ("arima(1,1,1)", ("phi.arima.ar1", "phi.arima.ma1", "sigma2.arima"),
     ("atanh phi.arima.ar1", "atanh phi.arima.ma1", "log sigma2.arima")),
    ("sarima(0,1,1)(1,1,1,12) + irregular",
     ("phi.arima.ma1", "phi.arima.sar1", "phi.arima.sma1", "sigma2.arima", "sigma2.obs"),
     ("atanh phi.arima.ma1", "atanh phi.arima.sar1", "atanh phi.arima.sma1",
      "log sigma2.arima", "log sigma2.obs")),
    ("damped", ("sigma2.level", "sigma2.slope", "phi.damping", "sigma2.obs"),
     ("log sigma2.level", "log sigma2.slope", "atanh phi.damping", "log sigma2.obs")),
    ("poly(2)", ("sigma2.poly_0", "sigma2.poly_1", "sigma2.obs"),
     ("log sigma2.poly_0", "log sigma2.poly_1", "log sigma2.obs")),
    ("cycle(20?, 0.8?)", ("sigma2.cycle", "period.cycle", "rho.cycle", "sigma2.obs"),
     ("log sigma2.cycle", "log(x-2) period.cycle", "logit rho.cycle", "log sigma2.obs")),
])
def test_formula_names(text, estimates, unconstrained):
    f = dlm.parse_formula(text)
    assert f.estimate_names == estimates and f.unconstrained_names == unconstrained
    assert natural_scale(unconstrained, np.zeros(len(estimates)))[0] == estimates
    # a formula's variances carry the names fit_em gives the model it builds
    model = f.build(f.start(np.random.default_rng(0).normal(size=40)))
    em_names = {g.name for g in variance_groups(model, ("H", "Q"))}
    assert {n for n in estimates if n.startswith("sigma2")} == em_names


def test_natural_scale_of_the_cycle_maps():
    names, values, cov = natural_scale(["log(x-2) period.cycle", "logit rho.cycle"],
                                       [np.log(18.0), np.log(9.0)], np.eye(2))
    assert names == ("period.cycle", "rho.cycle")
    np.testing.assert_allclose(values, [20.0, 0.9], rtol=1e-14)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [18.0, 0.09], rtol=1e-14)  # delta method


def test_fixed_cycle_values_map_to_their_unconstrained_scale():
    from pymc_dlm.estimation.checks import apply_fixed

    names = ("log sigma2.cycle", "log(x-2) period.cycle", "logit rho.cycle", "log sigma2.obs")
    init, mask = apply_fixed(names, np.zeros(4), {"period.cycle": 20.0, "rho.cycle": 0.9})
    np.testing.assert_allclose(init, [0.0, np.log(18.0), np.log(9.0), 0.0], rtol=1e-14)
    assert mask.tolist() == [False, True, True, False]
    for bad, match in [({"period.cycle": 1.5}, "must be > 2"), ({"rho.cycle": 1.0}, r"\(0, 1\)")]:
        with pytest.raises(ValueError, match=match):
            apply_fixed(names, np.zeros(4), bad)
