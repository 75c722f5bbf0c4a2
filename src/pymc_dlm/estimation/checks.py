r"""Checks shared by the estimators: can the data identify the model, which parameters are
fixed, and the data's scale (for starting values and for what "near zero" means).

A fit on data that cannot identify its parameters has no maximum to report: an all-missing
series leaves the start where it was; a constant series drives every variance to zero and
the log-likelihood to :math:`+\infty`; with fewer observations than parameters plus diffuse
initial states (each diffuse state uses up one observation, D&K 2012 section 7.2.2) the
likelihood is flat in some direction.  :func:`check_data` raises for all three, before any
optimisation, so no estimator returns a confident fit there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .transforms import natural_scale

__all__ = ["SMALL_VARIANCE", "apply_fixed", "check_data", "data_scale", "is_log_variance"]

#: A variance below this times :func:`data_scale` is at (numerically) zero: ``fit_mle`` tests
#: it as a boundary candidate, and both estimators' summaries print "0 (at boundary)".
SMALL_VARIANCE = 1e-7


def check_data(y: np.ndarray, *, n_params: int, n_diffuse: int = 0) -> None:
    """Raise ``ValueError`` when y cannot identify a model with ``n_params`` free parameters.

    Parameters
    ----------
    y : (n, p) ndarray
        Observations, NaN for missing.
    n_params : int
        Free parameters of the fit.
    n_diffuse : int
        Diffuse initial states (each takes one observation to resolve).

    Raises
    ------
    ValueError
        No observed value; a series whose observed values are all equal (its variances go
        to zero and the log-likelihood to infinity); fewer observed values than
        ``n_params + n_diffuse``.

    Examples
    --------
    >>> import numpy as np
    >>> check_data(np.ones((10, 1)), n_params=2)
    Traceback (most recent call last):
    ...
    ValueError: series 0 is constant (every observed value is 1.0): its variances would go to zero and the log-likelihood to infinity; there is nothing to estimate
    >>> check_data(np.array([[1.0], [2.0], [np.nan]]), n_params=2, n_diffuse=1)
    Traceback (most recent call last):
    ...
    ValueError: y has 2 observed values, fewer than the 2 parameters plus 1 diffuse initial states it must identify
    """
    y = np.asarray(y, dtype=np.float64)
    observed = ~np.isnan(y)
    nobs = int(observed.sum())
    if nobs == 0:
        raise ValueError("y has no observed value (every entry is NaN); there is nothing to fit")
    for j in range(y.shape[1]):
        col = y[observed[:, j], j]
        if col.size > 1 and np.ptp(col) == 0.0:
            raise ValueError(f"series {j} is constant (every observed value is {float(col[0])!r}): "
                             "its variances would go to zero and the log-likelihood to "
                             "infinity; there is nothing to estimate")
    if nobs < n_params + n_diffuse:
        raise ValueError(f"y has {nobs} observed values, fewer than the {n_params} parameters "
                         f"plus {n_diffuse} diffuse initial states it must identify")


def data_scale(y: np.ndarray) -> float:
    """The data's variance scale: the mean over series of the variance of the first
    differences (of the levels when differences are not available), 1 when that is 0.

    Examples
    --------
    >>> data_scale(np.array([[1.0], [3.0], [2.0], [6.0]]))
    4.222222222222222
    """
    y = np.asarray(y, dtype=np.float64)
    out = []
    for j in range(y.shape[1]):
        col = y[~np.isnan(y[:, j]), j]
        d = np.diff(col)
        v = float(np.var(d)) if d.size > 1 else float(np.var(col)) if col.size > 1 else 0.0
        if v > 0:
            out.append(v)
    return float(np.mean(out)) if out else 1.0


def is_log_variance(name: str) -> bool:
    """Whether an unconstrained parameter's name says it is a log-variance (``"log sigma2.X"``)."""
    return str(name).startswith("log sigma2.")


def apply_fixed(names: tuple, init: np.ndarray, fixed: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """The start with the ``fixed`` values put in, and the mask of the fixed entries.

    A key is an unconstrained name (its value is psi) or a natural one (``"sigma2.obs"`` for
    ``"log sigma2.obs"``: its value on the variance scale, mapped to psi; a variance fixed at
    0 is held at -700, i.e. exactly zero in the filter).

    Examples
    --------
    >>> x, m = apply_fixed(("log sigma2.obs", "log sigma2.level"), np.zeros(2), {"sigma2.obs": 1.0})
    >>> x.tolist(), m.tolist()
    ([0.0, 0.0], [True, False])
    """
    init = np.array(init, dtype=np.float64)
    mask = np.zeros(init.size, bool)
    if not fixed:
        return init, mask
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict of name -> value; got {type(fixed).__name__}")
    natural = natural_scale(names, init)[0]
    for key, value in fixed.items():
        v = float(value)
        if key in names:
            i = names.index(key)
            init[i] = v
        elif key in natural:
            i = natural.index(key)
            head = str(names[i]).partition(" ")[0]
            if head == "log":
                if v < 0:
                    raise ValueError(f"fixed {key!r} must be >= 0; got {v}")
                init[i] = np.log(v) if v > 0 else -700.0
            elif head == "atanh":
                if not -1 < v < 1:
                    raise ValueError(f"fixed {key!r} must be in (-1, 1); got {v}")
                init[i] = np.arctanh(v)
            elif head == "logit":
                if not 0 < v < 1:
                    raise ValueError(f"fixed {key!r} must be in (0, 1); got {v}")
                init[i] = np.log(v / (1.0 - v))
            elif head == "log(x-2)":
                if not v > 2:
                    raise ValueError(f"fixed {key!r} must be > 2; got {v}")
                init[i] = np.log(v - 2.0)
            else:
                init[i] = v
        else:
            raise ValueError(f"fixed names an unknown parameter {key!r}; expected one of "
                             f"{sorted(set(names) | set(natural))}")
        mask[i] = True
    if mask.all():
        raise ValueError("fixed holds every parameter; there is nothing to estimate")
    return init, mask
