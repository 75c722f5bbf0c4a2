r"""The EM algorithm for the variances of a state-space model: ``fit_em``.

E-step: the state and disturbance smoother of the NumPy engine (Durbin and Koopman 2012,
eqs. 4.44 and 4.69, exact diffuse steps of section 5.3).  M-step: closed-form updates of the
observation and state disturbance covariances (Shumway and Stoffer 1982; Koopman 1993; D&K
section 7.3.4), restricted to the model's structure.

With complete data :math:`(\alpha_1, \dots, \alpha_n, y)` the expected complete-data
log-likelihood is maximised by

.. math::

    \hat Q = \frac{1}{n-1}\sum_{t=1}^{n-1} E(\eta_t\eta_t' \mid y), \qquad
    \hat H = \frac{1}{n}\sum_{t=1}^{n} E(\varepsilon_t\varepsilon_t' \mid y),

where :math:`E(\eta_t\eta_t'|y) = \hat\eta_t\hat\eta_t' + Var(\eta_t|y)` comes from the
disturbance smoother (eq. 4.69).  Written with states, :math:`\eta_t = R_t^+(\alpha_{t+1} -
T_t\alpha_t - c_t)` and

.. math::

    E(\eta_t\eta_t'|y) = R_t^+\big[\,e_te_t' + V_{t+1} - T_t C_t - C_t'T_t' + T_tV_tT_t'\,\big]
    R_t^{+\prime}, \quad e_t = \hat\alpha_{t+1} - T_t\hat\alpha_t - c_t,

with the lag-one smoothed cross-covariance :math:`C_t = Cov(\alpha_t, \alpha_{t+1} | y)` (D&K
section 4.7); the disturbance smoother gives this quantity exactly, lag-one term included
(``tests/estimation/test_em.py`` checks it against dense Gaussian conditioning).  Dropping
:math:`C_t` is a common mistake that inflates :math:`\hat Q`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..numeric.assemble import system_arrays, with_stationary
from ..numeric.filter import filter_arrays, prepare_y
from ..numeric.smoother import smooth_arrays
from ..spec.model import StateSpaceModel
from ..spec.validate import check_option
from .report import FitStatistics
from .structure import _Group, variance_groups

__all__ = ["EMResult", "fit_em"]

_ESTIMABLE = ("H", "Q", "a1", "P1")


@dataclass(frozen=True, eq=False, repr=False)
class EMResult(FitStatistics):
    """Result of :func:`fit_em`.

    Attributes
    ----------
    model : StateSpaceModel
        The model at the last M-step.
    params : dict
        Estimated variances (and covariance blocks) by name, e.g. ``{"sigma2.obs": ...}``.
    log_likelihood : float
        Log-likelihood of ``model``.
    log_likelihood_history : (n_iter + 1,) ndarray
        Log-likelihood of the initial model and after each iteration; non-decreasing.
    converged : bool
        Whether every estimate moved by at most ``tol`` (relative) in the last iteration.
    n_iter : int
    nobs : int
        Number of observed entries of y.
    df_model : int
        Free variance parameters plus diffuse initial states (D&K section 7.4).
    aic, bic : float
    data : array_like, Series or DataFrame
        The observations (for :meth:`filter`, :meth:`smooth`, :meth:`forecast`, :meth:`plot`).
    """

    model: StateSpaceModel
    params: dict
    log_likelihood: float
    log_likelihood_history: np.ndarray
    converged: bool
    n_iter: int
    nobs: int
    df_model: int
    data: Any = None


    def summary(self) -> str:
        """The estimates in a table like :meth:`MLEResult.summary` (EM gives no standard errors)."""
        lines = self._header("EM (pymc-dlm fit_em)")
        lines.append(f"{'parameter':<24}{'estimate':>16}")
        for name, val in self.params.items():
            arr = np.atleast_1d(val)
            if arr.ndim == 1 and arr.size == 1:
                lines.append(f"{name:<24}{arr[0]:>16.6g}")
            else:
                lines.append(f"{name:<24}" + np.array2string(arr, precision=6))
        return "\n".join(lines + self._coefficient_lines())



def _m_step_variances(sys, sm, groups: list[_Group], y: np.ndarray) -> dict:
    """Closed-form M-step for the groups of H and Q; returns the new (1, k, k) H and Q."""
    new = {}
    n = y.shape[0]
    obs = ~np.isnan(y)
    for name in ("H", "Q"):
        gs = [g for g in groups if g.matrix == name]
        if not gs:
            continue
        A = getattr(sys, name).copy()
        if name == "Q":
            # eta_t, t = 1..n-1, links alpha_t and alpha_{t+1}, both in the complete data
            hat, var = sm.eta_hat[: n - 1], sm.eta_var[: n - 1]
        else:
            hat, var = sm.eps_hat, sm.eps_var
        for g in gs:
            idx = np.asarray(g.index)
            if g.full:
                # complete data (alpha, y): E(eps eps'|y) of missing rows is conditional on the
                # observed ones (the smoother fills them in)
                S = np.einsum("ti,tj->ij", hat[:, idx], hat[:, idx]) + var[:, idx][:, :, idx].sum(0)
                A[0][np.ix_(idx, idx)] = 0.5 * (S + S.T) / hat.shape[0]
            else:
                second = hat[:, idx] ** 2 + var[:, idx, idx]
                if name == "H":
                    # complete data (alpha, observed y): only the observed entries count
                    mask = obs[:, idx]
                    A[0, idx, idx] = second[mask].sum() / mask.sum()
                else:
                    A[0, idx, idx] = second.sum() / second.size
        new[name] = A
    return new


def _m_step_initial(sys, known: np.ndarray, sm, estimate: tuple[str, ...]) -> dict:
    """a1 <- E(alpha_1|y) and P1 <- Var(alpha_1|y) (plus the outer product of the mean's shift
    when a1 stays fixed), on the states with a known initial distribution."""
    new = {}
    shift = np.where(known, sm.a_smooth[0] - sys.a1, 0.0)
    if "a1" in estimate:
        new["a1"] = np.where(known, sm.a_smooth[0], sys.a1)
    if "P1" in estimate:
        P1 = sys.P1.copy()
        k = np.ix_(known, known)
        block = sm.V[0][k]
        if "a1" not in estimate:
            block = block + np.outer(shift[known], shift[known])
        P1[k] = 0.5 * (block + block.T)
        new["P1"] = P1
    return new


def _params(arrays: dict, groups: list[_Group]) -> dict:
    out = {}
    for g in groups:
        A = arrays[g.matrix]
        idx = np.asarray(g.index)
        out[g.name] = A[np.ix_(idx, idx)].copy() if g.full else float(A[idx[0], idx[0]])
    return out


def _flat(sys, groups: list[_Group], estimate: tuple[str, ...]) -> np.ndarray:
    """Every estimated number in one vector (for the convergence test)."""
    parts = [np.ravel(v) for v in _params({"H": sys.H[0], "Q": sys.Q[0]}, groups).values()]
    parts += [np.ravel(getattr(sys, e)) for e in ("a1", "P1") if e in estimate]
    return np.concatenate(parts) if parts else np.zeros(0)


def fit_em(
    y: Any,
    initial_model: StateSpaceModel,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    estimate: tuple[str, ...] | list[str] = ("H", "Q"),
    callback: Any = None,
) -> EMResult:
    r"""Estimate the variances of a model by the EM algorithm (NumPy engine).

    Each iteration runs the Kalman filter and the state and disturbance smoother (E-step) and
    sets every free variance to its closed-form maximiser (M-step; formulas in the module
    docstring).  The model's structure is kept: zero variances stay zero, entries linked by a
    non-zero covariance are estimated as one full block, disturbances tied by a component
    (e.g. all of a trigonometric seasonal's) share one variance.  A diagonal H is updated from
    the observed entries only; a full H block treats missing entries as part of the complete
    data.  The log-likelihood is evaluated at every iteration (the E-step's filter gives it) and
    never decreases.  Z and T are not estimated (no Shumway-Stoffer loadings update).

    Parameters
    ----------
    y : (n,) or (n, p) array_like, Series or DataFrame
        Observations, NaN for missing.
    initial_model : StateSpaceModel
        A numeric model: the starting values and the structure to keep.
    max_iter : int, default 100
        Maximum number of EM iterations.
    tol : float, default 1e-6
        Stop when no estimated number moved by more than ``tol`` relative to its previous value
        in the last iteration.  (EM converges linearly: a small change of the log-likelihood
        says little about the distance to the maximum, so it is not the criterion.)
    estimate : sequence of {"H", "Q", "a1", "P1"}, default ("H", "Q")
        Which matrices to update.  ``a1``/``P1`` only on states with a known (neither diffuse
        nor stationary) initial distribution.
    callback : callable, optional
        Called as ``callback(iteration, log_likelihood)`` after every iteration (progress
        display, e.g. the command line's).

    Returns
    -------
    EMResult

    Raises
    ------
    ValueError
        Unknown entries in ``estimate``, time-varying H or Q, no free variance to estimate.
    TypeError
        A model with symbolic entries.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.estimation import fit_em
    >>> res = fit_em(dlm.datasets.load_nile(), dlm.LocalLevel(10.0, 10.0), max_iter=2000, tol=1e-12)
    >>> round(res.params["sigma2.obs"]), round(res.params["sigma2.level"])
    (15099, 1469)
    """
    if not isinstance(initial_model, StateSpaceModel):
        raise TypeError(f"initial_model must be a StateSpaceModel; got {type(initial_model).__name__}")
    if not initial_model.is_numeric:
        raise TypeError("fit_em needs a numeric initial_model (no PyTensor/PyMC entries); "
                        "use fit_mle or pm.find_MAP for symbolic parameterisations")
    estimate = (estimate,) if isinstance(estimate, str) else tuple(estimate)
    for e in estimate:
        check_option("estimate", e, _ESTIMABLE)
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0; got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0; got {tol!r}")
    model = initial_model
    groups = variance_groups(model, estimate)
    if not groups and not {"a1", "P1"} & set(estimate):
        raise ValueError(
            f"the model has no free variance in {estimate}: every variance there is zero, "
            "and zeros are kept as structural"
        )
    y_arr, _ = prepare_y(model, y)
    known = np.array([not (d or st) for d, st in zip(model.diffuse, model.stationary, strict=True)])
    if {"a1", "P1"} & set(estimate) and not known.any():
        raise ValueError("a1/P1 can only be estimated for states with a known initial "
                         "distribution; every state is diffuse or stationary")
    sys = system_arrays(model)
    history = []
    converged = False
    it = 0
    with threadpool_limits(1):
        f = filter_arrays(sys, y_arr)
        history.append(f.llf)
        theta_old = _flat(sys, groups, estimate)
        while it < max_iter:
            sm = smooth_arrays(sys, f)
            changes = _m_step_variances(sys, sm, groups, y_arr)
            if {"a1", "P1"} & set(estimate):
                changes.update(_m_step_initial(sys, known, sm, estimate))
            sys = sys._replace(**changes)
            if "Q" in changes and any(model.stationary):
                sys = sys._replace(P1=with_stationary(sys.P1, sys.T, sys.R, sys.Q, model.stationary))
            f = filter_arrays(sys, y_arr)
            history.append(f.llf)
            it += 1
            if callback is not None:
                callback(it, f.llf)
            theta = _flat(sys, groups, estimate)
            step = np.abs(theta - theta_old) <= tol * np.maximum(np.abs(theta_old), 1e-300)
            theta_old = theta
            if step.all():
                converged = True
                break
    final = {"H": sys.H[0], "Q": sys.Q[0]}
    fields = {k: final[k] for k in ("H", "Q") if k in estimate}
    fields.update({k: getattr(sys, k) for k in ("a1", "P1") if k in estimate})
    if "P1" in fields:  # the stationary block is recomputed by the engine, not stored
        fields["P1"] = np.where(np.outer(known, known), fields["P1"], 0.0)
    w = int(np.sum(model.diffuse))
    k = sum(g.n_free for g in groups)
    return EMResult(
        model=model.replace(**fields), params=_params(final, groups),
        log_likelihood=float(history[-1]), log_likelihood_history=np.asarray(history),
        converged=converged, n_iter=it, nobs=int(f.nobs), df_model=k + w, data=y,
    )
