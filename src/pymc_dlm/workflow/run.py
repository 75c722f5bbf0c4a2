"""The command line's fit: read a series, fit a formula by MLE, EM, MAP or NUTS, and write a
report folder (summary text and JSON, parameters, forecasts, plots)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..estimation.report import FitStatistics
from ..numeric import loglike
from ..spec.model import StateSpaceModel
from .fit import fit
from .formula import Formula, parse_formula

__all__ = ["METHODS", "PointFit", "read_series", "run_fit"]

METHODS = ("mle", "em", "map", "nuts")


@dataclass(frozen=True, eq=False, repr=False)
class PointFit(FitStatistics):
    """A model at a point estimate from PyMC (MAP, or the posterior median for NUTS), with the
    classical results' filter, smoother, forecasts and plots."""

    model: StateSpaceModel
    params: dict
    log_likelihood: float
    converged: bool | None  # NUTS: every R-hat < 1.01 (two chains or more); None: not known
    n_iter: int
    nobs: int
    df_model: int
    method: str = "map"
    data: Any = None
    extra: str = field(default="")

    def summary(self) -> str:
        title = {"map": "Maximum a posteriori (PyMC find_MAP)",
                 "nuts": "Posterior median (PyMC NUTS)"}[self.method]
        lines = self._header(title) + [f"{'parameter':<24}{'estimate':>16}"]
        lines += [f"{k:<24}{v:>16.6g}" for k, v in self.params.items()]
        return "\n".join(lines + ([self.extra] if self.extra else []))


def read_series(path: str | None, column: str | None = None) -> pd.Series:
    """A column of a CSV file as a float Series; the first other column is the index (dates
    parsed, a regular frequency inferred).  No path: the bundled Nile data.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown column, non-numeric values.
    """
    if path is None:
        from ..datasets import load_nile

        return load_nile()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    df = pd.read_csv(p)
    if column is None:
        numeric = [c for c in df.columns[1:] if pd.api.types.is_numeric_dtype(df[c])]
        if not numeric:
            raise ValueError(f"{path}: no numeric column after the first; name one with --column")
        column = numeric[0]
    if column not in df.columns:
        raise ValueError(f"{path}: no column {column!r}; columns are {list(df.columns)}")
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: column {column!r} is not numeric (row {i + 2}: "
                         f"{df[column].iloc[i]!r}); leave a cell empty for a missing value")
    others = [c for c in df.columns if c != column]
    index = None
    if others:
        raw = df[others[0]]
        if pd.api.types.is_integer_dtype(raw):
            index = pd.Index(raw, name=others[0])
        else:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(raw), name=others[0])
                freq = pd.infer_freq(index) if len(index) >= 3 else None
                index = pd.DatetimeIndex(index, freq=freq)
            except (ValueError, TypeError):
                index = None
    return pd.Series(values.to_numpy(float), index=index, name=column)


def _bayes(formula: Formula, y: pd.Series, method: str, draws: int, tune: int, chains: int,
           seed: int | None) -> tuple[PointFit, Any]:
    import pymc as pm

    from .pymc_model import bayesian

    model = bayesian(formula.text, y)  # priors sigma.X ~ HalfNormal(sd(y)), phi.ar ~ U(-1, 1)
    names = list(formula.param_names)
    if method == "map":
        with model:
            point = pm.find_MAP(progressbar=False, return_inferencedata=True, jitter=False)
        values, idata, extra = [float(point.posterior[n].squeeze()) for n in names], None, ""
        converged = None  # find_MAP does not report it
    else:
        import arviz as az

        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                              progressbar=True, compute_convergence_checks=False)
        values = [float(idata.posterior[n].median()) for n in names]
        table = az.summary(idata, var_names=names)
        extra = "\n" + table.to_string()
        # R-hat needs two chains or more
        converged = bool((table["r_hat"] < 1.01).all()) if chains > 1 else None
    numeric = formula.build(values)
    res = PointFit(
        model=numeric, params=dict(zip(formula.param_names, values, strict=True)),
        log_likelihood=loglike(numeric, y), converged=converged, n_iter=0,
        nobs=int(np.count_nonzero(~np.isnan(y.to_numpy()))),
        df_model=len(names) + int(np.sum(numeric.diffuse)), method=method, data=y, extra=extra)
    return res, (model, idata)


def _natural(res: Any, formula: Formula) -> dict:
    """Parameters on their own scale, in the one naming scheme of ``docs/estimation.md``:
    variances ``sigma2.X``, AR coefficients ``phi.ar``, covariance blocks ``cov(...)``."""
    if isinstance(res, PointFit):  # PyMC's standard deviations sigma.X, squared
        return {e: (float(v) ** 2 if n.startswith("sigma.") else float(v))
                for n, e, v in zip(formula.param_names, formula.estimate_names,
                                   res.params.values(), strict=True)}
    if hasattr(res, "estimates"):  # MLE
        return {k: float(v) for k, v in res.estimates.items()}
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
            for k, v in res.params.items()}


def run_fit(y: pd.Series, formula: str, method: str, out: str | Path, *, steps: int = 12,
            draws: int = 500, tune: int = 500, chains: int = 2, seed: int | None = None,
            echo: Callable[[str], Any] = print) -> dict:
    """Fit ``formula`` to ``y`` by ``method`` and write the report folder ``out``:
    ``summary.txt``, ``summary.json``, ``params.csv``, ``forecast.csv`` and the PNG plots
    ``smoothed``, ``components``, ``forecast``, ``diagnostics``.  Returns the JSON summary.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import plots

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    f = parse_formula(formula)
    if np.all(np.isnan(y.to_numpy())):
        raise ValueError("the series has no observed value")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bayes = None
    if method in ("mle", "em"):
        kw: dict = {}
        if method == "em":
            kw["callback"] = lambda it, llf: (
                print(f"EM iteration {it:4d}  log-likelihood {llf:.6f}", file=sys.stderr)
                if it % 10 == 0 or it == 1 else None)
            kw["max_iter"] = 500
        res = fit(formula, y, method, **kw)
    else:
        res, bayes = _bayes(f, y, method, draws, tune, chains, seed)
    natural = _natural(res, f)
    text = res.summary()
    (out / "summary.txt").write_text(text + "\n")
    echo(text)
    pd.DataFrame({"parameter": list(natural), "estimate": list(natural.values())}).to_csv(
        out / "params.csv", index=False)
    if bayes is not None and method == "nuts":
        from ..bayes import sample_forecast

        fc_draws = sample_forecast(*bayes, steps, random_seed=seed)
        paths = fc_draws[y.name if y.name in fc_draws else list(fc_draws.data_vars)[0]]
        flat = paths.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        future = res.forecast(steps).index
        fc = pd.DataFrame({"mean": flat.mean(0), "sd": flat.std(0),
                           "q2.5": np.quantile(flat, 0.025, 0)[()],
                           "q97.5": np.quantile(flat, 0.975, 0)}, index=future)
        ax = plots.plot_forecast_draws(flat, y, future)
        ax.figure.savefig(out / "forecast.png", dpi=100)
        plt.close(ax.figure)
    else:
        fc = res.forecast(steps)
        ax = res.plot("forecast", steps=steps)
        ax.figure.savefig(out / "forecast.png", dpi=100)
        plt.close(ax.figure)
    fc.to_csv(out / "forecast.csv")
    for kind in ("smoothed", "components", "diagnostics"):
        axes = res.plot(kind)
        fig = np.ravel(np.asarray(axes, dtype=object))[0].figure
        fig.savefig(out / f"{kind}.png", dpi=100)
        plt.close(fig)
    summary = {
        "formula": formula, "method": method, "nobs": res.nobs,
        "log_likelihood": res.log_likelihood, "aic": res.aic, "bic": res.bic,
        "converged": None if res.converged is None else bool(res.converged), "n_iter": int(res.n_iter), "parameters": natural,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(f"report written to {out}/")
    return summary
