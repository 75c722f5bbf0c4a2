r"""Model formulas: ``"level + trend + seasonal(12)"`` to a structural model.

A formula is a sum of terms.  The observation noise (irregular) is included, except in a
formula with an ``arima``/``sarima`` term, which has none unless it asks for one with
``+ irregular`` (statsmodels' ``measurement_error=False``).

=====================  ===================================  ==============================
term                   component                            parameters (in order)
=====================  ===================================  ==============================
``level``              :func:`~pymc_dlm.LocalLevel`         sigma.level
``trend``              :func:`~pymc_dlm.LocalLinearTrend`   sigma.level, sigma.slope
``damped``             :func:`~pymc_dlm.DampedTrend`        sigma.level, sigma.slope,
                                                            phi.damping
``poly(k)``            :func:`~pymc_dlm.PolynomialTrend`    sigma.poly_0..sigma.poly_{k-1}
``seasonal(s)``        dummy :func:`~pymc_dlm.Seasonal`     sigma.seasonal
``seasonal(s, trig)``  trigonometric, all harmonics         sigma.seasonal
                       (``seasonal(s, trig, h)``: h of them)
``cycle(period)``      :func:`~pymc_dlm.Cycle`, damping     sigma.cycle
                       0.9 (``cycle(period, rho)`` to set;  (``cycle(20?, 0.9?)``: then
                       a ``?`` after a value estimates it,  period.cycle, rho.cycle)
                       starting there)
``ar(1)``              :func:`~pymc_dlm.Autoregressive`     phi.ar (in (-1, 1)), sigma.ar
``arima(p,d,q)``       :func:`~pymc_dlm.SARIMAX`            phi.arima.ar1..p, phi.arima.ma1..q,
                                                            sigma.arima
``sarima(p,d,q)        seasonal :func:`~pymc_dlm.SARIMAX`   as arima, then phi.arima.sar1..P,
(P,D,Q,s)``                                                 phi.arima.sma1..Q, sigma.arima
``irregular``          the observation noise (explicitly)   sigma.obs
``reg(x1, x2, ...)``   :func:`~pymc_dlm.Regression` on the  none (static coefficients,
                       data columns x1, x2...               diffuse states)
=====================  ===================================  ==============================

plus ``sigma.obs`` last when there is an irregular.  ``level``, ``trend``, ``damped`` and
``poly(k)`` exclude each other (each has a level).  The ``phi.arima`` values are partial
autocorrelations in (-1, 1), mapped to stationary AR and invertible MA coefficients by
:func:`~pymc_dlm.estimation.transforms.pacf_to_ar` and
:func:`~pymc_dlm.estimation.transforms.pacf_to_ma` (Monahan 1984); for order 1 they are the
coefficients themselves.  An estimated cycle period is :math:`2 + e^\psi` (``log(x-2)
period.cycle``, periods above 2), an estimated damping :math:`1/(1 + e^{-\psi})` (``logit
rho.cycle``, in (0, 1)).
``fixed`` as the last argument makes a term deterministic (no parameter): ``level(fixed)``,
``trend(fixed)``, ``seasonal(12, fixed)``, ``seasonal(12, trig, fixed)``.  A formula with
``reg(...)`` is bound to the data holding those columns (:meth:`Formula.bind`; ``fit(...,
data=df)``); column names keep their case, term names do not.

Names: a formula's arguments are standard deviations ``sigma.<component>`` (as the
components take them, and as :func:`pymc_dlm.bayesian` names their priors); the estimators
report variances ``sigma2.<component>`` (:attr:`Formula.estimate_names`) and optimise
``log sigma2.<component>`` and ``atanh phi.ar`` (:attr:`Formula.unconstrained_names`).  The
one scheme is tabulated in ``docs/estimation.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..estimation.transforms import pacf_to_ar, pacf_to_ma
from ..spec import (
    SARIMAX,
    Autoregressive,
    Cycle,
    DampedTrend,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    PolynomialTrend,
    Regression,
    Seasonal,
)
from ..spec.model import StateSpaceModel

__all__ = ["Formula", "from_argument", "parse_formula", "to_argument"]

_TERM = re.compile(r"^([A-Za-z_]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class _Term:
    kind: str
    args: tuple
    fixed: bool = False
    X: Any = field(default=None, compare=False)  # reg: the bound regressors (n, k)

    @property
    def params(self) -> tuple[str, ...]:
        if self.fixed or self.kind == "reg":
            return ()
        if self.kind == "cycle":
            return ("sigma.cycle",) + (("period.cycle",) if self.args[2] else ()) + (
                ("rho.cycle",) if self.args[3] else ())
        return {
            "level": ("sigma.level",),
            "trend": ("sigma.level", "sigma.slope"),
            "seasonal": ("sigma.seasonal",),
            "ar": ("phi.ar", "sigma.ar"),
            "damped": ("sigma.level", "sigma.slope", "phi.damping"),
            "irregular": (),
        }[self.kind] if self.kind not in ("arima", "poly") else self._arima_params()

    def _arima_params(self) -> tuple[str, ...]:
        if self.kind == "poly":
            return tuple(f"sigma.poly_{j}" for j in range(self.args[0]))
        p, _, q, P, _, Q, _ = self.args
        return tuple(
            [f"phi.arima.ar{i}" for i in range(1, p + 1)]
            + [f"phi.arima.ma{i}" for i in range(1, q + 1)]
            + [f"phi.arima.sar{i}" for i in range(1, P + 1)]
            + [f"phi.arima.sma{i}" for i in range(1, Q + 1)]
            + ["sigma.arima"]
        )

    def build(self, v: list) -> StateSpaceModel:
        if self.fixed:
            v = [0.0, 0.0]
        if self.kind == "reg":
            if self.X is None:
                raise ValueError(f"the term reg({', '.join(self.args)}) needs the data holding "
                                 "those columns: pass data=... (Formula.bind)")
            return Regression(self.X, names=list(self.args), name=f"reg({','.join(self.args)})")
        if self.kind == "level":
            return LocalLevel(v[0])
        if self.kind == "trend":
            return LocalLinearTrend(v[0], v[1])
        if self.kind == "damped":
            return DampedTrend(v[0], v[1], v[2])
        if self.kind == "poly":
            return PolynomialTrend(self.args[0], list(v))
        if self.kind == "seasonal":
            period, trig, harmonics = self.args
            return Seasonal(period, v[0], form="trigonometric" if trig else "dummy",
                            harmonics=harmonics)
        if self.kind == "cycle":
            period, damping, free_period, free_damping = self.args
            rest = list(v[1:])
            if free_period:
                period = rest.pop(0)
            if free_damping:
                damping = rest.pop(0)
            return Cycle(period, damping, v[0])
        if self.kind == "arima":
            p, d, q, P, D, Q, period = self.args
            cuts = np.cumsum([0, p, q, P, Q])
            part = [list(v[cuts[i] : cuts[i + 1]]) for i in range(4)]
            maps = (pacf_to_ar, pacf_to_ma, pacf_to_ar, pacf_to_ma)
            ar, ma, sar, sma = (f(x) if x else None for f, x in zip(maps, part, strict=True))
            return SARIMAX((p, d, q), (P, D, Q, period), ar=ar, ma=ma, seasonal_ar=sar,
                           seasonal_ma=sma, sigma=v[-1])
        return Autoregressive([v[0]], v[1])


@dataclass(frozen=True)
class Formula:
    """A parsed model formula: its terms and the names of its parameters.

    Attributes
    ----------
    text : str
        The formula as given.
    param_names : tuple of str
        One name per parameter: ``sigma.<component>`` standard deviations, ``phi.ar`` AR
        coefficients, ``sigma.obs`` last.

    Examples
    --------
    >>> f = parse_formula("trend + seasonal(4)")
    >>> f.param_names
    ('sigma.level', 'sigma.slope', 'sigma.seasonal', 'sigma.obs')
    >>> f.unconstrained_names
    ('log sigma2.level', 'log sigma2.slope', 'log sigma2.seasonal', 'log sigma2.obs')
    >>> f.build([1.0, 0.1, 0.5, 2.0]).state_names[:3]
    ('level', 'slope', 'seasonal_0')
    """

    text: str
    terms: tuple

    @property
    def irregular(self) -> bool:
        """Whether the model has observation noise (always, except with an ARIMA term that
        does not ask for ``+ irregular``)."""
        kinds = [t.kind for t in self.terms]
        return "irregular" in kinds or "arima" not in kinds

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for t in self.terms for n in t.params) + (
            ("sigma.obs",) if self.irregular else ())

    @property
    def regressors(self) -> tuple[str, ...]:
        """The data columns of the ``reg(...)`` terms."""
        return tuple(a for t in self.terms if t.kind == "reg" for a in t.args)

    def bind(self, data: Any, index: Any = None) -> Formula:
        """The formula with its ``reg(...)`` terms holding their columns of ``data``.

        Parameters
        ----------
        data : pandas DataFrame
            Holds every column named in a ``reg(...)`` term.
        index : pandas.Index, optional
            y's (regular) index: ``data``'s rows are taken at these labels.

        Returns
        -------
        Formula

        Raises
        ------
        ValueError
            A column is absent, or has a missing value at one of y's periods.

        Examples
        --------
        >>> import pymc_dlm as dlm
        >>> df = dlm.datasets.load_uk_drivers()
        >>> f = parse_formula("level + reg(log_petrol_price, seatbelt_law)").bind(df)
        >>> f.build([0.01, 0.1]).state_names
        ('level', 'beta_log_petrol_price', 'beta_seatbelt_law')
        """
        if not self.regressors:
            return self
        if data is None or not hasattr(data, "columns"):
            raise ValueError(f"the formula {self.text!r} has regressors {list(self.regressors)}: "
                             "pass the DataFrame holding them as data=...")
        absent = [c for c in self.regressors if c not in data.columns]
        if absent:
            raise ValueError(f"the data has no column {absent[0]!r} (named in {self.text!r}); "
                             f"columns are {[str(c) for c in data.columns]}")
        terms = []
        for t in self.terms:
            if t.kind == "reg":
                X = data[list(t.args)]
                if index is not None and not X.index.equals(index):
                    X = X.reindex(index)
                bad = X.isna().any(axis=1)
                if bad.any():
                    raise ValueError(f"the regressors {list(t.args)} have no value at "
                                     f"{X.index[int(np.flatnonzero(bad)[0])]}; regressors must "
                                     "be known at every period of y (y itself may be missing)")
                t = replace(t, X=X.to_numpy(dtype=np.float64))
            terms.append(t)
        return replace(self, terms=tuple(terms))

    @property
    def estimate_names(self) -> tuple[str, ...]:
        """The names the estimators report: ``sigma2.X`` (the variance of ``sigma.X``) and
        ``phi.ar``."""
        return tuple("sigma2." + n[6:] if n.startswith("sigma.") else n
                     for n in self.param_names)

    @property
    def unconstrained_names(self) -> tuple[str, ...]:
        """The names of fit_mle's parameters: ``log sigma2.X``, ``atanh phi.ar``,
        ``log(x-2) period.cycle`` and ``logit rho.cycle``."""
        return tuple(_prefix(n) + " " + n for n in self.estimate_names)

    def build(self, values: Any) -> StateSpaceModel:
        """The model at ``values`` (numbers or PyTensor scalars, one per parameter, in the
        order of :attr:`param_names`)."""
        values = list(values) if not hasattr(values, "ndim") or values.ndim else [values]
        if len(values) != len(self.param_names):
            raise ValueError(f"the formula {self.text!r} has {len(self.param_names)} "
                             f"parameters {self.param_names}; got {len(values)} values")
        out, j = None, 0
        for t in self.terms:
            k = len(t.params)
            if t.kind == "irregular":
                continue
            comp = t.build(values[j : j + k])
            out = comp if out is None else out + comp
            j += k
        if not self.irregular:
            return out
        return out + Irregular(values[-1]) if out is not None else Irregular(values[-1])

    def start(self, y: Any) -> np.ndarray:
        """Starting values from the data: standard deviations a fraction of the spread of the
        first differences (the slope's smaller, an ARIMA innovation's the whole spread), AR
        coefficients 0.5, ARIMA partial autocorrelations 0.1."""
        arr = np.asarray(y, dtype=np.float64)
        diff = np.diff(arr, axis=0)
        scale = float(np.nanstd(diff)) if np.isfinite(diff).any() else 1.0
        scale = scale if scale > 0 else 1.0
        guess = {"phi.ar": 0.5, "sigma.slope": scale / 10.0, "sigma.arima": scale,
                 "phi.damping": 0.9}
        for t in self.terms:
            if t.kind == "cycle":
                guess.update({"period.cycle": t.args[0], "rho.cycle": t.args[1]})
        return np.array([0.1 if n.startswith("phi.arima") else guess.get(n, scale / 2.0)
                         for n in self.param_names])


def _prefix(name: str) -> str:
    """The map of an estimator's parameter name (``natural_scale``'s prefixes)."""
    for head, prefix in (("phi", "atanh"), ("period", "log(x-2)"), ("rho", "logit")):
        if name.startswith(head):
            return prefix
    return "log"


def to_argument(name: str, psi: Any) -> Any:
    r"""A formula argument (a :attr:`Formula.param_names` entry) from its unconstrained value:
    :math:`\sigma = e^{\psi/2}` (:math:`\psi` a log variance), :math:`\phi = \tanh\psi`,
    period :math:`2 + e^\psi`, damping :math:`1/(1 + e^{-\psi})`.  NumPy or PyTensor.

    Examples
    --------
    >>> float(to_argument("period.cycle", 0.0)), float(to_argument("sigma.level", 2.0))
    (3.0, 2.718281828459045)
    """
    import pytensor.tensor as pt
    from pytensor.graph.basic import Variable

    m = pt if isinstance(psi, Variable) else np
    prefix = _prefix(name)
    if prefix == "atanh":
        return m.tanh(psi)
    if prefix == "log(x-2)":
        return 2.0 + m.exp(psi)
    if prefix == "logit":
        return 1.0 / (1.0 + m.exp(-psi))
    return m.exp(0.5 * psi)


def from_argument(name: str, value: float) -> float:
    """The inverse of :func:`to_argument` (NumPy; AR coefficients clipped to (-0.99, 0.99),
    dampings to (0.01, 0.99)).

    Examples
    --------
    >>> from_argument("rho.cycle", 0.5), from_argument("period.cycle", 3.0)
    (0.0, 0.0)
    """
    prefix = _prefix(name)
    if prefix == "atanh":
        return float(np.arctanh(np.clip(value, -0.99, 0.99)))
    if prefix == "log(x-2)":
        return float(np.log(value - 2.0))
    if prefix == "logit":
        v = float(np.clip(value, 0.01, 0.99))
        return float(np.log(v / (1.0 - v)))
    return float(2.0 * np.log(value))


def _cycle_value(text: str, part: str) -> tuple[float, bool]:
    free = text.endswith("?")
    try:
        return float(text[:-1] if free else text), free
    except ValueError:
        raise ValueError(f"{part}: expected numbers (a ? after one to estimate it); "
                         f"got {text!r}") from None


def _int(text: str, term: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"{term}: expected an integer; got {text!r}") from None
    if v < 2:
        raise ValueError(f"{term}: expected a period >= 2; got {v}")
    return v


def _arima_args(kind: str, inner: str, term: str) -> tuple:
    """(p, d, q, P, D, Q, s) from ``arima(p,d,q)`` or ``sarima(p,d,q)(P,D,Q,s)``."""
    want = 3 if kind == "arima" else 7
    parts = inner.replace(")(", ",").split(",") if inner else []
    if kind == "sarima" and ")(" not in inner:
        parts = []
    try:
        vals = [int(a) for a in parts]
    except ValueError:
        vals = []
    if len(vals) != want or min(vals) < 0:
        form = "arima(p,d,q)" if kind == "arima" else "sarima(p,d,q)(P,D,Q,s)"
        raise ValueError(f"{term}: expected {form} with non-negative integers")
    if kind == "arima":
        return (*vals, 0, 0, 0, 0)
    if vals[6] < 2:
        raise ValueError(f"{term}: expected a seasonal period s >= 2; got {vals[6]}")
    return tuple(vals)


def parse_formula(text: str) -> Formula:
    """Parse a model formula (terms in the module docstring), e.g. ``"level + seasonal(12)"``.

    Raises
    ------
    ValueError
        Unknown terms, bad arguments, ``level`` with ``trend``, repeated terms.

    Examples
    --------
    >>> parse_formula("level").param_names
    ('sigma.level', 'sigma.obs')
    >>> parse_formula("level + season(12)")
    Traceback (most recent call last):
    ...
    ValueError: unknown term 'season(12)' in 'level + season(12)'; expected level, trend, damped, poly(k), seasonal(s), seasonal(s, trig[, h]), cycle(period[?][, damping[?]]), ar(1), arima(p,d,q), sarima(p,d,q)(P,D,Q,s), irregular or reg(column, ...)
    >>> parse_formula("sarima(0,1,1)(0,1,1,12)").param_names
    ('phi.arima.ma1', 'phi.arima.sma1', 'sigma.arima')
    >>> parse_formula("arima(1,0,0) + irregular").param_names
    ('phi.arima.ar1', 'sigma.arima', 'sigma.obs')
    >>> parse_formula("damped + seasonal(12, trig, 2)").param_names
    ('sigma.level', 'sigma.slope', 'phi.damping', 'sigma.seasonal', 'sigma.obs')
    >>> parse_formula("level + cycle(40?, 0.8?)").unconstrained_names[1:4]
    ('log sigma2.cycle', 'log(x-2) period.cycle', 'logit rho.cycle')
    >>> parse_formula("poly(3)").build([0.0, 0.0, 0.1, 1.0]).m
    3
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a model formula such as 'level + seasonal(12)'; got {text!r}")
    terms = []
    for raw in text.split("+"):
        part = raw.strip().replace(" ", "")
        match = _TERM.match(part)
        kind = match.group(1).lower() if match else None
        raw_args = [a for a in (match.group(2) or "").split(",") if a] if match else []
        if kind == "reg":
            if not raw_args or not all(re.fullmatch(r"[^(),]+", a) for a in raw_args):
                raise ValueError(f"{part}: expected reg(column, ...) with one or more data "
                                 "column names")
            terms.append(_Term(kind, tuple(raw_args)))
            continue
        part = part.lower()
        args = [a.lower() for a in raw_args]
        fixed = bool(args) and args[-1] == "fixed"
        if fixed:
            args = args[:-1]
        if kind in ("level", "trend") and not args and (match.group(2) is None or fixed):
            terms.append(_Term(kind, (), fixed))
        elif kind in ("damped",) and match.group(2) is None:
            terms.append(_Term(kind, ()))
        elif kind == "poly" and len(args) == 1 and args[0].isdigit() and int(args[0]) >= 1:
            terms.append(_Term(kind, (int(args[0]),)))
        elif kind == "seasonal" and len(args) in (1, 2) and (len(args) == 1 or args[1] in ("trig", "dummy")):
            terms.append(_Term(kind, (_int(args[0], part), len(args) == 2 and args[1] == "trig",
                                      None), fixed))
        elif kind == "seasonal" and len(args) == 3 and args[1] == "trig":
            period, h = _int(args[0], part), args[2]
            if not h.isdigit() or not 1 <= int(h) <= period // 2:
                raise ValueError(f"{part}: expected a number of harmonics in 1..{period // 2}; "
                                 f"got {h!r}")
            terms.append(_Term(kind, (period, True, int(h)), fixed))
        elif kind == "cycle" and len(args) in (1, 2):
            period, free_period = _cycle_value(args[0], part)
            damping, free_damping = _cycle_value(args[1] if len(args) == 2 else "0.9", part)
            if not (period > 2 and 0 < damping < 1):
                raise ValueError(f"{part}: expected period > 2 and damping in (0, 1)")
            terms.append(_Term(kind, (period, damping, free_period, free_damping)))
        elif kind == "ar" and args == ["1"]:
            terms.append(_Term(kind, (1,)))
        elif kind == "irregular" and match.group(2) is None:
            terms.append(_Term(kind, ()))
        elif kind in ("arima", "sarima"):
            terms.append(_Term("arima", _arima_args(kind, match.group(2) or "", part)))
        else:
            raise ValueError(
                f"unknown term {raw.strip()!r} in {text!r}; expected level, trend, damped, "
                "poly(k), seasonal(s), seasonal(s, trig[, h]), cycle(period[?][, damping[?]]), "
                "ar(1), arima(p,d,q), sarima(p,d,q)(P,D,Q,s), irregular or reg(column, ...)"
            )
    kinds = [t.kind for t in terms if t.kind != "reg"]
    regs = [a for t in terms if t.kind == "reg" for a in t.args]
    if len(set(regs)) < len(regs):
        raise ValueError(f"{text!r}: a regressor appears twice in reg(...)")
    levels = [k for k in kinds if k in ("level", "trend", "damped", "poly")]
    if len(set(levels)) > 1:
        other = next(k for k in levels if k != "level") if "level" in levels else levels[-1]
        raise ValueError(f"{text!r}: {other!r} already has a level; use one of level, trend, "
                         "damped, poly(k)")
    for k in set(kinds):
        if kinds.count(k) > 1:
            raise ValueError(f"{text!r}: the term {k!r} appears {kinds.count(k)} times")
    return Formula(text, tuple(terms))
