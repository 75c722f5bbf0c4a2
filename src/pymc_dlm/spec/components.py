r"""Structural time-series components, each a function returning a :class:`StateSpaceModel`.

Arguments are standard deviations (as in dynaris and as PyMC priors are written), and may be
numbers or PyTensor variables.  Components are univariate (``p = 1``) and compose with ``+``.

The observation noise rule: ``H`` of a sum is the sum of the components' ``H``.  Give
``sigma_obs`` to one component only (every component's ``sigma_obs`` defaults to ``None``,
meaning no observation noise), or add :func:`Irregular` once.

Initialisation: non-stationary states (levels, slopes, seasonals, regression coefficients,
undamped cycles) are exactly diffuse; a damped cycle and an AR process start from their
stationary distribution, as in KFAS and Durbin and Koopman (2012), section 5.6.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from .matrix import Entries, as_entry, is_symbolic_leaf
from .model import Component, StateSpaceModel
from .validate import check_option

__all__ = [
    "Autoregressive",
    "Cycle",
    "DampedTrend",
    "Irregular",
    "LocalLevel",
    "LocalLinearTrend",
    "PolynomialTrend",
    "Regression",
    "Seasonal",
]


def _sd(x: Any, name: str) -> Any:
    """Validate a standard deviation (numbers must be finite and >= 0) and return it."""
    if x is None:
        return None
    if is_symbolic_leaf(x):
        return x
    if isinstance(x, (numbers.Real, np.floating, np.integer)) or np.ndim(x) == 0:
        v = float(x)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite standard deviation >= 0; got {v}")
        return v
    raise TypeError(f"{name} must be a scalar standard deviation; got {type(x).__name__}")


def _var(sd: Any) -> Any:
    return 0.0 if sd is None else sd * sd


def _matrix(rows: list) -> Any:
    """A matrix from nested lists whose entries may be symbolic."""
    return as_entry(rows, "matrix")


def _diag(values: list) -> Any:
    k = len(values)
    return _matrix([[values[i] if i == j else 0.0 for j in range(k)] for i in range(k)])


def _H(sigma_obs: Any) -> Any:
    return _matrix([[_var(_sd(sigma_obs, "sigma_obs"))]])


def _model(
    name: str, description: str, state_names: list[str], tied: tuple = (), **kw: Any
) -> StateSpaceModel:
    m = len(state_names)
    comp = Component(name, description, tuple(range(m)), tied)
    return StateSpaceModel(state_names=state_names, components=[comp], **kw)


def LocalLevel(
    sigma_level: Any, sigma_obs: Any = None, *, name: str = "level"
) -> StateSpaceModel:
    r"""Local level (random walk plus noise) model.

    .. math::

        y_t = \mu_t + \varepsilon_t,\quad \mu_{t+1} = \mu_t + \eta_t,\quad
        \eta_t \sim N(0, \sigma_{level}^2),\ \varepsilon_t \sim N(0, \sigma_{obs}^2)

    Durbin and Koopman (2012), section 2.1.  The level is exactly diffuse.

    Parameters
    ----------
    sigma_level : float or PyTensor scalar
        Standard deviation of the level disturbance.
    sigma_obs : float or PyTensor scalar, optional
        Standard deviation of the observation noise (none if omitted).
    name : str
        Component name, also the state name.

    Returns
    -------
    StateSpaceModel
        ``p = m = r = 1``.

    Examples
    --------
    >>> from pymc_dlm import LocalLevel
    >>> mod = LocalLevel(sigma_level=2.0, sigma_obs=3.0)
    >>> float(mod.Q[0, 0]), float(mod.H[0, 0])
    (4.0, 9.0)
    """
    s = _sd(sigma_level, "sigma_level")
    return _model(
        name, "local level (random walk)", [name],
        Z=[[1.0]], T=[[1.0]], Q=_matrix([[_var(s)]]), H=_H(sigma_obs), diffuse=[True],
    )


def LocalLinearTrend(
    sigma_level: Any, sigma_slope: Any, sigma_obs: Any = None, *, name: str = "trend"
) -> StateSpaceModel:
    r"""Local linear trend model.

    .. math::

        y_t = \mu_t + \varepsilon_t,\quad
        \mu_{t+1} = \mu_t + \nu_t + \xi_t,\quad \nu_{t+1} = \nu_t + \zeta_t

    Durbin and Koopman (2012), section 3.2.1.  States ``level`` and ``slope``, both diffuse.

    Parameters
    ----------
    sigma_level, sigma_slope : float or PyTensor scalar
        Standard deviations of the level and slope disturbances (0 gives a deterministic part).
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; the states are named ``"level"`` and ``"slope"``.

    Returns
    -------
    StateSpaceModel
        ``p = 1, m = r = 2``.

    Examples
    --------
    >>> from pymc_dlm import LocalLinearTrend
    >>> LocalLinearTrend(1.0, 0.1, 2.0).T
    array([[1., 1.],
           [0., 1.]])
    """
    sl, ss = _sd(sigma_level, "sigma_level"), _sd(sigma_slope, "sigma_slope")
    return _model(
        name, "local linear trend (level and slope)", ["level", "slope"],
        Z=[[1.0, 0.0]], T=[[1.0, 1.0], [0.0, 1.0]], Q=_diag([_var(sl), _var(ss)]),
        H=_H(sigma_obs), diffuse=[True, True],
    )


def Seasonal(
    period: int,
    sigma_seasonal: Any,
    form: Literal["dummy", "trigonometric"] = "dummy",
    harmonics: int | None = None,
    *,
    sigma_obs: Any = None,
    name: str = "seasonal",
) -> StateSpaceModel:
    r"""Stochastic seasonal component.

    ``form="dummy"`` (Durbin and Koopman 2012, section 3.2.1): ``m = period - 1`` states with
    :math:`\gamma_{t+1} = -\sum_{j=1}^{s-1}\gamma_{t+1-j} + \omega_t`.

    ``form="trigonometric"`` (section 3.2.1, eq. 3.7): for each harmonic
    :math:`j = 1..h` with :math:`\lambda_j = 2\pi j / s` a pair
    :math:`(\gamma_j, \gamma^*_j)` rotated by :math:`\lambda_j`, each with its own disturbance of
    variance :math:`\sigma^2`; when ``s`` is even the harmonic ``s/2`` has one state only.
    ``harmonics`` defaults to ``floor(s / 2)`` (the full seasonal, ``m = s - 1``).

    Parameters
    ----------
    period : int
        Number of seasons ``s`` (>= 2).
    sigma_seasonal : float or PyTensor scalar
        Standard deviation of the seasonal disturbance(s).
    form : {"dummy", "trigonometric"}
        Parameterisation.
    harmonics : int, optional
        Number of harmonics (trigonometric form only).
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; states are named ``f"{name}_{i}"``.

    Returns
    -------
    StateSpaceModel

    Examples
    --------
    >>> from pymc_dlm import Seasonal
    >>> Seasonal(4, 1.0).T
    array([[-1., -1., -1.],
           [ 1.,  0.,  0.],
           [ 0.,  1.,  0.]])
    >>> Seasonal(12, 1.0, form="trigonometric", harmonics=2).m
    4
    """
    check_option("form", form, ("dummy", "trigonometric"))
    if not isinstance(period, (int, np.integer)) or period < 2:
        raise ValueError(f"period must be an integer >= 2; got {period!r}")
    s = _sd(sigma_seasonal, "sigma_seasonal")
    if form == "dummy":
        if harmonics is not None:
            raise ValueError("harmonics applies to form='trigonometric' only")
        m = period - 1
        T = np.zeros((m, m))
        T[0, :] = -1.0
        T[1:, :-1] += np.eye(m - 1)
        R = np.zeros((m, 1))
        R[0, 0] = 1.0
        Z = np.zeros((1, m))
        Z[0, 0] = 1.0
        return _model(
            name, f"dummy seasonal, period {period}", [f"{name}_{i}" for i in range(m)],
            Z=Z, T=T, R=R, Q=_matrix([[_var(s)]]), H=_H(sigma_obs), diffuse=[True] * m,
        )
    hmax = period // 2
    h = hmax if harmonics is None else harmonics
    if not isinstance(h, (int, np.integer)) or not 1 <= h <= hmax:
        raise ValueError(f"harmonics must be an integer in 1..{hmax} for period {period}; got {h!r}")
    blocks, zs = [], []
    for j in range(1, h + 1):
        lam = 2.0 * np.pi * j / period
        if 2 * j == period:
            blocks.append(np.array([[np.cos(lam)]]))
            zs.append([1.0])
        else:
            cs, sn = np.cos(lam), np.sin(lam)
            blocks.append(np.array([[cs, sn], [-sn, cs]]))
            zs.append([1.0, 0.0])
    m = sum(b.shape[0] for b in blocks)
    T = np.zeros((m, m))
    i = 0
    for b in blocks:
        k = b.shape[0]
        T[i : i + k, i : i + k] = b
        i += k
    Z = np.concatenate(zs)[None, :]
    return _model(
        name, f"trigonometric seasonal, period {period}, {h} harmonics",
        [f"{name}_{i}" for i in range(m)], tied=(tuple(range(m)),),
        Z=Z, T=T, Q=_diag([_var(s)] * m), H=_H(sigma_obs), diffuse=[True] * m,
    )


def Cycle(
    period: Any,
    damping: Any,
    sigma_cycle: Any,
    *,
    sigma_obs: Any = None,
    name: str = "cycle",
) -> StateSpaceModel:
    r"""Stochastic trigonometric cycle.

    .. math::

        \begin{pmatrix}\psi_{t+1}\\ \psi^*_{t+1}\end{pmatrix} = \rho
        \begin{pmatrix}\cos\lambda & \sin\lambda\\ -\sin\lambda & \cos\lambda\end{pmatrix}
        \begin{pmatrix}\psi_t\\ \psi^*_t\end{pmatrix} + \begin{pmatrix}\kappa_t\\ \kappa^*_t
        \end{pmatrix},\quad \lambda = 2\pi/\text{period}

    with :math:`\kappa_t, \kappa^*_t \sim N(0, \sigma^2)` (Durbin and Koopman 2012, section
    3.2.4; Harvey 1989).  With ``damping < 1`` the cycle starts from its stationary distribution
    :math:`N(0, \sigma^2/(1-\rho^2) I)`; with ``damping == 1`` (a number) it is diffuse.
    ``period`` and ``damping`` may be PyTensor scalars (then the cycle is stationary).

    Parameters
    ----------
    period : float or PyTensor scalar
        Period in time steps (> 2).
    damping : float or PyTensor scalar
        Damping factor :math:`\rho \in (0, 1]`.
    sigma_cycle : float or PyTensor scalar
        Disturbance standard deviation.
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; states ``f"{name}"`` and ``f"{name}_star"``.

    Returns
    -------
    StateSpaceModel

    Examples
    --------
    >>> from pymc_dlm import Cycle
    >>> mod = Cycle(period=8.0, damping=0.9, sigma_cycle=1.0)
    >>> mod.stationary
    (True, True)
    """
    s = _sd(sigma_cycle, "sigma_cycle")
    if not is_symbolic_leaf(period) and not float(period) > 2.0:
        raise ValueError(f"period must be > 2 time steps; got {period}")
    if not is_symbolic_leaf(damping) and not 0.0 < float(damping) <= 1.0:
        raise ValueError(f"damping must be in (0, 1]; got {damping}")
    diffuse = not is_symbolic_leaf(damping) and float(damping) == 1.0
    if is_symbolic_leaf(period) or is_symbolic_leaf(damping):
        lam = 2.0 * math.pi / period
        cs, sn = _cos_sin(lam)
        T = Entries(((damping * cs, damping * sn), (-damping * sn, damping * cs)))
    else:
        lam = 2.0 * math.pi / float(period)
        rho = float(damping)
        T = rho * np.array([[math.cos(lam), math.sin(lam)], [-math.sin(lam), math.cos(lam)]])
    v = _var(s)
    return _model(
        name, f"stochastic cycle (period {period}, damping {damping})", [name, f"{name}_star"],
        tied=((0, 1),), Z=[[1.0, 0.0]], T=T, Q=_diag([v, v]), H=_H(sigma_obs),
        diffuse=[diffuse] * 2, stationary=[not diffuse] * 2,
    )


def _cos_sin(lam: Any) -> tuple[Any, Any]:
    """cos and sin of a symbolic scalar through its own methods (no PyTensor import here)."""
    import importlib

    pt = importlib.import_module("pytensor.tensor")
    return pt.cos(lam), pt.sin(lam)


def Autoregressive(
    coefs: Any, sigma: Any, *, sigma_obs: Any = None, name: str = "ar"
) -> StateSpaceModel:
    r"""AR(p) process in companion form.

    .. math::

        x_{t+1} = \phi_1 x_t + \dots + \phi_k x_{t-k+1} + \eta_t,\quad \eta_t \sim N(0,\sigma^2)

    State :math:`(x_t, \phi_2 x_{t-1} + \dots, \dots)` with ``T`` having the coefficients in
    its first column and ones on the super-diagonal (Durbin and Koopman 2012, section 3.4).
    The process starts from its stationary distribution (the solution of
    :math:`P = TPT' + RQR'`), so the coefficients must describe a stationary process.

    Parameters
    ----------
    coefs : (k,) sequence of float or PyTensor scalars, or a PyTensor vector of static length k
        AR coefficients :math:`\phi_1..\phi_k`.
    sigma : float or PyTensor scalar
        Innovation standard deviation.
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; states ``f"{name}_{i}"``.

    Returns
    -------
    StateSpaceModel

    Examples
    --------
    >>> from pymc_dlm import Autoregressive
    >>> Autoregressive([0.5, -0.2], 1.0).T
    array([[ 0.5,  1. ],
           [-0.2,  0. ]])
    """
    s = _sd(sigma, "sigma")
    if is_symbolic_leaf(coefs):
        k = coefs.type.shape[0]
        if k is None:
            raise ValueError("a symbolic coefs vector needs a static length (e.g. shape=(2,))")
        phis = [coefs[i] for i in range(k)]
    else:
        phis = list(np.atleast_1d(coefs)) if not isinstance(coefs, (list, tuple)) else list(coefs)
        k = len(phis)
    if k < 1:
        raise ValueError("coefs must hold at least one AR coefficient")
    if not any(is_symbolic_leaf(ph) for ph in phis):
        phis = [float(ph) for ph in phis]
        comp = np.zeros((k, k))
        comp[0, :] = phis
        comp[1:, :-1] = np.eye(k - 1)
        if np.max(np.abs(np.linalg.eigvals(comp))) >= 1.0:
            raise ValueError(f"coefs {phis} do not describe a stationary AR process")
    T = _matrix([[phis[i]] + [1.0 if j == i + 1 else 0.0 for j in range(1, k)] for i in range(k)])
    R = np.zeros((k, 1))
    R[0, 0] = 1.0
    Z = np.zeros((1, k))
    Z[0, 0] = 1.0
    return _model(
        name, f"AR({k})", [f"{name}_{i}" for i in range(k)],
        Z=Z, T=T, R=R, Q=_matrix([[_var(s)]]), H=_H(sigma_obs),
        diffuse=[False] * k, stationary=[True] * k,
    )


def Regression(
    X: Any, sigma_coef: Any = 0.0, *, names: list[str] | None = None, name: str = "regression"
) -> StateSpaceModel:
    r"""Regression on exogenous variables, static or with random-walk coefficients.

    .. math::

        y_t = x_t'\beta_t + \dots,\quad \beta_{t+1} = \beta_t + \eta_t,\quad
        \eta_t \sim N(0, \sigma^2 I)

    ``Z_t = x_t'`` makes the model time-varying over ``n = len(X)``; with ``sigma_coef = 0``
    the coefficients are fixed (diffuse, i.e. estimated by generalised least squares inside the
    filter; Durbin and Koopman 2012, section 6.2.2).

    Parameters
    ----------
    X : (n, k) array_like, pandas DataFrame, or a 2-D PyTensor variable (e.g. ``pm.Data``)
        Regressors; must be finite.  Forecasts need their future values
        (``forecast(..., exog=X_future)``; with ``pm.Data``, ``pm.set_data`` over the data and
        the horizon).
    sigma_coef : float, PyTensor scalar or (k,) sequence
        Standard deviation(s) of the coefficient random walks; 0 for static coefficients.
    names : list of str, optional
        Regressor names (DataFrame columns by default, else ``x0, x1, ...``).
    name : str
        Component name.

    Returns
    -------
    StateSpaceModel
        Time-varying ``Z`` of shape ``(n, 1, k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_dlm import Regression
    >>> mod = Regression(np.ones((10, 2)), names=["petrol", "law"])
    >>> mod.Z.shape, mod.components[0].exog
    ((10, 1, 2), ('petrol', 'law'))
    """
    if names is None and hasattr(X, "columns"):
        names = [str(c) for c in X.columns]
    if is_symbolic_leaf(X):  # e.g. pm.Data: Z_t = x_t' symbolically, k from the static shape
        if X.ndim != 2 or X.type.shape[1] is None:
            raise ValueError("a symbolic X must be 2-D (n, k) with a known number of columns k "
                             f"(pm.Data(..., shape=(None, k))); got ndim {X.ndim}, "
                             f"shape {X.type.shape}")
        n, k = X.type.shape
        Z = X[:, None, :]
    else:
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim == 1:
            Xa = Xa[:, None]
        if Xa.ndim != 2:
            raise ValueError(f"X must be (n, k); got shape {Xa.shape}")
        if not np.all(np.isfinite(Xa)):
            bad = np.argwhere(~np.isfinite(Xa))[0]
            raise ValueError(f"X must be finite (missing regressors are not supported); got "
                             f"{Xa[tuple(bad)]} at row {bad[0]}, column {bad[1]}")
        n, k = Xa.shape
        Z = Xa[:, None, :]
    names = [f"x{i}" for i in range(k)] if names is None else list(names)
    if len(names) != k:
        raise ValueError(f"names must have k = {k} entries; got {len(names)}")
    one = not isinstance(sigma_coef, (list, tuple, np.ndarray))
    sds = [sigma_coef] * k if one else list(sigma_coef)
    if len(sds) != k:
        raise ValueError(f"sigma_coef must be a scalar or have k = {k} entries; got {len(sds)}")
    variances = [_var(_sd(sd, "sigma_coef")) for sd in sds]
    comp = Component(name, f"regression on {', '.join(names)}", tuple(range(k)),
                     (tuple(range(k)),) if one else (), exog=tuple(names))
    return StateSpaceModel(
        state_names=[f"beta_{nm}" for nm in names], components=[comp],
        Z=Z, T=np.eye(k), Q=_diag(variances), diffuse=[True] * k,
    )


def Irregular(sigma_obs: Any, *, name: str = "irregular") -> StateSpaceModel:
    r"""Observation noise only: :math:`y_t = \varepsilon_t`, no states (``m = 0``).

    Add it once to a sum of components that carry no ``sigma_obs``.

    Parameters
    ----------
    sigma_obs : float or PyTensor scalar
        Observation noise standard deviation.
    name : str
        Component name.

    Returns
    -------
    StateSpaceModel
        ``p = 1, m = r = 0``.

    Examples
    --------
    >>> from pymc_dlm import Irregular, LocalLevel
    >>> (LocalLevel(1.0) + Irregular(2.0)).H
    array([[4.]])
    """
    return StateSpaceModel(
        Z=np.zeros((1, 0)), T=np.zeros((0, 0)), Q=np.zeros((0, 0)), H=_H(sigma_obs),
        state_names=[], components=[Component(name, "observation noise", ())],
    )


def DampedTrend(
    sigma_level: Any,
    sigma_slope: Any,
    damping: Any,
    sigma_obs: Any = None,
    *,
    name: str = "trend",
) -> StateSpaceModel:
    r"""Local linear trend with a damped slope (Gardner and McKenzie 1985).

    .. math::

        y_t = \mu_t + \varepsilon_t,\quad
        \mu_{t+1} = \mu_t + \nu_t + \xi_t,\quad \nu_{t+1} = \phi\,\nu_t + \zeta_t,

    so the h-step forecast is :math:`\hat\mu_n + (\phi + \phi^2 + \dots + \phi^h)\hat\nu_n`,
    levelling off at :math:`\hat\mu_n + \phi\hat\nu_n/(1-\phi)` (Gardner and McKenzie 1985;
    the multiple-source form of Hyndman et al. 2008, section 2.5.2).  :math:`\phi = 1` is
    :func:`LocalLinearTrend`.  Level and slope are exactly diffuse (the initial slope is
    estimated, as in exponential smoothing).

    Parameters
    ----------
    sigma_level, sigma_slope : float or PyTensor scalar
        Standard deviations of the level and slope disturbances.
    damping : float or PyTensor scalar
        :math:`\phi \in (0, 1]`.
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; the states are ``"level"`` and ``"slope"``.

    Returns
    -------
    StateSpaceModel
        ``p = 1, m = r = 2``.

    References
    ----------
    Gardner, E. S. and McKenzie, E. (1985). Forecasting trends in time series. *Management
    Science* 31, 1237-1246.

    Examples
    --------
    >>> from pymc_dlm import DampedTrend
    >>> DampedTrend(1.0, 0.1, 0.9, 2.0).T
    array([[1. , 1. ],
           [0. , 0.9]])
    """
    sl, ss = _sd(sigma_level, "sigma_level"), _sd(sigma_slope, "sigma_slope")
    if not is_symbolic_leaf(damping) and not 0.0 < float(damping) <= 1.0:
        raise ValueError(f"damping must be in (0, 1]; got {damping}")
    phi = damping if is_symbolic_leaf(damping) else float(damping)
    return _model(
        name, f"damped trend (damping {damping})", ["level", "slope"],
        Z=[[1.0, 0.0]], T=_matrix([[1.0, 1.0], [0.0, phi]]), Q=_diag([_var(sl), _var(ss)]),
        H=_H(sigma_obs), diffuse=[True, True],
    )


def PolynomialTrend(
    order: int, sigmas: Any = None, sigma_obs: Any = None, *, name: str = "poly"
) -> StateSpaceModel:
    r"""Polynomial trend of order k: k integrated random-walk states.

    .. math::

        y_t = \mu^{(0)}_t + \varepsilon_t,\quad
        \mu^{(j)}_{t+1} = \mu^{(j)}_t + \mu^{(j+1)}_t + \eta^{(j)}_t\ (j < k - 1),\quad
        \mu^{(k-1)}_{t+1} = \mu^{(k-1)}_t + \eta^{(k-1)}_t,

    ``T`` upper bidiagonal with ones, as R dlm's ``dlmModPoly(order)`` and KFAS's
    ``SSMtrend(degree)`` (West and Harrison 1997, chapter 7; Petris et al. 2009, section
    3.2.1).  Without disturbances the forecast function is a polynomial of degree k - 1 in
    the horizon.  Order 1 is :func:`LocalLevel`, order 2 :func:`LocalLinearTrend`.  Every
    state is exactly diffuse.

    Parameters
    ----------
    order : int
        k >= 1.
    sigmas : (k,) sequence of float or PyTensor scalars, optional
        Disturbance standard deviations of :math:`\mu^{(0)}..\mu^{(k-1)}` (zeros by default:
        a deterministic polynomial).
    sigma_obs : float or PyTensor scalar, optional
        Observation noise standard deviation.
    name : str
        Component name; states ``f"{name}_{j}"``.

    Returns
    -------
    StateSpaceModel
        ``p = 1, m = r = k``.

    Examples
    --------
    >>> from pymc_dlm import PolynomialTrend
    >>> PolynomialTrend(3, [0.0, 0.0, 0.1]).T
    array([[1., 1., 0.],
           [0., 1., 1.],
           [0., 0., 1.]])
    """
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1; got {order!r}")
    sds = [0.0] * order if sigmas is None else list(sigmas)
    if len(sds) != order:
        raise ValueError(f"sigmas must have order = {order} entries; got {len(sds)}")
    T = np.eye(order) + np.eye(order, k=1)
    Z = np.zeros((1, order))
    Z[0, 0] = 1.0
    return _model(
        name, f"polynomial trend of order {order}", [f"{name}_{j}" for j in range(order)],
        Z=Z, T=T, Q=_diag([_var(_sd(s, "sigmas")) for s in sds]), H=_H(sigma_obs),
        diffuse=[True] * order,
    )
