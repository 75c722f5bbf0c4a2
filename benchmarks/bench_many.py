"""Many series: 1,000 local-level series of length 200, all log-likelihoods and all MLE fits.

Ours: ``loglike_many`` (one compiled numba pass over the batch) and ``fit_many`` (one compiled
log-likelihood + gradient shared by every fit, in this process).  Against: a statsmodels loop
(``UnobservedComponents("llevel")``: ``loglike`` at given parameters, ``fit``) and simdkalman
(batched NumPy filter; log-likelihoods only, it has no MLE).  Medians of a few repeats after a
warm-up; BLAS held to one thread.  Also the peak memory of ``loglike_many`` on 10,000 x 200.

    make bench-many                            # .venv-bench with statsmodels and simdkalman
    python benchmarks/bench_many.py            # B = 1000
    python benchmarks/bench_many.py --quick    # B = 200, fewer repeats
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
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
        import statsmodels.api as sm

        def sm_ll():
            return [sm.tsa.UnobservedComponents(Y[b], "llevel").loglike(params) for b in range(B)]

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

        def sm_fit():
            return [sm.tsa.UnobservedComponents(Y[b], "llevel").fit(disp=0) for b in range(B)]

        t = median_time(sm_fit, 1)
        rows.append(("MLE fits", "statsmodels loop", t, t / t_fit))
    print(f"{B} local-level series x 200 steps; medians; ratio = other / ours (> 1: we are faster)")
    print(f"{'task':<18}{'implementation':<30}{'seconds':>10}{'ratio':>8}")
    for task, name, t, ratio in rows:
        r = "" if ratio is None else f"{ratio:8.1f}"
        print(f"{task:<18}{name:<30}{t:>10.4f}{r}")
    mem = peak_memory_mb(10_000, 200)
    print(f"peak memory, loglike_many on 10,000 x 200 (chunks of 1024): {mem:.0f} MB")


if __name__ == "__main__":
    main()
