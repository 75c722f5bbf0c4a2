"""The immutable state-space model specification."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import matrix as mx
from .validate import check_covariance, check_finite, check_shape

__all__ = ["Component", "StateSpaceModel"]


@dataclass(frozen=True)
class Component:
    r"""A named structural component of a model: which states it owns and what it is.

    Attributes
    ----------
    name : str
        Unique name within a model (``"level"``, ``"seasonal"``...).
    description : str
        One line for summaries and plots.
    states : tuple of int
        Indices of the component's states in the model's state vector.
    tied : tuple of tuple of int
        Groups of state disturbances (indices into :math:`\eta_t`) that share one variance
        parameter, e.g. every disturbance of a trigonometric seasonal.  Estimators that update
        variances (:func:`pymc_dlm.estimation.fit_em`) keep each group's variances equal;
        disturbances in no group are free parameters of their own.
    exog : tuple of str
        Names of the regressors whose values are the component's columns of a time-varying
        ``Z`` (:math:`Z_t[0, states] = x_t'`, :func:`~pymc_dlm.Regression`); forecasts take
        their future values (``exog=``).  Empty for other components.
    rules : tuple of (str, int)
        For regressors that are known functions of time (interventions, one per ``exog``
        name): ``("level", t0)``, ``("pulse", t0)`` or ``("slope", t0)`` with t0 the
        0-based period of the intervention; forecasts continue them without ``exog``
        (:mod:`pymc_dlm.spec.interventions`).
    """

    name: str
    description: str
    states: tuple[int, ...]
    tied: tuple[tuple[int, ...], ...] = ()
    exog: tuple[str, ...] = ()
    rules: tuple[tuple[str, int], ...] = ()


def _eye(k: int) -> np.ndarray:
    return np.eye(k)


@dataclass(frozen=True, eq=False)
class StateSpaceModel:
    r"""A linear-Gaussian state-space model in Durbin and Koopman's notation.

    .. math::

        y_t &= Z_t \alpha_t + d_t + \varepsilon_t, \qquad \varepsilon_t \sim N(0, H_t) \\
        \alpha_{t+1} &= T_t \alpha_t + c_t + R_t \eta_t, \qquad \eta_t \sim N(0, Q_t) \\
        \alpha_1 &\sim N(a_1, P_1), \quad P_1 = P_{*} + \kappa P_{\infty},\ \kappa \to \infty

    with ``p`` observed series, ``m`` states and ``r`` state disturbances (Durbin and Koopman
    2012, eqs. 3.1 and 5.2).  Each matrix is constant (``Z`` is ``(p, m)``) or time-varying, with
    one more, leading, time axis (``Z`` is ``(n, p, m)``); that is decided by the number of
    axes, never guessed.  Entries may be numbers, NumPy arrays or PyTensor variables (e.g. PyMC
    random variables); the NumPy engine needs numbers and raises a ``TypeError`` otherwise.

    Parameters
    ----------
    Z : (p, m) or (n, p, m) array_like
        Design matrix.
    T : (m, m) or (n, m, m) array_like
        Transition matrix; ``T[t]`` maps :math:`\alpha_t` to :math:`\alpha_{t+1}`.
    Q : (r, r) or (n, r, r) array_like
        State disturbance covariance.
    H : (p, p) or (n, p, p) array_like, optional
        Observation noise covariance; zeros by default.
    R : (m, r) or (n, m, r) array_like, optional
        Selection matrix; the identity by default (``r = m``).
    d : (p,) or (n, p) array_like, optional
        Observation intercept; zeros by default.
    c : (m,) or (n, m) array_like, optional
        State intercept; zeros by default.
    a1 : (m,) array_like, optional
        Mean of the initial state; zeros by default.
    P1 : (m, m) array_like, optional
        Covariance of the non-diffuse part of the initial state (:math:`P_*`).  Rows and columns
        of diffuse or stationary states must be zero.
    diffuse : (m,) sequence of bool, optional
        States with exact diffuse initialisation (:math:`P_\infty` = diag(diffuse)).  When
        neither ``P1`` nor ``diffuse`` is given every state is diffuse (the KFAS convention).
    stationary : (m,) sequence of bool, optional
        States whose initial covariance is the stationary one, :math:`P = T P T' + R Q R'`,
        computed by the engine from the first time step's matrices (those states must not
        depend on the other states through ``T``).
    state_names : sequence of str, optional
        One name per state (``"state_0"``... by default).
    components : sequence of Component, optional
        Structural components; by default one component owning every state.

    Raises
    ------
    ValueError
        Inconsistent shapes (the message names the matrix, the expected and the actual shape),
        non-finite numbers, covariances that are not square, symmetric and positive
        semi-definite, negative variances, a non-zero ``P1`` on a diffuse state.

    Examples
    --------
    A local level model written out by hand:

    >>> import numpy as np
    >>> from pymc_dlm import StateSpaceModel
    >>> mod = StateSpaceModel(Z=[[1.0]], T=[[1.0]], Q=[[1469.1]], H=[[15099.0]],
    ...                       state_names=["level"])
    >>> mod.p, mod.m, mod.r, mod.diffuse
    (1, 1, 1, (True,))
    """

    Z: Any
    T: Any
    Q: Any
    H: Any = None
    R: Any = None
    d: Any = None
    c: Any = None
    a1: Any = None
    P1: Any = None
    diffuse: Any = None
    stationary: Any = None
    state_names: Any = None
    components: Any = None
    n_time: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        put = object.__setattr__
        Z = mx.as_entry(self.Z, "Z")
        T = mx.as_entry(self.T, "T")
        Q = mx.as_entry(self.Q, "Q")
        zs, ts, qs = mx.static_shape(Z), mx.static_shape(T), mx.static_shape(Q)
        if len(zs) not in (2, 3):
            raise ValueError(f"Z must be (p, m) or (n, p, m); got shape {zs}")
        p, m = zs[-2], zs[-1]
        if len(ts) not in (2, 3):
            raise ValueError(f"T must be (m, m) or (n, m, m); got shape {ts}")
        if self.R is None:
            R = _eye(m)
        else:
            R = mx.as_entry(self.R, "R")
        rs = mx.static_shape(R)
        if len(rs) not in (2, 3):
            raise ValueError(f"R must be (m, r) or (n, m, r); got shape {rs}")
        r = rs[-1]
        if len(qs) not in (2, 3):
            raise ValueError(f"Q must be (r, r) or (n, r, r); got shape {qs}")
        H = np.zeros((p, p)) if self.H is None else mx.as_entry(self.H, "H")
        d = np.zeros(p) if self.d is None else mx.as_entry(self.d, "d")
        c = np.zeros(m) if self.c is None else mx.as_entry(self.c, "c")
        a1 = np.zeros(m) if self.a1 is None else mx.as_entry(self.a1, "a1")
        P1 = np.zeros((m, m)) if self.P1 is None else mx.as_entry(self.P1, "P1")

        n = None
        n = check_shape("Z", Z, (p, m), "(p, m)", n)
        n = check_shape("T", T, (m, m), "(m, m)", n)
        n = check_shape("R", R, (m, r), "(m, r)", n)
        n = check_shape("Q", Q, (r, r), "(r, r)", n)
        n = check_shape("H", H, (p, p), "(p, p)", n)
        n = check_shape("d", d, (p,), "(p,)", n)
        n = check_shape("c", c, (m,), "(m,)", n)
        if len(mx.static_shape(a1)) != 1 or check_shape("a1", a1, (m,), "(m,)", None) is not None:
            raise ValueError(f"a1 must be (m,) = ({m},); got shape {mx.static_shape(a1)}")
        if len(mx.static_shape(P1)) != 2 or check_shape("P1", P1, (m, m), "(m, m)", None):
            raise ValueError(f"P1 must be (m, m) = ({m}, {m}); got shape {mx.static_shape(P1)}")

        for name, x in (("Z", Z), ("T", T), ("R", R), ("d", d), ("c", c), ("a1", a1)):
            check_finite(name, x)
        for name, x in (("Q", Q), ("H", H), ("P1", P1)):
            check_covariance(name, x)

        if self.diffuse is None:
            diffuse = (self.P1 is None,) * m
        else:
            diffuse = tuple(bool(v) for v in np.broadcast_to(np.asarray(self.diffuse, bool), (m,)))
        stationary = (
            (False,) * m
            if self.stationary is None
            else tuple(bool(v) for v in np.broadcast_to(np.asarray(self.stationary, bool), (m,)))
        )
        both = [i for i in range(m) if diffuse[i] and stationary[i]]
        if both:
            raise ValueError(f"states {both} are marked both diffuse and stationary")
        special = [i for i in range(m) if diffuse[i] or stationary[i]]
        if special and mx.is_numeric(P1):
            rows = np.abs(P1[special]).max(axis=1) if P1.size else np.zeros(0)
            bad = [special[k] for k in np.flatnonzero(rows > 0)]
            if bad:
                raise ValueError(
                    f"P1 must be zero in the rows and columns of diffuse or stationary states; "
                    f"got non-zero entries for states {bad}"
                )

        names = (
            tuple(f"state_{i}" for i in range(m))
            if self.state_names is None
            else tuple(str(s) for s in self.state_names)
        )
        if len(names) != m:
            raise ValueError(f"state_names must have m = {m} names; got {len(names)}")
        if len(set(names)) != m:
            raise ValueError(f"state_names must be unique; got {list(names)}")
        comps = (
            (Component("model", "state-space model", tuple(range(m))),)
            if self.components is None
            else tuple(self.components)
        )
        for ct in comps:
            if not isinstance(ct, Component):
                raise TypeError(f"components must be Component objects; got {type(ct).__name__}")
            if any(not 0 <= i < m for i in ct.states):
                raise ValueError(f"component {ct.name!r} refers to states outside 0..{m - 1}")
            if any(not 0 <= i < r for g in ct.tied for i in g):
                raise ValueError(
                    f"component {ct.name!r} ties disturbances outside 0..{r - 1}: {ct.tied}"
                )

        for key, val in dict(
            Z=Z, T=T, Q=Q, H=H, R=R, d=d, c=c, a1=a1, P1=P1, diffuse=diffuse,
            stationary=stationary, state_names=names, components=comps, n_time=n,
        ).items():
            put(self, key, val)

    # ---------------------------------------------------------------- dimensions
    @property
    def p(self) -> int:
        """Number of observed series."""
        return mx.static_shape(self.Z)[-2]

    @property
    def m(self) -> int:
        """Number of states."""
        return mx.static_shape(self.Z)[-1]

    @property
    def r(self) -> int:
        """Number of state disturbances."""
        return mx.static_shape(self.R)[-1]

    @property
    def is_numeric(self) -> bool:
        """True when every entry is a number (the NumPy engine can run it)."""
        return all(mx.is_numeric(getattr(self, k)) for k in self.matrix_names)

    matrix_names = ("Z", "d", "H", "T", "c", "R", "Q", "a1", "P1")

    def time_varying(self, name: str) -> bool:
        """Whether matrix ``name`` has a leading time axis."""
        base = 1 if name in ("d", "c", "a1") else 2
        return len(mx.static_shape(getattr(self, name))) == base + 1

    def replace(self, **changes: Any) -> StateSpaceModel:
        """Return a copy with some fields changed (validated again).

        Examples
        --------
        >>> from pymc_dlm import LocalLevel
        >>> LocalLevel(1.0, 2.0).replace(a1=[5.0], P1=[[1.0]], diffuse=[False]).a1
        array([5.])
        """
        return replace(self, **changes)

    def substitute(self, values: dict[int, Any]) -> StateSpaceModel:
        """A numeric copy with numbers in place of the symbolic entries.

        Parameters
        ----------
        values : dict
            ``{id(entry): number or array}`` for every symbolic entry (PyTensor variable) of
            the model, e.g. one posterior draw of the leaves found by
            :func:`pymc_dlm.symbolic.leaves`.

        Returns
        -------
        StateSpaceModel
            Validated again (so a draw with, say, a negative variance is reported).

        Examples
        --------
        >>> import pytensor.tensor as pt
        >>> from pymc_dlm import LocalLevel
        >>> s = pt.dscalar("s")
        >>> mod = LocalLevel(1.0, s)
        >>> leaf = mod.H.rows[0][0]
        >>> mod.substitute({id(leaf): 4.0}).H
        array([[4.]])
        """
        ops = mx.SubstitutingOps(values)
        changes = {
            name: mx.evaluate(getattr(self, name), ops, name) for name in self.matrix_names
        }
        return replace(self, **changes)

    def __add__(self, other: StateSpaceModel) -> StateSpaceModel:
        """Compose two models: states stacked, observations added.

        ``T, R, Q, P1`` become block-diagonal; ``a1, c``, the state names and the diffuse and
        stationary flags are concatenated; ``Z`` is placed side by side; ``H`` and ``d`` are
        summed (so give the observation noise to one component only, or split it knowingly).
        """
        if not isinstance(other, StateSpaceModel):
            return NotImplemented
        if self.p != other.p:
            raise ValueError(f"cannot add models with p = {self.p} and p = {other.p} observed series")
        if self.n_time is not None and other.n_time is not None and self.n_time != other.n_time:
            raise ValueError(
                f"cannot add time-varying models with {self.n_time} and {other.n_time} time steps"
            )
        clash = set(self.state_names) & set(other.state_names)
        if clash:
            raise ValueError(
                f"state names {sorted(clash)} appear in both models; give the components "
                "distinct names (e.g. name='seasonal_7')"
            )
        comp_clash = {c.name for c in self.components} & {c.name for c in other.components}
        if comp_clash:
            raise ValueError(
                f"component names {sorted(comp_clash)} appear in both models; pass name=... "
                "to one of them"
            )
        shift = self.m
        comps = self.components + tuple(
            replace(c, states=tuple(i + shift for i in c.states),
                    tied=tuple(tuple(i + self.r for i in g) for g in c.tied))
            for c in other.components
        )
        return StateSpaceModel(
            Z=mx.concat([self.Z, other.Z], 2),
            T=mx.block_diag([self.T, other.T]),
            R=mx.block_diag([self.R, other.R]),
            Q=mx.block_diag([self.Q, other.Q]),
            H=mx.add([self.H, other.H], 2),
            d=mx.add([self.d, other.d], 1),
            c=mx.concat([self.c, other.c], 1),
            a1=mx.concat([self.a1, other.a1], 1),
            P1=mx.block_diag([self.P1, other.P1]),
            diffuse=self.diffuse + other.diffuse,
            stationary=self.stationary + other.stationary,
            state_names=self.state_names + other.state_names,
            components=comps,
        )

    def __repr__(self) -> str:
        kind = "numeric" if self.is_numeric else "symbolic"
        tv = [k for k in ("Z", "d", "H", "T", "c", "R", "Q") if self.time_varying(k)]
        tv_txt = f", time-varying {tv} over n={self.n_time}" if tv else ""
        comps = ", ".join(c.name for c in self.components)
        return (
            f"StateSpaceModel(p={self.p}, m={self.m}, r={self.r}, {kind}{tv_txt}; "
            f"components: {comps})"
        )
