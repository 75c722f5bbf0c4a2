"""Command line: ``pymc-dlm demo`` (also ``python -m pymc_dlm demo``)."""

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
    args = parser.parse_args(argv)
    if args.version:
        print(f"pymc-dlm {__version__}")
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out)
        return 0
    parser.print_help(sys.stderr)
    return 2
