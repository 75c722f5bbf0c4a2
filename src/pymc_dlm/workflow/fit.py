"""``pymc_dlm.fit``: one call for a classical fit, by maximum likelihood or EM."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..estimation import EMResult, MLEResult, fit_em, fit_mle
from ..numeric.calendar import index_of, regularize
from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from .formula import Formula, from_argument, parse_formula, to_argument

__all__ = ["fit", "formula_start", "model_function"]


def model_function(formula: Formula) -> Callable[[Any], StateSpaceModel]:
    r"""The formula's model as a function of unconstrained parameters for :func:`fit_mle`:
    :math:`\sigma^2 = \exp(\psi)` for variances (the standard deviation
    :math:`e^{\psi/2}` goes to the component), :math:`\phi = \tanh(\psi)` for AR
    coefficients, a cycle's period :math:`2 + e^\psi` and damping
    :math:`1/(1 + e^{-\psi})` (:func:`~pymc_dlm.workflow.formula.to_argument`); the
    parameters are named by :attr:`Formula.unconstrained_names`."""

    def model_fn(psi: Any) -> StateSpaceModel:
        values = [to_argument(name, psi[i]) for i, name in enumerate(formula.param_names)]
        return formula.build(values)

    return model_fn


def formula_start(formula: Formula, y: Any) -> np.ndarray:
    """The unconstrained starting point of :func:`model_function` from the data
    (:meth:`Formula.start`): log variances, atanh of AR coefficients, ...
    (:func:`~pymc_dlm.workflow.formula.from_argument`)."""
    start = formula.start(y)
    return np.array([from_argument(n, v) for n, v in zip(formula.param_names, start, strict=True)])


def fit(
    model: StateSpaceModel | str | Callable[[Any], StateSpaceModel],
    y: Any,
    method: str = "mle",
    *,
    init_params: Any = None,
    freq: Any = None,
    data: Any = None,
    optimizer: str = "L-BFGS-B",
    fixed: dict | None = None,
    **kwargs: Any,
) -> MLEResult | EMResult:
    r"""Fit a model to y by maximum likelihood or EM, the classical workflow in one call.

    Parameters
    ----------
    model : StateSpaceModel, str or callable
        A numeric model (its free variances are estimated, its values are the starting
        point, zeros stay zero); a formula such as ``"trend + seasonal(12)"``
        (:mod:`pymc_dlm.workflow.formula`; starting values from the data); or, for
        ``method="mle"``, a function ``psi -> StateSpaceModel`` with ``init_params``.
    y : (n,) or (n, p) array_like, Series or DataFrame
        Observations, NaN for missing; a pandas index is made regular (absent periods become
        missing values, :func:`~pymc_dlm.numeric.calendar.regularize`) and carried into
        every result.
    method : {"mle", "em"}
        :func:`~pymc_dlm.estimation.fit_mle` (exact gradients through the fused filter,
        L-BFGS-B, standard errors) or :func:`~pymc_dlm.estimation.fit_em`.
    init_params : array_like, optional
        Starting point of a function ``model`` (or of a formula's unconstrained parameters).
    data : pandas DataFrame, optional
        The columns named in a formula's ``reg(...)`` terms, rows matched to y's periods.
    freq : str or pandas.DateOffset, optional
        Frequency of y's dates when it cannot be inferred (e.g. ``"MS"``).
    optimizer : str, default "L-BFGS-B"
        SciPy's optimiser for ``method="mle"`` (:data:`pymc_dlm.estimation.mle.OPTIMIZERS`,
        e.g. "BFGS" or "Nelder-Mead").
    fixed : dict, optional
        Parameters held at a value, by name (``{"sigma2.obs": 15099.0}``; the names of
        ``docs/estimation.md``).
    **kwargs
        Passed to the estimator (``maxiter``, ``tol``, ``param_names``, ``convention``,
        ``burn``, ``concentrate_scale`` for MLE (with a formula, ``sigma2.obs`` is then held
        at 1);
        ``max_iter``, ``tol``, ``estimate`` for EM).

    Returns
    -------
    MLEResult or EMResult
        With ``summary()``, ``filter()``, ``smooth()``, ``forecast(steps, alpha)`` (a
        DataFrame), ``components()``, ``simulate()``, ``plot(kind)``.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> res = dlm.fit("level", dlm.datasets.load_nile())
    >>> round(res.log_likelihood, 4)
    -633.4646
    >>> res.forecast(2).round(1)
           mean  mean_se  mean_ci_lower  mean_ci_upper
    year                                              
    1971  798.4    143.5          517.1         1079.7
    1972  798.4    148.6          507.2         1089.5
    """
    check_option("method", method, ("mle", "em"))
    y = regularize(y, freq=freq)
    if method == "mle":
        kwargs.update(optimizer=optimizer, fixed=fixed)
    elif optimizer != "L-BFGS-B":
        raise ValueError("optimizer is for method='mle'; EM has no optimiser")
    elif fixed is not None:
        kwargs["fixed"] = fixed
    if isinstance(model, str):
        formula = parse_formula(model).bind(data, index_of(y))
        start = formula.start(y)
        if method == "em":
            if any(not n.startswith("sigma") for n in formula.param_names):
                raise ValueError("EM estimates variances only; a formula with ar(1), damped, "
                                 "arima or an estimated cycle period or damping needs "
                                 "method='mle'")
            model = formula.build(start)
        else:
            if init_params is None:
                init_params = formula_start(formula, y)
            kwargs.setdefault("param_names", formula.unconstrained_names)
            if kwargs.get("concentrate_scale") and not kwargs.get("fixed"):
                kwargs["fixed"] = {"sigma2.obs": 1.0}  # the others relative to the scale
            return fit_mle(model_function(formula), y, init_params, **kwargs)
    elif data is not None:
        raise ValueError("data= holds the columns of a formula's reg(...) terms; with a model "
                         "object put the regressors in Regression(X) instead")
    if method == "em":
        if not isinstance(model, StateSpaceModel):
            raise TypeError("method='em' needs a numeric StateSpaceModel (or a formula) as the "
                            f"starting point; got {type(model).__name__}")
        if init_params is not None:
            raise ValueError("init_params is for method='mle'; EM starts from the model's values")
        return fit_em(y, model, **kwargs)
    return fit_mle(model, y, init_params, **kwargs)
