"""The PyMC likelihood: pymc-dlm's scan Kalman filter against pymc-extras' statespace, in one run.

For each model and library, a fresh process builds the PyMC model with the same priors and
compiles the log-probability + gradient function that NUTS uses
(``model.logp_dlogp_function`` and its first call, where numba compiles), once with empty PyTensor/numba caches (cold) and once more
with the caches that run left (warm); the warm process then times one evaluation (median).
"pymc-dlm" is the default likelihood (the fused numba Op with its adjoint gradient),
"pymc-dlm-scan" the same model with ``engine="scan"`` (the PyTensor scan graph).  The warm
pymc-dlm process also times statsmodels' log-likelihood alone (its Cython filter, default
settings) at the same variances, checked equal to ours: the yardstick of issue 5.
Last, ``pm.sample`` (2 chains, 1000 tune + 1000 draws, warm caches, compile included) on the
Nile local level, with the bulk ESS per second of the slowest variance: each library with
PyMC's default sampler, and pymc-dlm also with a dense mass matrix
(``init="jitter+adapt_full"``) and with nutpie where it is installed.

``--ppc``: the check loop instead.  For each library, ``pm.sample_posterior_predictive`` of
the observations for 2 chains x 1000 draws (the draws are prior draws of the free
variables, the same for both), plus, for pymc-dlm, ``dlm.add_residuals`` (one-step
predictions, errors, variances, standardized residuals and their statistics per draw); wall
time after a warm-up call on two draws (compiling), and the peak of Python's allocations
(tracemalloc, numpy arrays included) during the timed call.  pymc-dlm's draws are the
one-step-ahead predictive (its default), pymc-extras' the unconditional simulation of its
observation variable; goal for pymc-dlm on the Nile: under 2 s.

pymc-extras pins its own PyMC version, so run this in a separate environment
(``make bench-pymc`` builds ``.venv-bench`` with both libraries):

    python benchmarks/bench_pymc.py             # full table
    python benchmarks/bench_pymc.py --quick     # fewer repeats, shorter NUTS run
    python benchmarks/bench_pymc.py --ppc       # posterior predictive + residual group

Differences kept on purpose (both are each library's documented default): pymc-dlm uses the
exact diffuse initialisation; pymc-extras has no diffuse option, so its initial state gets
a Normal prior and P0 = 1e6 I (one to thirteen more parameters for it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

MODELS = {
    "nile": "local level, n=100 (Nile)",
    "seasonal": "trend + seasonal(12), 13 states, n=1,000",
    "multi": "5 series / 10 states, n=2,000",
}
LIBS = ("pymc-dlm", "pymc-dlm-scan", "pymc-extras")  # pymc-dlm: the fused Op (default)


# --------------------------------------------------------------------------- data
def data(which: str) -> np.ndarray:
    """The observations of each benchmark model (simulated ones with a fixed seed)."""
    import pymc_dlm as dlm

    rng = np.random.default_rng(1)
    if which == "nile":
        return dlm.datasets.load_nile().to_numpy()[:, None]
    if which == "seasonal":
        true = dlm.LocalLinearTrend(0.5, 0.05, 1.0) + dlm.Seasonal(12, 0.3)
        y, _ = dlm.simulate(true.replace(diffuse=[False] * 13, P1=np.eye(13)), 1000, rng=rng)
        return y
    true = multi_model(np.full(10, 0.3), np.full(5, 1.0))
    y, _ = dlm.simulate(true.replace(diffuse=[False] * 10, P1=np.eye(10)), 2000, rng=rng)
    return y


def multi_model(sigma_state, sigma_obs):
    """Five independent local linear trends, one per series (Z, T block diagonal)."""
    import pytensor.tensor as pt

    import pymc_dlm as dlm

    sym = not isinstance(sigma_state, np.ndarray)
    diag = pt.diag if sym else np.diag
    return dlm.StateSpaceModel(
        Z=np.kron(np.eye(5), [[1.0, 0.0]]),
        T=np.kron(np.eye(5), [[1.0, 1.0], [0.0, 1.0]]),
        Q=diag(sigma_state**2),
        H=diag(sigma_obs**2),
        diffuse=[True] * 10,
    )


# --------------------------------------------------------------------------- models
#: each model's standard deviations: (scale of the HalfNormal prior, shape)
PRIORS = {
    "nile": {"sigma_level": (100.0, ()), "sigma_obs": (200.0, ())},
    "seasonal": {"sigma_level": (1.0, ()), "sigma_slope": (1.0, ()), "sigma_obs": (1.0, ()),
                 "sigma_seasonal": (1.0, ())},
    "multi": {"sigma_state": (1.0, (10,)), "sigma_obs": (1.0, (5,))},
}


def spec(which: str, sig: dict):
    """The benchmark model with the standard deviations ``sig`` (by name, as in PRIORS):
    PyMC variables for build_ours, numbers for statsmodels_loglike."""
    import pymc_dlm as dlm

    if which == "nile":
        return dlm.LocalLevel(sig["sigma_level"], sig["sigma_obs"])
    if which == "seasonal":
        return (dlm.LocalLinearTrend(sig["sigma_level"], sig["sigma_slope"], sig["sigma_obs"])
                + dlm.Seasonal(12, sig["sigma_seasonal"]))
    return multi_model(sig["sigma_state"], sig["sigma_obs"])


def build_ours(which: str, y: np.ndarray, engine: str = "fused"):
    import pymc as pm

    import pymc_dlm as dlm

    with pm.Model() as model:
        sig = {name: pm.HalfNormal(name, scale, shape=shape)
               for name, (scale, shape) in PRIORS[which].items()}
        dlm.DLM("y", spec(which, sig), observed=y[:, 0] if y.shape[1] == 1 else y,
                engine=engine)
    return model


def build_extras(which: str, y: np.ndarray):
    import pymc as pm
    import pytensor.tensor as pt
    from pymc_extras.statespace import structural as st

    if which == "nile":
        parts = st.LevelTrend(order=1, innovations_order=1) + st.MeasurementError()
        scale = {"sigma_level_trend": 100.0, "sigma_MeasurementError": 200.0}
        init_mu, init_sd = 1100.0, 100.0
    elif which == "seasonal":
        parts = (st.LevelTrend(order=2, innovations_order=[1, 1])
                 + st.TimeSeasonality(season_length=12, innovations=True, name="seasonal")
                 + st.MeasurementError())
        scale, init_mu, init_sd = {}, 0.0, 10.0
    else:
        names = [f"y{i}" for i in range(5)]
        parts = (st.LevelTrend(order=2, innovations_order=[1, 1], observed_state_names=names)
                 + st.MeasurementError(observed_state_names=names))
        scale, init_mu, init_sd = {}, 0.0, 10.0
    ss_mod = parts.build(verbose=False)
    with pm.Model(coords=ss_mod.coords) as model:
        for name in ss_mod.param_names:
            shape = ss_mod.param_info[name]["shape"]
            if name == "P0":
                pm.Deterministic("P0", 1e6 * pt.eye(shape[0]))
            elif name.startswith("sigma"):
                pm.HalfNormal(name, scale.get(name, 1.0), shape=shape)
            else:
                pm.Normal(name, init_mu, init_sd, shape=shape)
        ss_mod.build_statespace_graph(y)
    return model


def statsmodels_loglike(which: str, y: np.ndarray, model):
    """statsmodels' log-likelihood (its Cython filter, default settings) at the variances of
    ``model``'s initial point, where the logp+grad rows are timed; checked equal to ours."""
    import pymc_dlm as dlm
    from bench_filter import statsmodels_model

    outs = model.unobserved_value_vars  # the value variables and their untransformed values
    values = model.compile_fn(outs)(model.initial_point())
    num = spec(which, {v.name: np.asarray(x) for v, x in zip(outs, values, strict=True)})
    smod = statsmodels_model(num, y)
    ref, ours = smod.ssm.loglike(), dlm.loglike(num, y)
    assert abs(ref - ours) <= 1e-8 * abs(ref), (which, ref, ours)
    return lambda: smod.ssm.loglike()


# --------------------------------------------------------------------------- worker
#: pm.sample settings compared on the Nile model: PyMC's default; a dense mass matrix, which
#: suits the strongly correlated posteriors of a model's variances (docs/bayesian.md); nutpie
SAMPLERS = {
    "default": {},
    "adapt_full": {"init": "jitter+adapt_full", "nuts_sampler": "pymc"},
    "nutpie": {"nuts_sampler": "nutpie"},
}


def worker_ppc(lib: str, which: str, model, draws: int = 1000) -> dict:
    """Posterior predictive (and, for pymc-dlm, the residual group) for 2 x ``draws`` draws."""
    import tracemalloc

    import pymc as pm
    import xarray as xr
    from arviz_base import from_dict

    free = [v.name for v in model.free_RVs]
    obs = model.observed_RVs[0].name
    with model:
        prior = pm.sample_prior_predictive(2 * draws, var_names=free, random_seed=1)
    ds = prior.prior.to_dataset()

    def posterior(k):
        return from_dict({"posterior": {n: ds[n].values.reshape((2, draws) + ds[n].shape[2:])[:, :k]
                                        for n in free}})

    def run(idata):
        with model:
            pm.sample_posterior_predictive(idata, var_names=[obs], progressbar=False,
                                           random_seed=2)
        if lib != "pymc-extras":
            import pymc_dlm as dlm

            dlm.add_residuals(idata, model)

    t0 = time.perf_counter()
    run(posterior(1))  # compiles
    out = {"ppc_compile": time.perf_counter() - t0}
    idata = posterior(draws)
    tracemalloc.start()
    t0 = time.perf_counter()
    run(idata)
    out["ppc_wall"] = time.perf_counter() - t0
    out["ppc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert isinstance(idata, xr.DataTree)
    return out


def worker(lib: str, which: str, repeats: int, nuts: int, sampler: str = "default") -> dict:
    import warnings

    import pymc as pm
    from bench_filter import median_time, paired_median_times
    from pymc.blocking import DictToArrayBijection
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")
    out: dict = {}
    with threadpool_limits(limits=1, user_api="blas"):
        y = data(which)
        t0 = time.perf_counter()
        if lib == "pymc-extras":
            model = build_extras(which, y)
        else:
            model = build_ours(which, y, "scan" if lib == "pymc-dlm-scan" else "fused")
        out["build"] = time.perf_counter() - t0
        if sampler == "ppc":
            out.update(worker_ppc(lib, which, model, draws=max(nuts, 2)))
            return out
        if nuts:
            t0 = time.perf_counter()
            idata = pm.sample(draws=nuts, tune=nuts, chains=2, cores=1, random_seed=1, model=model,
                              progressbar=False, compute_convergence_checks=False,
                              **SAMPLERS[sampler])
            out["nuts_wall"] = time.perf_counter() - t0
            import arviz as az

            names = [n for n in idata.posterior.data_vars if n.startswith("sigma")]
            ess = az.ess(idata, var_names=names, method="bulk")
            out["ess_min"] = float(min(float(ess[n].min()) for n in names))
            return out
        t0 = time.perf_counter()
        fn = model.logp_dlogp_function(ravel_inputs=True)
        x = DictToArrayBijection.map(model.initial_point()).data
        f = fn._pytensor_function
        f(x)  # numba compiles on the first call: part of the compile time
        out["compile"] = time.perf_counter() - t0
        if lib == "pymc-dlm":  # statsmodels' log-likelihood alone, same process and point,
            # timed in alternation with ours
            out["eval"], out["sm_loglike"] = paired_median_times(
                [lambda: f(x), statsmodels_loglike(which, y, model)], repeats)
        else:
            out["eval"] = median_time(lambda: f(x), repeats)[0]
    return out


def run_worker(lib, which, cache, repeats, nuts=0, sampler="default") -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache}/pt",
               NUMBA_CACHE_DIR=f"{cache}/nb", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, __file__, "--worker", lib, which, str(repeats), str(nuts), sampler]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{lib}/{which} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-nuts", action="store_true")
    ap.add_argument("--nuts-only", action="store_true", help="only the pm.sample comparison")
    ap.add_argument("--ppc", action="store_true",
                    help="only the posterior predictive + residuals timing (Nile, seasonal)")
    ap.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS,
                    help="libraries to measure (default: all)")
    ap.add_argument("--worker", nargs=5, metavar=("LIB", "MODEL", "REPEATS", "NUTS", "SAMPLER"))
    args = ap.parse_args(argv)
    if args.worker:
        lib, which, repeats, nuts, sampler = args.worker
        print(json.dumps(worker(lib, which, int(repeats), int(nuts), sampler)))
        return 0
    import pymc
    import pymc_extras

    repeats = 5 if args.quick else 15
    if args.ppc:
        return main_ppc(args)
    rows, sm_ll = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in [] if args.nuts_only else args.libs:
            cache = f"{tmp}/{lib}"
            for which in MODELS:
                cold = run_worker(lib, which, cache, repeats)
                warm = run_worker(lib, which, cache, repeats)
                rows[lib, which] = (cold["compile"], warm["compile"], warm["eval"])
                if "sm_loglike" in warm:
                    sm_ll[which] = (warm["sm_loglike"], warm["eval"])
                print(f"  {lib:12s} {which:9s} compile cold {cold['compile']:6.1f} s, warm "
                      f"{warm['compile']:5.2f} s, logp+grad {warm['eval'] * 1e6:9.1f} us",
                      file=sys.stderr, flush=True)
        nuts = {}
        if not args.no_nuts:
            draws = 300 if args.quick else 1000
            runs = [(lib, "default") for lib in args.libs]
            if "pymc-dlm" in args.libs:
                runs += [("pymc-dlm", "adapt_full")]
                if importlib.util.find_spec("nutpie") is not None:
                    runs += [("pymc-dlm", "nutpie")]
            for lib, sampler in runs:
                if args.nuts_only:  # a first run fills the caches: the timed one is warm
                    run_worker(lib, "nile", f"{tmp}/{lib}", repeats, draws, sampler)
                nuts[lib, sampler] = run_worker(lib, "nile", f"{tmp}/{lib}", repeats, draws,
                                                sampler)

    print(f"\nPyMC likelihood, one run (pymc {pymc.__version__}, pymc-extras "
          f"{pymc_extras.__version__}, BLAS 1 thread)\n")
    head = (f"{'model':42s} {'library':12s} {'compile cold':>12s} {'warm':>7s} "
            f"{'logp+grad':>11s} {'extras/this':>11s}")
    if rows:
        print(head)
        print("-" * len(head))
    libs = args.libs
    for which, label in MODELS.items() if rows else ():
        for lib in libs:
            c, w, e = rows[lib, which]
            ratio = (f"{rows['pymc-extras', which][2] / e:10.1f}x"
                     if lib != "pymc-extras" and "pymc-extras" in libs else "")
            print(f"{label if lib == libs[0] else '':42s} {lib:13s} {c:11.1f}s {w:6.2f}s "
                  f"{e * 1e6:9.1f}us {ratio:>11s}")
    if sm_ll:
        print("\npymc-dlm's logp+grad against statsmodels' log-likelihood alone (its default "
              "filter, same variances, same process)")
        for which, (sm, ours) in sm_ll.items():
            print(f"  {MODELS[which]:42s} statsmodels loglike {sm * 1e6:9.1f} us   pymc-dlm "
                  f"logp+grad {ours * 1e6:9.1f} us   statsmodels/this {sm / ours:5.2f}x")
    if nuts:
        draws = 300 if args.quick else 1000
        print(f"\npm.sample on the Nile local level: 2 chains x ({draws} tune + {draws} draws), "
              "cores=1, warm caches, compile included")
        for (lib, sampler), r in nuts.items():
            print(f"  {lib:13s} {sampler:10s} wall {r['nuts_wall']:7.1f} s   min bulk ESS "
                  f"{r['ess_min']:7.0f}   ESS/s {r['ess_min'] / r['nuts_wall']:7.1f}")
        for lib in [x for x in libs if x != "pymc-extras" and "pymc-extras" in libs]:
            print(f"  speed-up (wall, default sampler) of {lib} over pymc-extras: "
                  f"{nuts['pymc-extras', 'default']['nuts_wall'] / nuts[lib, 'default']['nuts_wall']:.1f}x")
        print(f"  samplers: default = pm.sample's own choice (pymc {pymc.__version__}); "
              "adapt_full = PyMC's NUTS with init='jitter+adapt_full' (dense mass matrix); "
              "nutpie = nuts_sampler='nutpie'")
    return 0


def main_ppc(args) -> int:
    """The --ppc table: one warm process per library and model."""
    draws = 100 if args.quick else 1000
    libs = [lib for lib in args.libs if lib != "pymc-dlm-scan"]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in libs:
            for which in ("nile", "seasonal"):
                run_worker(lib, which, f"{tmp}/{lib}", 1, draws, "ppc")  # fills the caches
                res[lib, which] = run_worker(lib, which, f"{tmp}/{lib}", 1, draws, "ppc")
    print(f"\nposterior predictive of y for 2 x {draws} draws (pymc-dlm: one-step-ahead, plus "
          "add_residuals; pymc-extras: its observation variable), warm caches")
    for (lib, which), r in res.items():
        print(f"  {MODELS[which]:42s} {lib:12s} wall {r['ppc_wall']:7.2f} s   peak "
              f"{r['ppc_peak_mb']:8.1f} MB   (first call, compiling: {r['ppc_compile']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
