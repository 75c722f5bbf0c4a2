"""Many series in one Bayesian model: partial pooling of the variances across series.

Eight stores' weekly sales follow local level models with their own level and noise standard
deviations; the stores' log standard deviations are drawn from common normal distributions
(hyperpriors), so a store with little information borrows strength from the others.  The
batch of series is one ``DLM`` over a (n, 8) observation: block-diagonal Z = T = R = I, and
diagonal H and Q holding each store's variances, so the joint log-likelihood is the sum of
the stores' Kalman filter log-likelihoods (missing weeks are NaN).

    python examples/hierarchical_many_series.py
"""

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

import pymc_dlm as dlm

rng = np.random.default_rng(42)
S, n = 8, 52
true_level = np.exp(rng.normal(np.log(2.0), 0.3, S))
true_obs = np.exp(rng.normal(np.log(5.0), 0.3, S))
sales = pd.DataFrame(
    {f"store{s}": dlm.simulate(dlm.LocalLevel(true_level[s], true_obs[s]), n, rng=rng)[0][:, 0]
     + 100.0 for s in range(S)},
    index=pd.date_range("2025-01-05", periods=n, freq="W-SUN", name="week"))
sales.iloc[:40, 7] = np.nan  # the last store opened late: 12 weeks of data

with pm.Model(coords={"week": sales.index, "store": sales.columns}) as model:
    mu_level = pm.Normal("mu_level", np.log(2.0), 1.0)
    tau_level = pm.HalfNormal("tau_level", 0.5)
    mu_obs = pm.Normal("mu_obs", np.log(5.0), 1.0)
    tau_obs = pm.HalfNormal("tau_obs", 0.5)
    z_level = pm.Normal("z_level", 0.0, 1.0, dims="store")  # non-centred
    z_obs = pm.Normal("z_obs", 0.0, 1.0, dims="store")
    sigma_level = pm.Deterministic("sigma_level", pt.exp(mu_level + tau_level * z_level),
                                   dims="store")
    sigma_obs = pm.Deterministic("sigma_obs", pt.exp(mu_obs + tau_obs * z_obs), dims="store")
    # a proper prior for the first levels, N(100, 20^2) each, instead of a diffuse start: the
    # late store's level would stay diffuse until its first sale (week 41), so the exact
    # diffuse steps would cover 41 weeks (correct, about twice as slow to sample)
    batch = dlm.StateSpaceModel(Z=np.eye(S), T=np.eye(S), R=np.eye(S),
                                Q=pt.diag(sigma_level**2), H=pt.diag(sigma_obs**2),
                                a1=np.full(S, 100.0), P1=np.eye(S) * 20.0**2,
                                diffuse=[False] * S,
                                state_names=[f"level_{c}" for c in sales.columns])
    dlm.DLM("sales", batch, observed=sales, dims=("week", "store"))
    idata = pm.sample(draws=300, tune=300, chains=2, cores=1, random_seed=1, progressbar=False)

post = az.extract(idata)
table = pd.DataFrame({
    "true sigma_level": true_level,
    "posterior median": np.median(post["sigma_level"], axis=-1),
    "weeks observed": sales.notna().sum().to_numpy(),
}, index=sales.columns)
print(table.round(2).to_string())
print(f"pooled level sd exp(mu_level): {float(np.exp(np.median(post['mu_level']))):.2f}, "
      f"spread tau_level: {float(np.median(post['tau_level'])):.2f}")
