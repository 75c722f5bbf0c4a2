r"""Maps from an unconstrained parameter to a positive one (NumPy and PyTensor alike).

* ``exp`` / ``log``: :math:`\sigma^2 = e^{\psi}`, :math:`\psi = \log\sigma^2`.
* ``softplus`` / ``inverse_softplus``: :math:`\sigma^2 = \log(1 + e^{\psi})`,
  :math:`\psi = \sigma^2 + \log(1 - e^{-\sigma^2})`, written so that neither overflows
  for large arguments nor loses precision for tiny ones.

A PyTensor input gives a PyTensor expression (for ``fit_mle``'s ``model_fn`` or a PyMC
model); anything else is computed with NumPy.

* ``pacf_to_ar`` / ``ar_to_pacf`` and ``pacf_to_ma`` / ``ma_to_pacf``: stationary AR and
  invertible MA coefficients from partial autocorrelations in (-1, 1) (Monahan 1984), for
  :func:`~pymc_dlm.SARIMAX` in ``fit_mle`` (after ``tanh``) and in PyMC priors.

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

__all__ = [
    "ar_to_pacf", "exp", "inverse_softplus", "log", "ma_to_pacf", "natural_scale", "pacf_to_ar",
    "pacf_to_ma", "softplus",
]


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


def _as_list(x: Any, name: str) -> tuple[list, bool]:
    """A vector as a list of scalars, and whether it is symbolic."""
    if _symbolic(x):
        if x.ndim != 1 or x.type.shape[0] is None:
            raise ValueError(f"{name}: a PyTensor input must be a vector of static length (or "
                             f"pass a list of scalars, e.g. [psi[0], psi[1]]); got type {x.type}")
        return [x[i] for i in range(x.type.shape[0])], True
    if isinstance(x, (list, tuple)) and any(_symbolic(v) for v in x):
        return list(x), True
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} needs a vector; got shape {arr.shape}")
    return list(arr), False


def pacf_to_ar(r: Any) -> Any:
    r"""Stationary AR coefficients from partial autocorrelations (Monahan 1984; Jones 1980).

    The Durbin-Levinson recursion: :math:`\phi^{(1)}_1 = r_1` and, for :math:`k = 2..p`,

    .. math::

        \phi^{(k)}_k = r_k,\qquad \phi^{(k)}_j = \phi^{(k-1)}_j - r_k\,\phi^{(k-1)}_{k-j},
        \quad j = 1..k-1.

    Every :math:`r \in (-1, 1)^p` gives a stationary :math:`\phi(L) = 1 - \phi_1 L - \dots -
    \phi_p L^p` and every stationary polynomial has one such :math:`r` (the map is a
    bijection), so a prior or an optimiser on :math:`r` (e.g. ``tanh`` of an unconstrained
    vector, a ``Uniform(-1, 1)`` or a scaled ``Beta`` prior) covers exactly the stationary
    region.

    Parameters
    ----------
    r : (p,) array_like or PyTensor vector of static length p
        Partial autocorrelations, each in (-1, 1).

    Returns
    -------
    (p,) ndarray or PyTensor vector
        :math:`\phi_1..\phi_p`.

    References
    ----------
    Monahan, J. F. (1984). A note on enforcing stationarity in autoregressive-moving average
    models. *Biometrika* 71, 403-404.  Jones, R. H. (1980). Maximum likelihood fitting of
    ARMA models to time series with missing observations. *Technometrics* 22, 389-395.

    Examples
    --------
    >>> pacf_to_ar([0.5, -0.3]).round(6).tolist()
    [0.65, -0.3]
    >>> bool(np.allclose(ar_to_pacf(pacf_to_ar([0.9, 0.5, -0.8])), [0.9, 0.5, -0.8]))
    True
    """
    vals, sym = _as_list(r, "pacf_to_ar")
    if not sym and not all(-1.0 < v < 1.0 for v in vals):
        raise ValueError(f"partial autocorrelations must lie in (-1, 1); got {vals}")
    phi: list = []
    for k, rk in enumerate(vals):
        phi = [phi[j] - rk * phi[k - 1 - j] for j in range(k)] + [rk]
    if sym:
        return pt.stack(phi) if phi else pt.zeros((0,), dtype="float64")
    return np.array(phi, dtype=np.float64)


def ar_to_pacf(phi: Any) -> np.ndarray:
    r"""Inverse of :func:`pacf_to_ar` (NumPy): the backward Durbin-Levinson recursion

    .. math::

        r_k = \phi^{(k)}_k,\qquad
        \phi^{(k-1)}_j = \frac{\phi^{(k)}_j + r_k\,\phi^{(k)}_{k-j}}{1 - r_k^2}.

    Parameters
    ----------
    phi : (p,) array_like
        Coefficients of a stationary AR polynomial.

    Returns
    -------
    (p,) ndarray
        Partial autocorrelations in (-1, 1).

    Raises
    ------
    ValueError
        When ``phi`` is not stationary (some :math:`|r_k| \ge 1`).

    Examples
    --------
    >>> ar_to_pacf([0.65, -0.3]).round(6).tolist()
    [0.5, -0.3]
    """
    cur = [float(v) for v in np.atleast_1d(np.asarray(phi, dtype=np.float64))]
    out = [0.0] * len(cur)
    for k in range(len(cur), 0, -1):
        rk = cur[k - 1]
        if not -1.0 < rk < 1.0:
            raise ValueError(f"AR coefficients {list(np.atleast_1d(phi))} are not stationary")
        out[k - 1] = rk
        cur = [(cur[j] + rk * cur[k - 2 - j]) / (1.0 - rk * rk) for j in range(k - 1)]
    return np.array(out, dtype=np.float64)


def pacf_to_ma(r: Any) -> Any:
    r"""Invertible MA coefficients from values in (-1, 1).

    :math:`\theta = -\,\mathrm{pacf\_to\_ar}(-r)`:
    :math:`\theta(L) = 1 + \theta_1 L + \dots + \theta_q L^q` is invertible exactly when
    :math:`-\theta` are the coefficients of a stationary AR polynomial, so this is
    :func:`pacf_to_ar` with the MA sign convention (for ``q = 1``, :math:`\theta_1 = r_1`).

    Parameters
    ----------
    r : (q,) array_like or PyTensor vector of static length q
        Values in (-1, 1).

    Returns
    -------
    (q,) ndarray or PyTensor vector
        :math:`\theta_1..\theta_q`.

    Examples
    --------
    >>> pacf_to_ma([-0.7]).tolist()
    [-0.7]
    >>> bool(np.allclose(ma_to_pacf(pacf_to_ma([0.3, -0.6])), [0.3, -0.6]))
    True
    """
    vals, sym = _as_list(r, "pacf_to_ma")
    return -pacf_to_ar([-v for v in vals] if sym else -np.asarray(vals, dtype=np.float64))


def ma_to_pacf(theta: Any) -> np.ndarray:
    """Inverse of :func:`pacf_to_ma` (NumPy); ``ValueError`` when ``theta`` is not invertible.

    Examples
    --------
    >>> ma_to_pacf([-0.7]).tolist()
    [-0.7]
    """
    return -ar_to_pacf(-np.asarray(theta, dtype=np.float64))


#: prefix of an unconstrained parameter's name -> (map to the natural scale, its derivative)
_MAPS = {
    "log": (np.exp, np.exp),
    "atanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "logit": (lambda x: 1.0 / (1.0 + np.exp(-x)),
              lambda x: np.exp(-x) / (1.0 + np.exp(-x)) ** 2),
    "log(x-2)": (lambda x: 2.0 + np.exp(x), np.exp),
}


def natural_scale(names: Any, psi: Any, cov: Any = None) -> tuple:
    r"""Parameters on their own scale, with delta-method covariances.

    A name ``"log X"`` gives ``X = exp(psi)``, ``"atanh X"`` gives ``X = tanh(psi)``,
    ``"logit X"`` gives ``X = 1/(1 + exp(-psi))``, ``"log(x-2) X"`` gives
    ``X = 2 + exp(psi)``; any other name is kept as it is (identity).  With the Jacobian
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
