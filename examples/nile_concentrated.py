"""Nile local level by the concentrated likelihood of the stepwise Kalman procedure.

Local level model (Durbin and Koopman 2012, ch. 2) in the stepwise form: z = t = 1,
r = 1, q = psi = sigma2_level / sigma2_obs, sigma^2 = sigma2_obs unknown.  sigma^2 is
concentrated out (sigma2_hat = ss / n) and -2Lc = n log(ss / n) + alndet is minimised over
log(psi) with scipy.  The first observation initialises the level (b = y_1, covb = r = 1,
nothing accumulated), which is the exact diffuse initialisation for this model.

Run: ``python examples/nile_concentrated.py``
"""

import math

import numpy as np
from scipy.optimize import minimize_scalar

import pymc_dlm as dlm


def final_state(y: np.ndarray, psi: float) -> dlm.KalmanState:
    """All stages for q/r = psi: start at b_{2|1} (predicted from b = y_1, covb = 1), then y_2..y_n."""
    start = dlm.kalman(dlm.KalmanState(b=y[0], covb=1.0), t=1.0, q=psi).state
    return dlm.kalman_sequence(start, y[1:], z=1.0, r=1.0, t=1.0, q=psi).state


def fit(y: np.ndarray) -> dict[str, float]:
    """Minimise -2Lc over log(q/r); return psi, sigma2_hat and the two variances."""
    def f(log_psi: float) -> float:
        return dlm.concentrated_neg2_loglik(final_state(y, math.exp(log_psi)))

    opt = minimize_scalar(f, bounds=(-10.0, 5.0), method="bounded", options={"xatol": 1e-10})
    psi = math.exp(opt.x)
    state = final_state(y, psi)
    s2 = state.sigma2_hat
    return {
        "psi": psi,
        "sigma2_hat": s2,
        "sigma2_obs": s2,
        "sigma2_level": s2 * psi,
        "neg2lc": opt.fun,
        "n": state.n,
    }


if __name__ == "__main__":
    y = dlm.datasets.load_nile().to_numpy()
    est = fit(y)
    print(f"q/r = {est['psi']:.5f}, -2Lc = {est['neg2lc']:.4f} (n = {est['n']})")
    print(f"sigma2_obs   = sigma2_hat          = {est['sigma2_obs']:9.1f}   (D&K: 15099)")
    print(f"sigma2_level = sigma2_hat * q / r  = {est['sigma2_level']:9.1f}   (D&K: 1469.1)")
