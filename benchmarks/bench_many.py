"""Many series: 1,000 local-level series of length 200, all log-likelihoods, all MLE fits,
all forecasts, and fit_many on Dask clusters.

Ours: ``loglike_many`` (one compiled numba pass over the batch) and ``fit_many`` (one compiled
log-likelihood + gradient shared by every fit, in this process).  Against: a statsmodels loop
(``UnobservedComponents("llevel")``: ``loglike`` at given parameters, ``fit``) and simdkalman
(batched NumPy filter; log-likelihoods only, it has no MLE).  Medians of a few repeats after a
warm-up; BLAS held to one thread.  Also the peak memory of ``loglike_many`` on 10,000 x 200.

Forecasts: ``ManyResult.forecast(12)`` (one batched filter pass) against the per-series loop
it replaced (``pymc_dlm.forecast(...).summary_frame()`` per series), both as a share of the
fit time (issue 26's goal: under 10%).  Dask (``--dask``): fit_many on a ``LocalCluster`` of
2 workers x 1 thread and of 1 worker x 2 threads against in-process, cluster start-up
excluded (the workers are warmed by a first run, which compiles once per worker process).
On a 2-core machine two worker processes have the two cores where the in-process run uses
one, so they approach 2x (minus what the scheduler, the client and the transfers take; idle
machine, 200 series: 0.24 s against 0.46 s in-process, 1.9x); two threads in one worker share
one compiled function under a lock and the GIL, so they are no faster than one thread
(0.41 s; 1,000 series: 2.90 s against 2.06 s in-process and 1.16 s for 2 x 1: only the
GIL-free parts, numba kernels and L-BFGS-B's Fortran, overlap, and the lock costs).  A loaded
machine distorts both: an earlier run with six other sessions on the two cores had 1 x 2
faster than in-process.

    make bench-many                            # .venv-bench with statsmodels and simdkalman
    python benchmarks/bench_many.py            # B = 1000
    python benchmarks/bench_many.py --quick    # B = 200, fewer repeats
    python benchmarks/bench_many.py --dask     # also the LocalCluster rows
    python benchmarks/bench_many.py --bayes    # also MAP and NUTS per series

MAP per series (``method="map"``, default priors) is timed against the MLE per series; NUTS
per series (``method="nuts"``, 200 series, or 20 with --quick, 300 + 300 draws, 2 chains) is
timed after a first call that compiles the model, and reported with the effective samples
per second (the smallest bulk ESS of the two standard deviations, summed over the series,
over the wall time); the posterior predictive forecasts of those fits (the forecast at every
draw, mixed) are timed against the NUTS fits.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import pymc_dlm as dlm
from pymc_dlm.numeric.batch import loglike_many


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def panel(B: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    level = np.cumsum(rng.normal(0.0, 0.5, (B, n)), axis=1)
    return level + rng.normal(0.0, 1.0, (B, n))


def peak_memory_mb(B: int, n: int) -> float:
    """Peak RSS of a fresh process computing loglike_many on B x n (chunked)."""
    code = (
        "import resource, numpy as np, pymc_dlm as dlm\n"
        "from pymc_dlm.numeric.batch import loglike_many\n"
        f"Y = np.random.default_rng(0).standard_normal(({B}, {n})).cumsum(1)\n"
        "ll = loglike_many(dlm.LocalLevel(1.0, 1.0), Y)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def dask_rows(Y: np.ndarray, t_here: float, reps: int) -> list:
    """fit_many on two LocalCluster layouts; ratio = cluster time / in-process time (as the
    table's other / ours: > 1 means the cluster is slower)."""
    from dask.distributed import Client, LocalCluster

    rows = []
    for workers, threads in ((2, 1), (1, 2)):
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            t = median_time(lambda: dlm.fit_many("level", Y, client=client, progress=False),
                            reps)
            rows.append(("MLE fits", f"LocalCluster {workers} x {threads} thread(s)", t,
                         t / t_here))
    return rows


def bayes_rows(Y: np.ndarray, t_mle: float, n_nuts: int) -> list:
    """MAP per series (ratio to the MLE time) and NUTS per series (ESS per second)."""
    t_map = median_time(lambda: dlm.fit_many("level", Y, "map", progress=False), 1)
    rows = [("MAP fits", "fit_many method='map'", t_map, t_map / t_mle)]
    sub = Y[:n_nuts]
    opts = dict(draws=300, tune=300, chains=2, random_seed=1, progress=False)
    dlm.fit_many("level", sub[:1], "nuts", **opts)  # compiles the model once
    t0 = time.perf_counter()
    res = dlm.fit_many("level", sub, "nuts", **opts)
    t = time.perf_counter() - t0
    ess = res.table[["sigma.level ess_bulk", "sigma.obs ess_bulk"]].min(axis=1).sum()
    rows.append((f"NUTS ({len(sub)} series)", f"method='nuts', {ess / t:.0f} ESS/s", t, None))
    t_fc = median_time(lambda: res.forecast(12), 3)
    rows.append(("NUTS forecasts", "h=12, mixture of 600 draws", t_fc, t_fc / t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dask", action="store_true")
    parser.add_argument("--bayes", action="store_true")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip statsmodels / simdkalman and the memory probe")
    args = parser.parse_args()
    B = 200 if args.quick else 1000
    reps = 3 if args.quick else 5
    Y = panel(B)
    params = (1.0, 0.25)  # sigma2_obs, sigma2_level
    model = dlm.LocalLevel(np.sqrt(params[1]), np.sqrt(params[0]))
    rows = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_ll = median_time(lambda: loglike_many(model, Y), reps)
        rows.append(("log-likelihoods", "pymc-dlm loglike_many", t_ll, None))
        if not args.no_compare:
            import statsmodels.api as sm

            def sm_ll():
                return [sm.tsa.UnobservedComponents(Y[b], "llevel").loglike(params)
                        for b in range(B)]

            t = median_time(sm_ll, max(1, reps // 2))
            rows.append(("log-likelihoods", "statsmodels loop", t, t / t_ll))
            if importlib.util.find_spec("simdkalman"):
                import simdkalman

                kf = simdkalman.KalmanFilter(1.0, params[1], 1.0, params[0])
                # simdkalman has no diffuse start: a large initial variance instead
                t = median_time(lambda: kf.compute(Y, 0, initial_value=Y[:, :1, None],
                                                   initial_covariance=np.full((B, 1, 1), 1e7),
                                                   smoothed=False, states=False,
                                                   covariances=False, observations=False,
                                                   log_likelihood=True), reps)
                rows.append(("log-likelihoods", "simdkalman (batched)", t, t / t_ll))
            else:
                rows.append(("log-likelihoods", "simdkalman: not installed", np.nan, None))

        t_fit = median_time(lambda: dlm.fit_many("level", Y, progress=False), max(1, reps // 2))
        rows.append(("MLE fits", "pymc-dlm fit_many", t_fit, None))
        if not args.no_compare:
            def sm_fit():
                return [sm.tsa.UnobservedComponents(Y[b], "llevel").fit(disp=0)
                        for b in range(B)]

            t = median_time(sm_fit, 1)
            rows.append(("MLE fits", "statsmodels loop", t, t / t_fit))

        res = dlm.fit_many("level", Y, progress=False)
        t_fc = median_time(lambda: res.forecast(12), reps)
        rows.append(("forecasts (h=12)", f"ManyResult.forecast ({t_fc / t_fit:.1%} of fit)",
                     t_fc, None))

        def loop_forecast():
            return [dlm.forecast(mod, res.data[sid], 12).summary_frame()
                    for sid, mod in res.models.items()]

        t = median_time(loop_forecast, max(1, reps // 2))
        rows.append(("forecasts (h=12)", f"per-series loop ({t / t_fit:.1%} of fit)", t,
                     t / t_fc))
        if args.dask:
            rows += dask_rows(Y, t_fit, max(1, reps // 2))
        if args.bayes:
            rows += bayes_rows(Y, t_fit, 20 if args.quick else 200)
    print(f"{B} local-level series x 200 steps; medians; ratio = other / ours (> 1: we are "
          "faster; MAP: MAP / MLE time)")
    print(f"{'task':<18}{'implementation':<40}{'seconds':>10}{'ratio':>8}")
    for task, name, t, ratio in rows:
        r = "" if ratio is None else f"{ratio:8.1f}"
        print(f"{task:<18}{name:<40}{t:>10.4f}{r}")
    if not args.no_compare:
        mem = peak_memory_mb(10_000, 200)
        print(f"peak memory, loglike_many on 10,000 x 200 (chunks of 1024): {mem:.0f} MB")


if __name__ == "__main__":
    main()
