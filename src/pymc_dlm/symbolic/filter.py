r"""The Kalman filter as a PyTensor ``scan``: the symbolic twin of :mod:`pymc_dlm.numeric.filter`.

Same equations, names and likelihood convention as the NumPy engine (Durbin and Koopman
2012, eqs. 4.21-4.26 and 7.2; exact diffuse steps of sections 5.2 and 6.4 with the
univariate treatment; statsmodels' convention for the diffuse likelihood).  What differs is
how data-dependent branches are written, since a graph cannot drop rows:

* **Missing values** (NaN in y) are masked, not dropped.  With :math:`W_t = \mathrm{diag}(w_t)`,
  :math:`w_{t,i} = 1` when :math:`y_{t,i}` is observed, the update uses
  :math:`v^*_t = W_t v_t` and :math:`F^*_t = W_t F_t W_t + (I - W_t)`: the missing rows get
  unit variance and zero error, so they add nothing to :math:`\log|F^*_t|`, to
  :math:`v^{*\prime}_t F^{*-1}_t v^*_t` or to the gain (D&K section 4.10 in mask form).
* **Diffuse steps** are written out one by one before the ``scan``, one observation at a
  time.  Which observations are diffuse updates (:math:`F_{\infty,i} > 0`) and how long the
  diffuse period lasts depend only on Z, T, the diffuse states and the pattern of missing
  values, never on the variances; :func:`diffuse_plan` works them out with NumPy when the
  graph is built, so the graph has no branches there (an earlier version with ``pt.switch``
  inside a scan took minutes to compile with its gradient).
* **Conventions.** The per-step terms are computed in statsmodels' convention;
  :func:`loglike_options` adds KFAS's (``convention="kfas"``: no :math:`\log 2\pi` for a
  diffuse observation element) and a burn-in (``burn=k``: the steps t <= k count 0).
* **A non-positive-definite** :math:`F_t` makes the Cholesky factor NaN; the total
  log-likelihood is then ``-inf`` (a sampler rejects the point), never NaN.  The generalised
  inverse of the NumPy engine (Rao 1973) is not used here: a singular :math:`F_t` has
  probability zero under continuous priors.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt

from .assemble import SystemTensors

__all__ = ["CONVENTIONS", "TOL_DIFFUSE", "DiffusePlan", "diffuse_plan", "diffuse_steps", "loglike",
           "loglike_options", "loglike_t"]

LOG2PI = math.log(2.0 * math.pi)
#: Absolute tolerance on F_inf and on sum(P_inf**2), as in the NumPy engine and statsmodels.
TOL_DIFFUSE = 1e-10
#: Log-likelihood conventions, as in the NumPy engine (:mod:`pymc_dlm.numeric.filter`).
CONVENTIONS = ("statsmodels", "kfas")


class DiffusePlan(NamedTuple):
    r"""What happens in each step of the exact diffuse period, decided when the graph is built.

    ``steps[t]`` lists ``(i, diffuse)`` for the observed rows of step t: ``diffuse`` is True
    when :math:`F_{\infty,i} > tol` (a diffuse update), False for an ordinary univariate one.
    """

    steps: tuple

    @property
    def n_steps(self) -> int:
        """Length of the diffuse period."""
        return len(self.steps)

    @property
    def diffuse_counts(self) -> np.ndarray:
        """(n_steps,) number of diffuse observation elements (diffuse updates) per step."""
        return np.array([sum(d for _, d in step) for step in self.steps], dtype=np.int64)

    @property
    def n_diffuse_obs(self) -> int:
        """Number of diffuse observation elements in the whole diffuse period."""
        return int(self.diffuse_counts.sum())


def diffuse_plan(Z: np.ndarray, T: np.ndarray, P1inf: np.ndarray, observed: np.ndarray,
                 tol: float = TOL_DIFFUSE) -> DiffusePlan:
    r"""Plan the exact diffuse period (NumPy): its length and which rows are diffuse updates.

    Runs the :math:`P_\infty` recursion of the univariate diffuse filter (D&K eqs. 5.8 and
    6.4): for each observed row with :math:`F_\infty = Z_i P_\infty Z_i' > tol`,
    :math:`P_\infty \leftarrow P_\infty - M_\infty M_\infty'/F_\infty`; then
    :math:`P_\infty \leftarrow T P_\infty T'`; the period ends after the step where
    :math:`\sum P_\infty^2 \le tol` (the NumPy engine's rule).  This recursion involves
    only Z, T, the diffuse states and the pattern of missing values, never the variances.

    Parameters
    ----------
    Z : (p, m) or (n, p, m) ndarray
        A leading axis of length 1 also means constant.
    T : (m, m) or (n, m, m) ndarray
    P1inf : (m, m) ndarray
        diag(diffuse).
    observed : (n, p) bool ndarray
        True where y is observed.

    Returns
    -------
    DiffusePlan

    Examples
    --------
    >>> import numpy as np
    >>> diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), np.ones((100, 1), bool))
    DiffusePlan(steps=(((0, True),),))
    """
    Pinf = np.array(P1inf, dtype=np.float64)
    n = observed.shape[0]
    steps = []
    while len(steps) < n and np.sum(Pinf * Pinf) > tol:
        t = len(steps)
        Zt = Z[t] if Z.ndim == 3 and Z.shape[0] > 1 else Z.reshape(Z.shape[-2:])
        Tt = T[t] if T.ndim == 3 and T.shape[0] > 1 else T.reshape(T.shape[-2:])
        rows = []
        for i in np.flatnonzero(observed[t]):
            Mi = Pinf @ Zt[i]
            fi = Zt[i] @ Mi
            rows.append((int(i), bool(fi > tol)))
            if fi > tol:
                Pinf = Pinf - np.outer(Mi, Mi) / fi
        Pinf = Tt @ Pinf @ Tt.T
        steps.append(tuple(rows))
    return DiffusePlan(tuple(steps))


def _sym(P: Any) -> Any:
    return 0.5 * (P + P.T)


class _Matrices:
    """Sort system matrices into scan sequences (time-varying) and non-sequences (constant)."""

    names = ("Z", "d", "H", "T", "c", "R", "Q")
    base = dict(Z=2, d=1, H=2, T=2, c=1, R=2, Q=2)

    def __init__(self, sys: SystemTensors, start: int, stop: int):
        self.tv = [k for k in self.names if getattr(sys, k).ndim == self.base[k] + 1]
        self.const = [k for k in self.names if k not in self.tv]
        self.seqs = [getattr(sys, k)[start:stop] for k in self.tv]
        self.fixed = [getattr(sys, k) for k in self.const]
        self.const_rqr = "R" not in self.tv and "Q" not in self.tv
        if self.const_rqr:
            self.fixed.append(_sym(sys.R @ sys.Q @ sys.R.T))

    def unpack(self, seq_vals: list, fixed_vals: list) -> dict[str, Any]:
        out = dict(zip(self.tv, seq_vals, strict=True))
        out.update(zip(self.const, fixed_vals[: len(self.const)], strict=True))
        out["RQR"] = fixed_vals[-1] if self.const_rqr else _sym(out["R"] @ out["Q"] @ out["R"].T)
        return out


def _update_regular(a, P, y, w, Z, d, H, p: int):
    """Masked multivariate update (D&K eqs. 4.24-4.26 with W_t); returns a_{t|t}, P_{t|t}, llf_t."""
    if p == 1:
        z = Z[0]
        Mz = P @ z
        f = z @ Mz + H[0, 0]
        w0 = w[0]
        v = w0 * (y[0] - z @ a - d[0])
        fw = pt.switch(w0 > 0, f, 1.0)
        a_f = a + Mz * (v / fw)
        P_f = P - w0 * pt.outer(Mz, Mz) / fw
        ll = -0.5 * w0 * (LOG2PI + pt.log(fw) + v * v / fw)
        return a_f, P_f, ll
    v = w * (y - Z @ a - d)
    M = P @ Z.T
    F = Z @ M + H
    Fw = F * pt.outer(w, w) + pt.diag(1.0 - w)
    L = pt.linalg.cholesky(Fw, lower=True)
    Wm = pt.linalg.solve_triangular(L, (M * w[None, :]).T, lower=True)
    u = pt.linalg.solve_triangular(L, v, lower=True)
    a_f = a + Wm.T @ u
    P_f = P - Wm.T @ Wm
    ll = -0.5 * (pt.sum(w) * LOG2PI + 2.0 * pt.sum(pt.log(pt.diag(L))) + u @ u)
    return a_f, P_f, ll


def _update_diffuse(a, Ps, Pi, y, Z, d, H, rows: tuple, h_diagonal: bool, tol: float):
    r"""Exact diffuse update, one observed row at a time (D&K sections 5.2, 6.4), as planned.

    ``rows`` comes from :func:`diffuse_plan`: ``(i, True)`` is a diffuse update
    (:math:`F_\infty > 0`), ``(i, False)`` an ordinary univariate one (skipped, as in the NumPy
    engine, when :math:`F_* \le tol`).  With a non-diagonal H the observed rows are first
    decorrelated by :math:`H_o = L D L'` (L unit lower-triangular; D&K section 6.4.3); this
    leaves each row's :math:`F_\infty` unchanged, so the plan still applies.
    """
    ll = pt.constant(0.0, dtype="float64")
    if not rows:
        return a, Ps, Pi, ll
    idx = np.array([i for i, _ in rows])
    ys = y[idx] - d[idx]
    Zs = Z[idx]
    if h_diagonal:
        h = pt.diag(H)[idx]
    else:
        C = pt.linalg.cholesky(H[idx][:, idx], lower=True)
        dc = pt.diag(C)
        ys = pt.linalg.solve_triangular(C, ys, lower=True) * dc
        Zs = pt.linalg.solve_triangular(C, Zs, lower=True) * dc[:, None]
        h = dc * dc
    for q, (_, is_diffuse) in enumerate(rows):
        zi = Zs[q]
        v = ys[q] - zi @ a
        Ms = Ps @ zi
        fs = zi @ Ms + h[q]
        if is_diffuse:
            # K0 = Mi/Fi; P* <- P* - (Ms Mi' + Mi Ms')/Fi + Mi Mi' Fs/Fi^2; Pinf <- Pinf - Mi Mi'/Fi
            Mi = Pi @ zi
            fi = zi @ Mi
            a = a + Mi * (v / fi)
            Ps = Ps - (pt.outer(Ms, Mi) + pt.outer(Mi, Ms)) / fi + pt.outer(Mi, Mi) * (fs / fi**2)
            Pi = Pi - pt.outer(Mi, Mi) / fi
            ll = ll - 0.5 * (LOG2PI + pt.log(fi))
        else:
            informative = fs > tol
            fs_ = pt.switch(informative, fs, 1.0)
            a = pt.switch(informative, a + Ms * (v / fs_), a)
            Ps = pt.switch(informative, Ps - pt.outer(Ms, Ms) / fs_, Ps)
            ll = ll + pt.switch(informative, -0.5 * (LOG2PI + pt.log(fs_) + v * v / fs_), 0.0)
    return a, _sym(Ps), _sym(Pi), ll


def diffuse_steps(sys: SystemTensors, y: Any, plan: DiffusePlan, *, h_diagonal: bool | None = None,
                  tol_diffuse: float = TOL_DIFFUSE) -> tuple[Any, Any, Any, list]:
    r"""The exact diffuse steps of ``plan``, written out; what the regular recursion starts from.

    Parameters as :func:`loglike_t`.

    Returns
    -------
    y : (n, p) tensor
        ``y`` as a tensor (checked).
    a, P : tensors (m,), (m, m)
        :math:`a_{d+1}`, :math:`P_{*,d+1}` after the d = ``plan.n_steps`` diffuse steps
        (:math:`a_1, P_1` when there are none).
    parts : list of (1,) tensors
        The log-likelihood of each diffuse step.
    """
    y = pt.as_tensor_variable(y)
    if y.ndim != 2:
        raise ValueError(f"y must be (n, p); got a tensor with {y.ndim} dimensions")
    if not isinstance(plan, DiffusePlan):
        raise TypeError(f"plan must be a DiffusePlan (see diffuse_plan); got {type(plan).__name__}")
    p = int(sys.Z.type.shape[-2])
    if h_diagonal is None:
        h_diagonal = p == 1
        data = getattr(sys.H, "data", None)
        if not h_diagonal and isinstance(data, np.ndarray):
            h_diagonal = bool(np.all(data * (1 - np.eye(p)) == 0))
    observed = ~pt.isnan(y)
    y0 = pt.where(observed, y, 0.0)

    def at(name: str, t: int) -> Any:
        x = getattr(sys, name)
        return x[t] if x.ndim == _Matrices.base[name] + 1 else x

    a = pt.as_tensor_variable(sys.a1)
    P = pt.as_tensor_variable(sys.P1)
    Pi = pt.constant(sys.P1inf)
    parts = []
    for t, rows in enumerate(plan.steps):
        a_f, Ps_f, Pi_f, ll = _update_diffuse(
            a, P, Pi, y0[t], at("Z", t), at("d", t), at("H", t), rows, h_diagonal, tol_diffuse
        )
        Tt, Rt, Qt = at("T", t), at("R", t), at("Q", t)
        a = Tt @ a_f + at("c", t)
        P = _sym(Tt @ Ps_f @ Tt.T + Rt @ Qt @ Rt.T)
        Pi = _sym(Tt @ Pi_f @ Tt.T)
        parts.append(ll[None])
    return y, a, P, parts


def loglike_options(ll_t: Any, plan: DiffusePlan, *, convention: str = "statsmodels",
                    burn: int = 0, n: int | None = None) -> Any:
    r"""Apply the likelihood options to a per-step log-likelihood (statsmodels convention).

    ``convention="kfas"`` adds :math:`\tfrac12\log 2\pi` per diffuse observation element of
    each diffuse step (KFAS and R's ``arima`` drop that constant; the elements are the plan's
    diffuse updates); ``burn=k`` sets the first k steps to 0, so that the sum is
    :math:`\log p(y_{k+1:n} \mid y_{1:k})`.  A NaN (a non-positive-definite :math:`F_t`)
    after step k stays NaN.

    Parameters
    ----------
    ll_t : (n,) tensor
    plan : DiffusePlan
    convention : {"statsmodels", "kfas"}
    burn : int
        ``0 <= burn < n``.
    n : int, optional
        The number of time steps, when known (checks ``burn``).

    Returns
    -------
    (n,) tensor
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {list(CONVENTIONS)}; got {convention!r}")
    if isinstance(burn, bool) or not isinstance(burn, (int, np.integer)):
        raise TypeError(f"burn must be an integer number of time steps; got {burn!r}")
    if burn < 0 or (n is not None and burn >= n):
        raise ValueError(f"burn must satisfy 0 <= burn < n = {n}; got {burn}")
    counts = plan.diffuse_counts
    if convention == "kfas" and counts.any():
        ll_t = pt.inc_subtensor(ll_t[: counts.size], 0.5 * LOG2PI * counts.astype(np.float64))
    if burn:
        ll_t = pt.set_subtensor(ll_t[: int(burn)], 0.0)
    return ll_t


def loglike_t(sys: SystemTensors, y: Any, plan: DiffusePlan, *, h_diagonal: bool | None = None,
              tol_diffuse: float = TOL_DIFFUSE, convention: str = "statsmodels",
              burn: int = 0) -> pt.TensorVariable:
    r"""Per-time-step log-likelihood :math:`\log p(y_t \mid y_{1:t-1})` as a PyTensor graph.

    The steps of the diffuse period are written out one by one (their number and which rows
    are diffuse updates come from ``plan``); the rest is one ``scan``.

    Parameters
    ----------
    sys : SystemTensors
        From :func:`pymc_dlm.symbolic.system_tensors`.
    y : (n, p) tensor or array
        Observations; NaN marks a missing value.  In the diffuse period its missing values
        must be where ``plan`` was made to expect them.
    plan : DiffusePlan
        From :func:`diffuse_plan` (an empty plan without diffuse states).
    h_diagonal : bool, optional
        Whether H is diagonal (skips the decorrelation in diffuse steps); by default True
        when p = 1 or H is a numeric array with zero off-diagonal entries.
    tol_diffuse : float
        Tolerance on :math:`F_*` in the diffuse steps (statsmodels' 1e-10).
    convention : {"statsmodels", "kfas"}, default "statsmodels"
        The constant of the diffuse observation elements (:func:`loglike_options`).
    burn : int, default 0
        Steps t <= burn contribute 0 (:func:`loglike_options`).

    Returns
    -------
    (n,) tensor
        In diffuse steps the ``convention`` (see the module notes).  A step
        with a non-positive-definite :math:`F_t` gives NaN here; :func:`loglike` turns the
        total into ``-inf``.

    Examples
    --------
    A diffuse first step (-log(2 pi)/2), a missing step (0) and an ordinary one (F = 4, v = 1):

    >>> import numpy as np
    >>> from pymc_dlm import LocalLevel
    >>> from pymc_dlm.symbolic import system_tensors
    >>> y = np.array([[1.0], [np.nan], [2.0]])
    >>> plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    >>> ll = loglike_t(system_tensors(LocalLevel(1.0, 1.0)), y, plan)
    >>> np.allclose(ll.eval(), [-0.5 * np.log(2 * np.pi), 0.0, -0.5 * (np.log(8 * np.pi) + 0.25)])
    True
    """
    y, a, P, parts = diffuse_steps(sys, y, plan, h_diagonal=h_diagonal, tol_diffuse=tol_diffuse)
    p = int(sys.Z.type.shape[-2])
    observed = ~pt.isnan(y)
    w = pt.cast(observed, "float64")
    y0 = pt.where(observed, y, 0.0)

    def regular_step(*args):
        k = len(mats.seqs)
        yt, wt = args[0], args[1]
        mt = mats.unpack(list(args[2 : 2 + k]), list(args[2 + k + 2 :]))
        a, P = args[2 + k], args[3 + k]
        a_f, P_f, ll = _update_regular(a, P, yt, wt, mt["Z"], mt["d"], mt["H"], p)
        a_next = mt["T"] @ a_f + mt["c"]
        P_next = _sym(mt["T"] @ _sym(P_f) @ mt["T"].T + mt["RQR"])
        return a_next, P_next, ll

    nd = plan.n_steps
    mats = _Matrices(sys, nd, None)
    _, _, ll_r = pytensor.scan(
        regular_step,
        sequences=[y0[nd:], w[nd:], *mats.seqs],
        outputs_info=[a, P, None],
        non_sequences=mats.fixed,
        return_updates=False,
        strict=True,
    )
    parts.append(ll_r)
    ll_t = pt.concatenate(parts) if len(parts) > 1 else ll_r
    return loglike_options(ll_t, plan, convention=convention, burn=burn,
                           n=y.type.shape[0])


def loglike(sys: SystemTensors, y: Any, plan: DiffusePlan, **kwargs: Any) -> pt.TensorVariable:
    """Total log-likelihood; ``-inf`` when some :math:`F_t` is not positive definite (never NaN).

    Parameters, conventions and options (``convention``, ``burn``) as :func:`loglike_t`.

    Examples
    --------
    >>> import numpy as np
    >>> import pymc_dlm as dlm
    >>> from pymc_dlm.symbolic import system_tensors
    >>> y = dlm.datasets.load_nile().to_numpy()[:, None]
    >>> plan = diffuse_plan(np.ones((1, 1)), np.ones((1, 1)), np.eye(1), ~np.isnan(y))
    >>> ll = loglike(system_tensors(dlm.LocalLevel(1469.1 ** 0.5, 15099 ** 0.5)), y, plan)
    >>> round(float(ll.eval()), 4)
    -633.4646
    """
    total = pt.sum(loglike_t(sys, y, plan, **kwargs))
    return pt.switch(pt.isnan(total), -np.inf, total)
