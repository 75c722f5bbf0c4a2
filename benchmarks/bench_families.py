"""Model families against statsmodels, in one run (ratios other / ours; > 1: we are faster).

* Airline SARIMA (0,1,1)(0,1,1)_12 on log passengers: ``dlm.fit("sarima(...)")`` against
  statsmodels ``SARIMAX(...).fit()`` (exact diffuse differencing in both; statsmodels with
  ``simple_differencing=False`` so that both filter the 144 levels).
* VAR(2), k = 5, n = 500: our log-likelihood and gradient (the fused Op, as in ``DLM``)
  against statsmodels ``VARMAX.loglike`` (no gradient).

* NUTS on the airline SARIMA (``dlm.bayesian`` with its default priors: HalfNormal on the
  innovation standard deviation, Uniform(-1, 1) on the partial autocorrelations), 2 chains x
  1000 tune + 1000 draws with PyMC's sampler, warm caches (a first short run compiles):
  wall time and the bulk ESS per second of the slowest parameter (``--nuts``; no
  statsmodels counterpart).

BLAS held to one thread, each timing after one untimed call.

    python benchmarks/bench_families.py            # full table
    python benchmarks/bench_families.py --quick    # fewer repeats
    python benchmarks/bench_families.py --nuts     # also the NUTS wall time on the airline model
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import pymc_dlm as dlm


from bench_estimation import median_time  # noqa: E402 (benchmarks/ is the script's path)


def airline(repeats: int) -> tuple[float, float]:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = np.log(dlm.datasets.load_airline_passengers())
    ours = median_time(lambda: dlm.fit("sarima(0,1,1)(0,1,1,12)", y), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = median_time(lambda: SARIMAX(y.to_numpy(), order=(0, 1, 1),
                                         seasonal_order=(0, 1, 1, 12)).fit(disp=False), repeats)
    return ours, sm


def var_logp_grad(repeats: int, k: int = 5, n: int = 500) -> tuple[float, float]:
    import pytensor
    import pytensor.tensor as pt
    from statsmodels.tsa.statespace.varmax import VARMAX

    from pymc_dlm import fused, symbolic

    rng = np.random.default_rng(0)
    A = np.stack([0.3 * np.eye(k), 0.1 * np.eye(k)])
    y = np.zeros((n, k))
    for t in range(2, n):
        y[t] = A[0] @ y[t - 1] + A[1] @ y[t - 2] + rng.normal(size=k)
    a = pt.tensor3("a", shape=(2, k, k))
    mod = dlm.VAR(a, np.eye(k))
    sys = symbolic.system_tensors(mod)
    plan = symbolic.diffuse_plan(np.asarray(mod.Z), np.zeros((2 * k, 2 * k)),
                                 np.zeros((2 * k, 2 * k)), np.ones((n, k), bool))
    ll = fused.loglike(sys, y, plan)
    fn = pytensor.function([a], [ll, pytensor.grad(ll, a)])
    ours = median_time(lambda: fn(A), repeats)
    sm_mod = VARMAX(y, order=(2, 0), trend="n")
    params = np.r_[np.concatenate([A[lag][i] for i in range(k) for lag in range(2)]),
                   np.eye(k)[np.tril_indices(k)]]
    sm = median_time(lambda: sm_mod.loglike(params), repeats)
    return ours, sm


def airline_nuts(draws: int = 1000) -> tuple[float, float]:
    """(wall seconds, min bulk ESS per second) of pm.sample on the airline SARIMA."""
    import arviz as az
    import pymc as pm

    y = np.log(dlm.datasets.load_airline_passengers())
    model = dlm.bayesian("sarima(0,1,1)(0,1,1,12)", y)
    opts = dict(chains=2, nuts_sampler="pymc", progressbar=False, random_seed=1,
                compute_convergence_checks=False)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.sample(20, tune=20, **opts)  # compiles
        t0 = time.perf_counter()
        idata = pm.sample(draws, tune=draws, **opts)
        wall = time.perf_counter() - t0
    ess = float(az.summary(idata, kind="diagnostics")["ess_bulk"].min())
    return wall, ess / wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--nuts", action="store_true")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 15
    with threadpool_limits(limits=1, user_api="blas"):
        rows = [("airline SARIMA MLE", *airline(repeats)),
                ("VAR(2) k=5 n=500 logp(+grad)", *var_logp_grad(repeats))]
    print(f"{'case':<32}{'ours [ms]':>12}{'statsmodels [ms]':>18}{'ratio':>8}")
    for name, ours, sm in rows:
        print(f"{name:<32}{1e3 * ours:>12.2f}{1e3 * sm:>18.2f}{sm / ours:>8.2f}")
    if args.nuts:
        draws = 300 if args.quick else 1000
        wall, ess_s = airline_nuts(draws)
        print(f"NUTS airline SARIMA, 2 chains x {draws} tune + {draws} draws: {wall:.1f} s, "
              f"{ess_s:.0f} bulk ESS/s (slowest parameter)")


if __name__ == "__main__":
    main()
