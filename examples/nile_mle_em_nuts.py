"""Nile local level three ways: maximum likelihood, EM and NUTS (Durbin and Koopman 2012, ch. 2).

Published MLE (D&K section 2.10.3): sigma2_eps = 15099, sigma2_eta = 1469.1.
"""

import time

import arviz as az
import numpy as np
import pymc as pm

import pymc_dlm as dlm

y = dlm.datasets.load_nile()

t0 = time.perf_counter()
mle = dlm.fit("level", y)                                         # exact gradients, L-BFGS-B
t_mle = time.perf_counter() - t0
t0 = time.perf_counter()
em = dlm.fit(dlm.LocalLevel(30.0, 100.0), y, method="em", max_iter=5000, tol=1e-9)
t_em = time.perf_counter() - t0

model = dlm.bayesian(dlm.LocalLevel, y)                           # HalfNormal(sd(y)) priors
t0 = time.perf_counter()
with model:
    idata = pm.sample(draws=500, tune=500, chains=2, cores=1, random_seed=1, progressbar=False)
t_nuts = time.perf_counter() - t0
post = az.extract(idata)

s2_level, s2_obs = mle.estimates[["sigma2.level", "sigma2.obs"]]
rows = [
    ("Durbin & Koopman (2012)", 1469.1, 15099.0, "", ""),
    ("MLE (dlm.fit)", s2_level, s2_obs, f"{mle.log_likelihood:.4f}", f"{t_mle:.2f} s"),
    ("EM (dlm.fit, method='em')", em.params["sigma2.level"], em.params["sigma2.obs"],
     f"{em.log_likelihood:.4f}", f"{t_em:.2f} s, {em.n_iter} it"),
    ("NUTS posterior median", float(np.median(post["sigma_level"] ** 2)),
     float(np.median(post["sigma_obs"] ** 2)), "", f"{t_nuts:.1f} s"),
]
print(f"{'estimator':<28}{'sigma2_eta':>12}{'sigma2_eps':>12}{'log-lik':>12}  time")
for name, q, h, ll, t in rows:
    print(f"{name:<28}{q:>12.1f}{h:>12.1f}{ll:>12}  {t}")
print(az.summary(idata, kind="stats").round(1).to_string())
