"""The reference models of the test suite, written once for both engines.

Each builder takes ``v(name, value)``, which returns the entry to use for a parameter: the
number itself for the NumPy engine, or a PyTensor scalar (recording the value) for the
symbolic engine.  Builders return ``(model, y)``.
"""

from __future__ import annotations

import numpy as np

import pymc_dlm as dlm

NILE_H, NILE_Q = 15099.0, 1469.1  # Durbin and Koopman (2012), section 2.10


def numeric(name, value):
    """The ``v`` of the NumPy engine: numbers stay numbers."""
    return value


def nile(v=numeric):
    y = dlm.datasets.load_nile().to_numpy()
    return dlm.LocalLevel(v("sigma_level", NILE_Q**0.5), v("sigma_obs", NILE_H**0.5)), y


def trend_seasonal(v=numeric):
    """Local linear trend + monthly dummy seasonal (13 states) on log airline passengers."""
    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
    mod = dlm.LocalLinearTrend(v("sigma_level", 0.02), v("sigma_slope", 0.002),
                               v("sigma_obs", 0.01)) + dlm.Seasonal(12, v("sigma_seasonal", 0.01))
    return mod, y


def trig_seasonal(v=numeric):
    y = np.log(dlm.datasets.load_airline_passengers().to_numpy())
    mod = dlm.LocalLevel(v("sigma_level", 0.03), v("sigma_obs", 0.02)) + dlm.Seasonal(
        12, v("sigma_seasonal", 0.005), form="trigonometric")
    return mod, y


def bivariate(v=numeric, n=60, seed=3):
    """p = 2, m = 3 model with correlated H, a level shared by both series, AR(1) in series 2,
    missing values (one inside the diffuse period), two diffuse states and one known."""
    rng = np.random.default_rng(seed)
    Z = np.array([[1.0, 0.0, 0.0], [0.8, 1.0, 1.0]])
    T = np.array([[1.0, 0.0, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 1.0]])
    Hv = np.array([[1.0, 0.3], [0.3, 0.5]])
    Qv = np.diag([0.2, 0.5, 0.01])
    sim = dlm.StateSpaceModel(Z=Z, T=T, Q=Qv, H=Hv, d=[0.5, -1.0], c=[0.0, 0.1, 0.0],
                              P1=np.diag([1.0, 0.78125, 1.0]))
    y, _ = dlm.simulate(sim, n, rng=rng)
    y[5, 0] = np.nan
    y[9, :] = np.nan
    y[1, 1] = np.nan  # missing inside the diffuse period
    y[20:23, 1] = np.nan
    h12 = v("h12", 0.3)
    H = [[v("h11", 1.0), h12], [h12, v("h22", 0.5)]]
    Q = [[v("q1", 0.2), 0.0, 0.0], [0.0, v("q2", 0.5), 0.0], [0.0, 0.0, v("q3", 0.01)]]
    mod = dlm.StateSpaceModel(
        Z=Z, T=T, Q=Q, H=H, d=[0.5, -1.0], c=[0.0, 0.1, 0.0],
        P1=np.diag([0.0, 0.5 / (1 - 0.36), 0.0]), diffuse=[True, False, True],
    )
    return mod, y


def tv_regression(v=numeric):
    """Local level + regression with one static and one random-walk coefficient (time-varying Z)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 2))
    y = X @ np.array([1.0, -2.0]) + np.cumsum(rng.standard_normal(80)) * 0.3 \
        + rng.standard_normal(80) * 0.5
    y[[3, 40]] = np.nan
    mod = dlm.LocalLevel(v("sigma_level", 0.3), v("sigma_obs", 0.5)) + dlm.Regression(
        X, sigma_coef=[0.0, 0.05])
    return mod, y


def tv_intercepts(v=numeric):
    """Time-varying T, Z, c, d with a known initialisation."""
    rng = np.random.default_rng(5)
    n = 10
    T = 0.9 * np.eye(2)[None] + 0.05 * rng.standard_normal((n, 2, 2))
    Z = rng.standard_normal((n, 1, 2))
    mod = dlm.StateSpaceModel(
        Z=Z, T=T, Q=[[v("q1", 0.3), 0.0], [0.0, v("q2", 0.1)]], H=[[v("h", 0.4)]],
        c=rng.standard_normal((n, 2)), d=rng.standard_normal((n, 1)), a1=[0.5, -0.5], P1=np.eye(2),
    )
    return mod, rng.standard_normal(n)


def ar2(v=numeric):
    """AR(2) plus noise, stationary initialisation (Lyapunov)."""
    mod = dlm.Autoregressive([v("phi1", 0.5), v("phi2", -0.3)], v("sigma", 2.0**0.5),
                             sigma_obs=v("sigma_obs", 0.5))
    return mod, np.sin(np.arange(30.0))


REFERENCE_MODELS = {
    "nile": nile,
    "trend_seasonal": trend_seasonal,
    "trig_seasonal": trig_seasonal,
    "bivariate": bivariate,
    "tv_regression": tv_regression,
    "tv_intercepts": tv_intercepts,
    "ar2": ar2,
}
