r"""Maps from an unconstrained parameter to a positive one (NumPy and PyTensor alike).

* ``exp`` / ``log``: :math:`\sigma^2 = e^{\psi}`, :math:`\psi = \log\sigma^2`.
* ``softplus`` / ``inverse_softplus``: :math:`\sigma^2 = \log(1 + e^{\psi})`,
  :math:`\psi = \sigma^2 + \log(1 - e^{-\sigma^2})`, written so that neither overflows
  for large arguments nor loses precision for tiny ones.

A PyTensor input gives a PyTensor expression (for ``fit_mle``'s ``model_fn`` or a PyMC
model); anything else is computed with NumPy.

The estimators name an unconstrained parameter after the map and the parameter it maps to:
``"log sigma2.level"`` is :math:`\psi` with :math:`\sigma^2_{level} = e^\psi`,
``"atanh phi.ar"`` is :math:`\psi` with :math:`\phi = \tanh\psi`; :func:`natural_scale`
reads these prefixes to report estimates on the parameters' own scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = ["exp", "inverse_softplus", "log", "natural_scale", "softplus"]


def _symbolic(x: Any) -> bool:
    return isinstance(x, Variable)


def _positive(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if not np.all(y > 0):
        raise ValueError(f"{name} needs positive input; got min {np.min(y)!r}")
    return y


def softplus(x: Any) -> Any:
    r"""Softplus :math:`\log(1 + e^x)`, stable for all x.

    Examples
    --------
    >>> float(softplus(800.0)), f"{float(softplus(-30.0)):.6e}"
    (800.0, '9.357623e-14')
    >>> round(float(softplus(0.0)), 12)
    0.69314718056
    """
    if _symbolic(x):
        return pt.softplus(x)
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def inverse_softplus(y: Any) -> Any:
    r"""Inverse of :func:`softplus`: :math:`y + \log(-\mathrm{expm1}(-y))` for y > 0.

    Accurate for tiny y (where it is :math:`\approx \log y`) and large y (:math:`\approx y`).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([-700.0, -30.0, 0.0, 30.0, 700.0])
    >>> bool(np.allclose(inverse_softplus(softplus(x)), x, rtol=1e-12))
    True
    """
    if _symbolic(y):
        return y + pt.log(-pt.expm1(-y))
    y = _positive(y, "inverse_softplus")
    return y + np.log(-np.expm1(-y))


def exp(x: Any) -> Any:
    """:math:`e^x` (PyTensor for a PyTensor input, NumPy otherwise).

    Examples
    --------
    >>> float(exp(0.0))
    1.0
    """
    return pt.exp(x) if _symbolic(x) else np.exp(np.asarray(x, dtype=np.float64))


def log(y: Any) -> Any:
    """Inverse of :func:`exp`, for y > 0.

    Examples
    --------
    >>> float(log(1.0))
    0.0
    """
    return pt.log(y) if _symbolic(y) else np.log(_positive(y, "log"))


#: prefix of an unconstrained parameter's name -> (map to the natural scale, its derivative)
_MAPS = {
    "log": (np.exp, np.exp),
    "atanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
}


def natural_scale(names: Any, psi: Any, cov: Any = None) -> tuple:
    r"""Parameters on their own scale, with delta-method covariances.

    A name ``"log X"`` gives ``X = exp(psi)``, ``"atanh X"`` gives ``X = tanh(psi)``; any
    other name is kept as it is (identity).  With the Jacobian
    :math:`J = \mathrm{diag}(\partial X_i / \partial\psi_i)` the covariance is
    :math:`J \Sigma_\psi J'` (the delta method).

    Parameters
    ----------
    names : (k,) sequence of str
    psi : (k,) array_like
    cov : (k, k) array_like, optional

    Returns
    -------
    names : tuple of str
        The natural names (prefix dropped).
    values : (k,) ndarray
    cov : (k, k) ndarray or None

    Examples
    --------
    >>> import numpy as np
    >>> n, v, c = natural_scale(["log sigma2.obs", "atanh phi.ar", "psi[2]"],
    ...                         [np.log(4.0), 0.0, 1.5], np.eye(3) * 0.01)
    >>> n, v.round(6).tolist(), np.sqrt(np.diag(c)).round(6).tolist()
    (('sigma2.obs', 'phi.ar', 'psi[2]'), [4.0, 0.0, 1.5], [0.4, 0.1, 0.1])
    """
    psi = np.asarray(psi, dtype=np.float64)
    out_names, values, jac = [], np.empty_like(psi), np.ones_like(psi)
    for i, name in enumerate(names):
        head, _, rest = str(name).partition(" ")
        if rest and head in _MAPS:
            f, df = _MAPS[head]
            out_names.append(rest)
            values[i], jac[i] = f(psi[i]), df(psi[i])
        else:
            out_names.append(str(name))
            values[i] = psi[i]
    if cov is None:
        return tuple(out_names), values, None
    cov = np.asarray(cov, dtype=np.float64)
    return tuple(out_names), values, cov * jac[:, None] * jac[None, :]
