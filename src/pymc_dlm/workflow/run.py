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
        lines += self._coefficient_lines()
        return "\n".join(lines + ([self.extra] if self.extra else []))


def read_series(path: str | None, column: str | None = None) -> pd.Series:
    """A column of a CSV file as a float Series on a regular time index (:func:`read_data`)."""
    return read_data(path, column)[0]


def read_data(path: str | None, column: str | None = None, *, dayfirst: bool = False,
              freq: str | None = None, echo: Callable[[str], Any] | None = None
              ) -> tuple[pd.Series, pd.DataFrame | None]:
    """A CSV file as the series to fit and the other columns, on one regular time index.

    The first column other than ``column`` is the time index: integers (years...) or dates
    (parsed month-first unless ``dayfirst``; a frequency inferred unless ``freq`` is given).
    Absent periods become missing rows (:func:`~pymc_dlm.numeric.calendar.regularize`);
    ``echo`` is told what was done.  No path: the bundled Nile data.

    Returns
    -------
    y : pandas.Series
    data : pandas.DataFrame or None
        Every column of the file but the index, on y's index (for ``reg(...)`` terms).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown column, non-numeric values, an index column that holds
        neither integers nor dates, duplicate or unsorted periods, no inferable frequency.
    """
    import warnings

    from ..numeric.calendar import GapWarning, regularize

    say = echo or (lambda text: None)
    if path is None:
        from ..datasets import load_nile

        return load_nile(), None
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV file ({err})") from None
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
        name = others[0]
        raw = df[name]
        if pd.api.types.is_integer_dtype(raw):
            index = pd.Index(raw, name=name)
            say(f"time index: integers from column {name!r}")
        else:
            iso = raw.astype(str).str.match(r"^\d{4}").all()  # year first: dayfirst is moot
            with warnings.catch_warnings(record=True) as guessed:
                warnings.simplefilter("always", UserWarning)  # pandas' format guesses
                try:
                    index = pd.DatetimeIndex(
                        pd.to_datetime(raw, dayfirst=dayfirst and not iso), name=name)
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"{path}: the index column {name!r} holds neither integers nor dates "
                        f"(row 2: {raw.iloc[0]!r}: {err}); use --dayfirst for dd/mm/yyyy dates"
                    ) from None
            if iso:
                order = "year first"
            elif dayfirst or any("%d/%m" in str(w.message) for w in guessed):
                order = "day-first"
            else:
                order = "month-first (--dayfirst for dd/mm/yyyy)"
            say(f"time index: dates from column {name!r}, parsed {order}: "
                f"{raw.iloc[0]!r} -> {index[0].date()}")
    frame = df.drop(columns=others[:1])
    numeric = [c for c in frame.columns  # columns with text in them cannot be regressors
               if not (pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()).any()]
    frame = frame[numeric].apply(pd.to_numeric).astype(float)
    if index is not None:
        frame.index = index
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GapWarning)
        frame = regularize(frame, freq=freq)
    for w in caught:
        say(str(w.message).replace("y's index", "the data"))
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.freq is not None:
        say(f"frequency {frame.index.freqstr}, {len(frame)} periods "
            f"{frame.index[0].date()} .. {frame.index[-1].date()}")
    y = frame[column].rename(column)
    rest = frame.drop(columns=[column])
    return y, (rest if rest.shape[1] else None)


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

        from ..bayes import add_residuals

        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                              progressbar=True, compute_convergence_checks=False)
            # the check loop: pointwise log-likelihood (LOO), one-step-ahead posterior
            # predictive (the DLM's default replicates) and the residuals of every draw
            pm.compute_log_likelihood(idata, progressbar=False)
            pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=seed,
                                           progressbar=False)
        add_residuals(idata, model)
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


def _nuts_report(out: Path, model: Any, idata: Any, seed: int | None) -> dict:
    """The NUTS part of the report folder: ``trace.png``, ``rank.png`` (two chains or more),
    ``ppc.png`` (one-step
    posterior predictive PIT), ``diagnostics.png`` (standardized residuals, ACF, QQ and PIT
    with posterior bands), ``posterior.zarr`` (the whole DataTree: posterior, sample stats,
    log-likelihood, posterior predictive, residuals; ``xarray.open_datatree(path,
    engine="zarr", consolidated=False)`` reads it).  Returns the summary's extra entries:
    R-hat, bulk and tail ESS per parameter, PSIS-LOO's elpd and the largest Pareto k."""
    import warnings

    import arviz as az
    import matplotlib.pyplot as plt

    from ..plots.bayes import plot_residual_diagnostics

    names = [v.name for v in model.free_RVs]
    plots = [("trace", az.plot_trace_dist)]
    if idata.posterior.sizes["chain"] > 1:  # rank plots compare chains
        plots.append(("rank", az.plot_rank))
    for fname, draw in plots:
        pc = draw(idata, var_names=names)
        pc.savefig(out / f"{fname}.png", dpi=100)
        plt.close("all")
    rv = [v.name for v in model.observed_RVs][0]
    # add_residuals left the diffuse steps (no proper one-step prediction) out of the groups
    pc = az.plot_ppc_pit(idata, var_names=[rv])
    pc.savefig(out / "ppc.png", dpi=100)
    plt.close("all")
    pc = plot_residual_diagnostics(idata, figure_kwargs={"figsize": (14, 3.5)})
    pc.savefig(out / "diagnostics.png", dpi=100)
    plt.close("all")
    idata.to_zarr(out / "posterior.zarr", mode="w", consolidated=False)  # a rerun replaces it
    table = az.summary(idata, var_names=names)
    with warnings.catch_warnings():  # a short run can have large k-hat: reported below
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata, var_name=rv, pointwise=True)
    return {
        "r_hat": {k: (None if not np.isfinite(v) else float(v)) for k, v in table["r_hat"].items()},
        "ess_bulk": {k: float(v) for k, v in table["ess_bulk"].items()},
        "ess_tail": {k: float(v) for k, v in table["ess_tail"].items()},
        "elpd_loo": float(loo.elpd), "max_pareto_k": float(loo.pareto_k.max()),
    }


def _nuts_state_plots(out: Path, model: Any, idata: Any, numeric: Any, y: pd.Series,
                      seed: int | None, max_draws: int = 400) -> None:
    """``smoothed.png`` and ``components.png`` of a NUTS fit: posterior median and 94% band
    from one simulation-smoother path per posterior draw (at most ``max_draws`` draws, thinned
    evenly), i.e. from p(alpha | y): state and parameter uncertainty together."""
    import matplotlib.pyplot as plt

    from ..bayes import sample_states
    from ..plots.bayes import plot_component_draws, plot_state_draws

    post = idata.posterior
    total = post.sizes["chain"] * post.sizes["draw"]
    step = max(1, -(-total // max_draws))
    thinned = post.to_dataset().isel(draw=slice(None, None, step))
    draws = sample_states(model, thinned, kind="simulated", random_seed=seed)
    for kind, axes in (("smoothed", plot_state_draws(draws, y.to_numpy())),
                       ("components", plot_component_draws(draws, numeric))):
        fig = axes[0].figure
        fig.savefig(out / f"{kind}.png", dpi=100)
        plt.close(fig)


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


def _check_run(y: pd.Series, f: Formula, method: str, out: Path, draws: int, tune: int,
               chains: int) -> None:
    """Every check on the command's input, before anything is written."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file; name a folder for the report")
    if method == "nuts" and (draws < 1 or chains < 1 or tune < 0):
        raise ValueError(f"NUTS needs --draws >= 1, --chains >= 1 and --tune >= 0; got "
                         f"draws {draws}, chains {chains}, tune {tune}")
    nobs = int(np.count_nonzero(~np.isnan(y.to_numpy())))
    if nobs == 0:
        raise ValueError("the series has no observed value")
    n_diffuse = int(np.sum(f.build(np.full(len(f.param_names), 0.5)).diffuse))
    if nobs < n_diffuse + 3:
        raise ValueError(
            f"the series has {nobs} observed value{'s' if nobs != 1 else ''}; the model "
            f"{f.text!r} needs at least {n_diffuse + 3} ({n_diffuse} diffuse initial "
            f"state{'s' if n_diffuse != 1 else ''} and 3 for the residual diagnostics)")


def run_fit(y: pd.Series, formula: str, method: str, out: str | Path, *, steps: int = 12,
            draws: int = 500, tune: int = 500, chains: int = 2, seed: int | None = None,
            data: pd.DataFrame | None = None, exog: tuple[str, ...] = (),
            echo: Callable[[str], Any] = print) -> dict:
    """Fit ``formula`` to ``y`` by ``method`` and write the report folder ``out``:
    ``summary.txt``, ``summary.json``, ``params.csv``, ``forecast.csv`` and the PNG plots
    ``smoothed``, ``components``, ``forecast``, ``diagnostics``.  Returns the JSON summary.

    ``exog`` adds ``reg(...)`` on those columns of ``data`` to the formula.  With regressors,
    the rows after the last observed y (y empty, regressors given) are the forecast horizon
    (at most ``steps`` of them); without such rows no forecast is written.  All input is
    checked before anything is written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import plots

    if exog:
        formula = f"{formula} + reg({', '.join(exog)})"
    out = Path(out)
    f = parse_formula(formula)
    exog_future = None
    if f.regressors:
        if data is None:
            raise ValueError(f"the formula {formula!r} has regressors {list(f.regressors)} but "
                             "the data has no other columns")
        last = int(np.flatnonzero(~np.isnan(y.to_numpy()))[-1]) if y.notna().any() else -1
        tail = data.iloc[last + 1 :][list(c for c in f.regressors if c in data.columns)]
        y, data = y.iloc[: last + 1], data.iloc[: last + 1]
        steps = min(steps, len(tail))
        exog_future = tail.iloc[:steps] if steps else None
        if steps:
            echo(f"forecast: {steps} period{'s' if steps > 1 else ''} after the data, with the "
                 f"regressors' values from the file")
        else:
            echo("no forecast: the regressors have no values after the data (add rows with y "
                 "empty and the regressors' future values)")
        f = f.bind(data, y.index)
    _check_run(y, f, method, out, draws, tune, chains)
    out.mkdir(parents=True, exist_ok=True)
    bayes = None
    if method in ("mle", "em"):
        kw: dict = {}
        if method == "em":
            kw["callback"] = lambda it, llf: (
                print(f"EM iteration {it:4d}  log-likelihood {llf:.6f}", file=sys.stderr)
                if it % 10 == 0 or it == 1 else None)
            kw["max_iter"] = 500
        res = fit(formula, y, method, data=data if f.regressors else None, **kw)
    else:
        res, bayes = _bayes(f, y, method, draws, tune, chains, seed)
    natural = _natural(res, f)
    text = res.summary()
    (out / "summary.txt").write_text(text + "\n")
    echo(text)
    pd.DataFrame({"parameter": list(natural), "estimate": list(natural.values())}).to_csv(
        out / "params.csv", index=False)
    nuts = bayes is not None and method == "nuts"
    summary_extra = _nuts_report(out, *bayes, seed) if nuts else {}
    if steps == 0:
        pass
    elif bayes is not None and method == "nuts":
        from ..bayes import sample_forecast

        fc_draws = sample_forecast(*bayes, steps, exog=exog_future, random_seed=seed)
        paths = fc_draws[y.name if y.name in fc_draws else list(fc_draws.data_vars)[0]]
        flat = paths.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        future = res.forecast(steps, exog=exog_future).index
        fc = pd.DataFrame({"mean": flat.mean(0), "sd": flat.std(0),
                           "q2.5": np.quantile(flat, 0.025, 0)[()],
                           "q97.5": np.quantile(flat, 0.975, 0)}, index=future)
        ax = plots.plot_forecast_draws(flat, y, future)
        ax.figure.savefig(out / "forecast.png", dpi=100)
        plt.close(ax.figure)
        fc.to_csv(out / "forecast.csv")
    else:
        fc = res.forecast(steps, exog=exog_future)
        ax = res.plot("forecast", steps=steps, exog=exog_future)
        ax.figure.savefig(out / "forecast.png", dpi=100)
        plt.close(ax.figure)
        fc.to_csv(out / "forecast.csv")
    kinds = ("smoothed", "components", "diagnostics")
    if method == "nuts":  # smoothed, components and diagnostics: posterior bands
        kinds = ()
        _nuts_state_plots(out, *bayes, res.model, y, seed)
    for kind in kinds:
        axes = res.plot(kind)
        fig = np.ravel(np.asarray(axes, dtype=object))[0].figure
        fig.savefig(out / f"{kind}.png", dpi=100)
        plt.close(fig)
    summary = {
        "formula": formula, "method": method, "nobs": res.nobs,
        "log_likelihood": res.log_likelihood, "aic": res.aic, "bic": res.bic,
        "converged": None if res.converged is None else bool(res.converged), "n_iter": int(res.n_iter), "parameters": natural,
    }
    table = res.coefficients()
    if not table.empty:
        summary["coefficients"] = {k: {"coef": float(r["coef"]), "std_err": float(r["std err"])}
                                   for k, r in table.iterrows()}
    summary.update(summary_extra)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(f"report written to {out}/")
    return summary
