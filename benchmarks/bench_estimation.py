"""Estimation speed: fit_mle and fit_em against statsmodels, dynaris and pykalman, in one run.

Prints median wall times and ratios other / ours (> 1: we are faster).  Libraries that are
not installed are reported as such (`make bench-estimation` installs them in .venv-bench and runs this).
BLAS is held to one thread.  Warm caches: each fit is timed after one untimed call.

    python benchmarks/bench_estimation.py            # full table
    python benchmarks/bench_estimation.py --quick    # fewer repeats
    python benchmarks/bench_estimation.py --robust --repeats 1   # only the multi-start table

The robust-MLE table (``--robust``) fits reference models of
``tests/estimation/test_mle_robust.py`` on one compiled likelihood: one climb with the
boundary checks off (``maximize(..., variances=None)``: what fit_mle did before issue 23),
with the checks from the data-based start (no restart needed) and from every variance at
1e-10 times the data's (the trap: KKT restarts and a second climb), then the whole fit_mle
call from the good start.  Cells: median seconds (restarts, log-likelihood reached).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_em, fit_mle


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def have(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def ours_nile_mle(y):
    import pytensor.tensor as pt

    return fit_mle(lambda p: dlm.LocalLevel(pt.exp(p[0]), pt.exp(p[1])), y, [3.0, 4.0])


def ours_seasonal_mle(y):
    import pytensor.tensor as pt

    def model_fn(p):
        return dlm.LocalLinearTrend(pt.exp(p[0]), pt.exp(p[1]), pt.exp(p[2])) + dlm.Seasonal(
            12, pt.exp(p[3]))

    return fit_mle(model_fn, y, np.full(4, -1.0))


def statsmodels_fit(y, **kw):
    import statsmodels.api as sm

    return sm.tsa.UnobservedComponents(y, use_exact_diffuse=True, **kw).fit(disp=0)


def dynaris_mle(y, kind: str):
    import jax.numpy as jnp
    from dynaris import LocalLevel, LocalLinearTrend, Seasonal
    from dynaris.estimation import fit_mle as dfit

    if kind == "level":
        def fn(p):
            return LocalLevel(sigma_level=jnp.exp(p[0]), sigma_obs=jnp.exp(p[1]))
        init = jnp.array([3.0, 4.0])
    else:
        def fn(p):
            return LocalLinearTrend(sigma_level=jnp.exp(p[0]), sigma_slope=jnp.exp(p[1]),
                                    sigma_obs=jnp.exp(p[2])) + Seasonal(
                period=12, sigma_seasonal=jnp.exp(p[3]))
        init = jnp.full(4, -1.0)
    return dfit(fn, jnp.asarray(y)[:, None], init)


def dynaris_em(y, iters: int):
    import jax.numpy as jnp
    from dynaris import LocalLevel
    from dynaris.estimation import fit_em as dem

    return dem(jnp.asarray(y)[:, None], LocalLevel(10.0, 10.0), max_iter=iters, tol=-1.0)


def pykalman_em(y, iters: int):
    from pykalman import KalmanFilter

    kf = KalmanFilter(transition_matrices=[[1.0]], observation_matrices=[[1.0]],
                      transition_covariance=[[100.0]], observation_covariance=[[100.0]],
                      initial_state_mean=[0.0], initial_state_covariance=[[1e7]],
                      em_vars=["transition_covariance", "observation_covariance"])
    return kf.em(y[:, None], n_iter=iters)


FRESH = {  # a first fit in a new process: (imports, the fit); each prints the fit's seconds
    "ours": ("import pytensor.tensor as pt, pymc_dlm as dlm; from pymc_dlm.estimation import fit_mle",
             "fit_mle(lambda p: dlm.LocalLevel(pt.exp(p[0]), pt.exp(p[1])), y, [3.0, 4.0])"),
    "statsmodels": ("import statsmodels.api as sm, pymc_dlm as dlm",
                    "sm.tsa.UnobservedComponents(y, level='llevel', use_exact_diffuse=True)"
                    ".fit(disp=0)"),
    "dynaris": ("import jax, pymc_dlm as dlm; jax.config.update('jax_enable_x64', True); "
                "import jax.numpy as jnp; from dynaris import LocalLevel; "
                "from dynaris.estimation import fit_mle as dfit",
                "dfit(lambda p: LocalLevel(sigma_level=jnp.exp(p[0]), sigma_obs=jnp.exp(p[1])), "
                "jnp.asarray(y)[:, None], jnp.array([3.0, 4.0]))"),
}


def fresh_fit(lib: str, cache: str | None = None) -> tuple[float, float]:
    """(import seconds, first-fit seconds) of the Nile MLE in a new Python process; with
    ``cache`` a directory, PyTensor's and numba's caches start empty there."""
    imports, fit = FRESH[lib]
    code = ("import time; t0 = time.perf_counter(); import warnings; "
            "warnings.simplefilter('ignore'); " + imports + "; y = dlm.datasets.load_nile()"
            ".to_numpy(); t1 = time.perf_counter(); " + fit + "; "
            "print(t1 - t0, time.perf_counter() - t1)")
    env = dict(os.environ)
    if cache is not None:
        env.update(PYTENSOR_FLAGS=f"base_compiledir={cache}/pt", NUMBA_CACHE_DIR=f"{cache}/nb")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def robust_models():
    """(name, y, model from variances) for the reference models of the robustness tests."""
    nile = dlm.datasets.load_nile().to_numpy()
    df = dlm.datasets.load_uk_drivers()
    uk = np.log(df["drivers_ksi"].to_numpy())
    X = df[["log_petrol_price", "seatbelt_law"]].to_numpy()
    air = np.log(dlm.datasets.load_airline_passengers().to_numpy())

    def trend_seasonal(v):
        return (dlm.LocalLinearTrend(v[1] ** 0.5, v[2] ** 0.5, v[0] ** 0.5)
                + dlm.Seasonal(12, v[3] ** 0.5))

    return [
        ("Nile local level", nile, 2, lambda v: dlm.LocalLevel(v[1] ** 0.5, v[0] ** 0.5)),
        ("UK drivers level + seasonal + regression", uk, 3,
         lambda v: (dlm.LocalLevel(v[1] ** 0.5, v[0] ** 0.5) + dlm.Seasonal(12, v[2] ** 0.5)
                    + dlm.Regression(X, names=["petrol", "law"]))),
        ("airline trend + seasonal(12)", air, 4, trend_seasonal),
    ]


def robust_table(reps: int) -> None:
    """The cost of the boundary checks and restarts of fit_mle (module docstring)."""
    from pymc_dlm.estimation import mle
    from pymc_dlm.estimation.checks import data_scale
    from pymc_dlm.estimation.structure import variance_parameterization

    print("\nRobust MLE (maximize on one compiled likelihood): median seconds "
          "(restarts, log-likelihood)\n")
    cols = ("one climb, no checks", "checks, good start", "checks, start 1e-10 s",
            "fit_mle, good start")
    head = f"{'model':42s} " + " ".join(f"{c:>28s}" for c in cols)
    print(head)
    print("-" * len(head))
    for name, y, k, build in robust_models():
        s = data_scale(y[:, None])
        good = build(np.full(k, 0.1 * s))
        fn_model, init, names = variance_parameterization(good)
        bad = np.log(np.full(init.size, 1e-10 * s))
        compiled = mle._compile(fn_model, y, init)[3]
        var = [n.startswith("log sigma2.") for n in names]
        cells = []
        for run in (lambda: mle.maximize(compiled, init),
                    lambda: mle.maximize(compiled, init, variances=var, scale=s),
                    lambda: mle.maximize(compiled, bad, variances=var, scale=s),
                    lambda: fit_mle(good, y)):
            res = run()
            t = median_time(run, reps)
            cells.append(f"{t:9.3e} ({res.restarts}, {res.log_likelihood:.4f})")
        print(f"{name:42s} " + " ".join(f"{c:>28s}" for c in cells))
    print("\n'no checks' is what fit_mle did before issue 23 (it stops wherever L-BFGS-B "
          "stops); the last column adds building the model graph and finding its compiled "
          "function.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--robust", action="store_true", help="only the robust-MLE table")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    reps = args.repeats or (3 if args.quick else 7)
    if args.robust:
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            robust_table(reps)
        return 0
    if have("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    nile = dlm.datasets.load_nile().to_numpy()
    seas = dlm.LocalLinearTrend(0.5, 0.05, 1.0) + dlm.Seasonal(12, 0.3)
    seas_y = dlm.simulate(seas.replace(diffuse=[False] * 13, P1=np.eye(13)), 1_000, rng=rng)[0][:, 0]
    long_y = np.cumsum(rng.standard_normal(10_000)) + rng.standard_normal(10_000)
    rows = []  # (task, ours, [(library, seconds or None)])
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ours_nile_mle(nile)
        ref = statsmodels_fit(nile, level="llevel")
        print(f"Nile MLE log-likelihood: ours {res.log_likelihood:.5f}, statsmodels {ref.llf:.5f}")
        t = median_time(lambda: ours_nile_mle(nile), reps)
        others = [("statsmodels", median_time(lambda: statsmodels_fit(nile, level="llevel"), reps))]
        others.append(("dynaris", median_time(lambda: dynaris_mle(nile, "level"), reps)
                       if have("dynaris") else None))
        rows.append(("fit_mle, Nile local level", t, others))

        fresh = {lib: [fresh_fit(lib) for _ in range(reps)] for lib in FRESH
                 if lib == "ours" or have(lib)}
        with tempfile.TemporaryDirectory() as tmp:
            cold = fresh_fit("ours", tmp)
        first = {lib: float(np.median([f for _, f in v])) for lib, v in fresh.items()}
        rows.append(("fit_mle, Nile, first fit in a new process", first["ours"],
                     [(lib, first.get(lib)) for lib in FRESH if lib != "ours"]))
        rows.append(("fit_mle, Nile, first fit ever (caches empty)", cold[1], []))
        imports = {lib: float(np.median([i for i, _ in v])) for lib, v in fresh.items()}

        res = ours_seasonal_mle(seas_y)
        ref = statsmodels_fit(seas_y, level="lltrend", seasonal=12)
        print(f"trend + seasonal MLE log-likelihood: ours {res.log_likelihood:.5f}, "
              f"statsmodels {ref.llf:.5f}")
        t = median_time(lambda: ours_seasonal_mle(seas_y), reps)
        others = [("statsmodels", median_time(
            lambda: statsmodels_fit(seas_y, level="lltrend", seasonal=12), reps))]
        others.append(("dynaris", median_time(lambda: dynaris_mle(seas_y, "seasonal"), reps)
                       if have("dynaris") else None))
        rows.append(("fit_mle, trend + seasonal(12), n=1,000", t, others))

        em = fit_em(nile, dlm.LocalLevel(10.0, 10.0), max_iter=5000, tol=1e-8)
        print(f"Nile EM: {em.n_iter} iterations to a relative step of 1e-8, log-likelihood "
              f"{em.log_likelihood:.5f}")
        t = median_time(lambda: fit_em(nile, dlm.LocalLevel(10.0, 10.0), max_iter=5000,
                                       tol=1e-8), reps)
        rows.append((f"fit_em, Nile to convergence ({em.n_iter} it.)", t, []))

        it_ours, it_other = 100, 3
        t = median_time(lambda: fit_em(long_y, dlm.LocalLevel(1.0, 1.0), max_iter=it_ours,
                                       tol=0.0, accelerate=None), reps) / it_ours
        others = [
            ("pykalman", median_time(lambda: pykalman_em(long_y, it_other), 1) / it_other
             if have("pykalman") else None),
            ("dynaris", median_time(lambda: dynaris_em(long_y, it_other), 1) / it_other
             if have("dynaris") else None),
        ]
        rows.append(("EM, per iteration, local level n=10,000", t, others))

        robust_table(reps)

    print("\nEstimation, median wall seconds (warm caches, BLAS 1 thread); ratio = other / ours\n")
    head = f"{'task':46s} {'ours':>10s}   {'other library':>14s} {'seconds':>10s} {'ratio':>8s}"
    print(head)
    print("-" * len(head))
    for task, t, others in rows:
        print(f"{task:46s} {t:10.3e}")
        for lib, s in others:
            if s is None:
                print(f"{'':46s} {'':10s}   {lib:>14s} {'not installed':>19s}")
            else:
                print(f"{'':46s} {'':10s}   {lib:>14s} {s:10.3e} {s / t:7.1f}x")
    print("\nimports before the first fit (not in the times above), median seconds: "
          + ", ".join(f"{lib} {t:.2f}" for lib, t in imports.items()))
    print("\nfit_mle builds the model graph on every call; the compiled function is reused when "
          "the graph is the same\n(repeated fits of one model), else built from PyTensor's on-disk "
          "cache.\nstatsmodels: UnobservedComponents(...).fit() (L-BFGS, numerical "
          "score). dynaris re-jits on every fit.\nEM per iteration: ours over 100 iterations, "
          f"others over {3}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
