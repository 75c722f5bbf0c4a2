"""The top layer: one-call workflows (``fit``, ``bayesian``) and model formulas."""

from .fit import fit, formula_start, model_function
from .formula import Formula, parse_formula
from .many import ManyResult, fit_many

__all__ = ["Formula", "ManyResult", "bayesian", "fit", "fit_many", "formula_start", "model_function", "parse_formula"]


def __getattr__(name: str):
    if name == "bayesian":  # PyMC is loaded only for the Bayesian workflow
        from .pymc_model import bayesian

        return bayesian
    raise AttributeError(f"module 'pymc_dlm.workflow' has no attribute {name!r}")
