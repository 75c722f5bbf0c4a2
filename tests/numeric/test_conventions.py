"""The log-likelihood options of the NumPy engine: KFAS's convention and a burn-in.

References:

* R ``arima(Nile, order = c(0, 1, 1))`` reports log-likelihood -632.54563 (R 4.x, ``stats``;
  the ARIMA(0,1,1) is the local level model, its exact diffuse likelihood without the
  ``log 2 pi`` of the first, diffuse, observation, which is also KFAS's ``logLik``).  At the
  D&K (2012, section 2.10) estimates, rounded, the likelihood is within 1e-8 of its maximum.
* Commandeur and Koopman (2007, section 2.2), UK drivers KSI (log), local level at their
  estimates sigma2_eps = 0.00222157, sigma2_xi = 0.011866: "log-likelihood" 0.6451960,
  which is log L / n with log L in KFAS's convention (d = 1 diffuse observation element
  without its constant; 0.6404098 in statsmodels').
* Kim and Nelson (1999, section 3.4), the time-varying-parameter regression of M1 growth:
  log-likelihood -97.092423 over t = 11..106 at their estimates, prior beta_0 ~ N(0, 50 I)
  one step before the first observation (so P1 = 50 I + Q).
  Data: tests/reference/kim_nelson_tvp.csv.
* Dense Gaussian conditioning: log p(y_{k+1:n} | y_{1:k}) = log p(y) - log p(y_{1:k}).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymc_dlm as dlm
from pymc_dlm.numeric import system_arrays
from pymc_dlm.numeric.filter import diffuse_obs_counts
from pymc_dlm.symbolic import diffuse_plan

from conftest import dense_reference
from reference_models import REFERENCE_MODELS, tv_intercepts

HALF_LOG2PI = 0.5 * math.log(2.0 * math.pi)
REFERENCE = Path(__file__).parents[1] / "reference"


def kim_nelson_tvp():
    """Kim and Nelson's TVP regression at their estimates (section 3.4), P1 = 50 I + Q."""
    df = pd.read_csv(REFERENCE / "kim_nelson_tvp.csv", comment="#")
    y = df["m1"].to_numpy()
    X = np.column_stack([np.ones(len(y)), df["dint"], df["inf"], df["surpl"], df["m1lag"]])
    s = np.array([0.371245817, 0.111236539, 0.017119149, 0.272032325, 0.037753247,
                  0.022415721])
    Q = np.diag(s[1:] ** 2)
    mod = dlm.StateSpaceModel(Z=X[:, None, :], T=np.eye(5), Q=Q, H=[[s[0] ** 2]],
                              P1=50.0 * np.eye(5) + Q, diffuse=[False] * 5)
    return mod, y


def test_nile_kfas_convention_equals_r_arima():
    mod, y = REFERENCE_MODELS["nile"]()
    assert dlm.loglike(mod, y, convention="kfas") == pytest.approx(-632.54563, abs=1e-5)
    f = dlm.kalman_filter(mod, y, convention="kfas")
    assert f.llf == pytest.approx(-632.54563, abs=1e-5) and f.convention == "kfas"
    assert f.n_diffuse_obs == 1 and f.llf == pytest.approx(f.llf_t.sum(), rel=1e-15)
    assert dlm.loglike(mod, y) == pytest.approx(-633.46456, abs=1e-5)


def test_uk_drivers_local_level_loglik_per_n_equals_commandeur_koopman():
    y = np.log(dlm.datasets.load_uk_drivers()["drivers_ksi"])
    mod = dlm.LocalLevel(0.011866 ** 0.5, 0.00222157 ** 0.5)
    n = len(y)
    assert dlm.loglike(mod, y, convention="kfas") / n == pytest.approx(0.6451960, abs=5e-8)
    assert dlm.loglike(mod, y) / n == pytest.approx(0.6451960 - HALF_LOG2PI / n, abs=5e-8)


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
def test_kfas_adds_half_log_2pi_per_diffuse_observation_element(name):
    """kfas - statsmodels = n_diffuse_obs log(2 pi) / 2, step by step; the count equals the
    symbolic engine's diffuse plan (which the fused engine uses)."""
    mod, y = REFERENCE_MODELS[name]()
    y = np.asarray(y, float).reshape(len(y), -1)
    sm_, kf = dlm.kalman_filter(mod, y), dlm.kalman_filter(mod, y, convention="kfas")
    s = system_arrays(mod)
    plan = diffuse_plan(s.Z, s.T, s.P1inf, ~np.isnan(y))
    counts = diffuse_obs_counts(s, ~np.isnan(y))
    np.testing.assert_array_equal(counts, plan.diffuse_counts)
    assert sm_.n_diffuse_obs == kf.n_diffuse_obs == plan.n_diffuse_obs == counts.sum()
    assert counts.size == sm_.n_diffuse
    shift = np.zeros(len(y))
    shift[: counts.size] = HALF_LOG2PI * counts
    np.testing.assert_allclose(kf.llf_t, sm_.llf_t + shift, rtol=1e-14, atol=1e-12)
    assert dlm.loglike(mod, y, convention="kfas") == pytest.approx(kf.llf, rel=1e-12)


def test_diffuse_obs_counts_known_cases():
    """A local linear trend needs two diffuse observations; a missing first one moves them;
    the bivariate model has 2 diffuse states and its second row is missing at t = 2."""
    llt = system_arrays(dlm.LocalLinearTrend(1.0, 1.0, 1.0))
    obs = np.ones((6, 1), bool)
    assert diffuse_obs_counts(llt, obs).tolist() == [1, 1]
    obs[0] = False
    assert diffuse_obs_counts(llt, obs).tolist() == [0, 1, 1]
    mod, y = REFERENCE_MODELS["bivariate"]()
    assert dlm.kalman_filter(mod, y).n_diffuse_obs == 2


def test_burn_in_equals_kim_nelson():
    mod, y = kim_nelson_tvp()
    assert dlm.loglike(mod, y, burn=10) == pytest.approx(-97.092423, abs=1e-6)
    f = dlm.kalman_filter(mod, y)
    assert f.llf_t[10:].sum() == pytest.approx(-97.092423, abs=1e-6)


@pytest.mark.parametrize("burn", [1, 3, 9])
def test_burn_in_equals_dense_conditional_density(burn):
    mod, y = tv_intercepts()
    y = y.copy()
    y[[2, 6]] = np.nan
    full, _, _ = dense_reference(mod, y)
    head = y.copy()
    head[burn:] = np.nan
    first, _, _ = dense_reference(mod, head)
    assert dlm.loglike(mod, y, burn=burn) == pytest.approx(full - first, rel=1e-12, abs=1e-12)
    # known initialisation: no diffuse element, so the conventions agree
    assert dlm.loglike(mod, y, burn=burn, convention="kfas") == pytest.approx(full - first,
                                                                              rel=1e-12)


def test_burn_drops_the_kfas_shift_of_burnt_steps():
    mod, y = REFERENCE_MODELS["trend_seasonal"]()
    f = dlm.kalman_filter(mod, y, convention="kfas")
    assert dlm.loglike(mod, y, convention="kfas", burn=20) == pytest.approx(f.llf_t[20:].sum(),
                                                                            rel=1e-12)
    assert dlm.loglike(mod, y, burn=20) == pytest.approx(f.llf_t[20:].sum(), rel=1e-12)


def test_bad_options_are_rejected():
    mod, y = REFERENCE_MODELS["nile"]()
    with pytest.raises(ValueError, match=r"convention must be one of \['statsmodels', 'kfas'\]"):
        dlm.loglike(mod, y, convention="R")
    with pytest.raises(ValueError, match="convention must be one of"):
        dlm.kalman_filter(mod, y, convention="KFAS")
    with pytest.raises(ValueError, match=r"burn must satisfy 0 <= burn < n = 100; got 100"):
        dlm.loglike(mod, y, burn=100)
    with pytest.raises(ValueError, match="got -1"):
        dlm.loglike(mod, y, burn=-1)
    with pytest.raises(TypeError, match="burn must be an integer"):
        dlm.loglike(mod, y, burn=1.5)
