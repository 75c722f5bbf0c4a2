"""Command line: ``pymc-dlm demo`` and ``pymc-dlm fit`` (also ``python -m pymc_dlm ...``).

User errors (missing file, unknown column, bad formula, non-numeric data) print one line,
``pymc-dlm: error: ...``, and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    pymc-dlm ...
    0
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="pymc-dlm", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="fit a local level model to the bundled Nile data")
    demo.add_argument("--out", default="demo_output", help="folder for the plot")
    fit = sub.add_parser("fit", help="fit a structural model to a CSV column and write a report")
    fit.add_argument("data", nargs="?", help="CSV file (default: the bundled Nile data)")
    fit.add_argument("--column", help="the series to fit (default: first numeric column "
                     "after the first, which is the index)")
    fit.add_argument("--model", default="level",
                     help='model formula, e.g. "level + trend + seasonal(12)" (see '
                     "pymc_dlm.workflow.formula)")
    fit.add_argument("--method", default="mle", choices=["mle", "em", "map", "nuts"])
    fit.add_argument("--out", default="report", help="folder for the report")
    fit.add_argument("--steps", type=int, default=12, help="forecast horizon")
    fit.add_argument("--draws", type=int, default=500, help="NUTS draws per chain")
    fit.add_argument("--tune", type=int, default=500, help="NUTS tuning steps per chain")
    fit.add_argument("--chains", type=int, default=2, help="NUTS chains")
    fit.add_argument("--seed", type=int, default=None, help="random seed (NUTS, forecasts)")
    fit.add_argument("--exog", default="", help="comma-separated columns of the CSV to regress "
                     "on (adds reg(...) to the model); rows after the data with the series empty "
                     "give their future values for the forecast")
    fit.add_argument("--dayfirst", action="store_true", help="dates are day-first (dd/mm/yyyy)")
    fit.add_argument("--freq", default=None, help="frequency of the dates when it cannot be "
                     "inferred (pandas alias: MS, QS, W-SUN, D, B...)")
    args = parser.parse_args(argv)
    if args.version:
        print(f"pymc-dlm {__version__}")
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out)
        return 0
    if args.command == "fit":
        from .workflow.run import read_data, run_fit

        try:
            if args.steps < 1:
                raise ValueError(f"--steps must be >= 1; got {args.steps}")
            exog = tuple(c.strip() for c in args.exog.split(",") if c.strip())
            y, data = read_data(args.data, args.column, dayfirst=args.dayfirst, freq=args.freq,
                                echo=print)
            run_fit(y, args.model, args.method, args.out, steps=args.steps, draws=args.draws,
                    tune=args.tune, chains=args.chains, seed=args.seed, data=data, exog=exog)
        except (FileNotFoundError, ValueError, TypeError) as err:
            print(f"pymc-dlm: error: {err}", file=sys.stderr)
            return 2
        return 0
    parser.print_help(sys.stderr)
    return 2
