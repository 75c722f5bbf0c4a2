r"""Model formulas: ``"level + trend + seasonal(12)"`` to a structural model.

A formula is a sum of terms; the observation noise (irregular) is always included.

=====================  ===================================  ==============================
term                   component                            parameters (in order)
=====================  ===================================  ==============================
``level``              :func:`~pymc_dlm.LocalLevel`         sigma.level
``trend``              :func:`~pymc_dlm.LocalLinearTrend`   sigma.level, sigma.slope
``seasonal(s)``        dummy :func:`~pymc_dlm.Seasonal`     sigma.seasonal
``seasonal(s, trig)``  trigonometric, all harmonics         sigma.seasonal
``cycle(period)``      :func:`~pymc_dlm.Cycle`, damping     sigma.cycle
                       0.9 (``cycle(period, rho)`` to set)
``ar(1)``              :func:`~pymc_dlm.Autoregressive`     phi.ar (in (-1, 1)), sigma.ar
``reg(x1, x2, ...)``   :func:`~pymc_dlm.Regression` on the  none (static coefficients,
                       data columns x1, x2...               diffuse states)
=====================  ===================================  ==============================

plus ``sigma.obs`` last.  ``level`` and ``trend`` exclude each other (a trend has a level).
``fixed`` as the last argument makes a term deterministic (no parameter): ``level(fixed)``,
``trend(fixed)``, ``seasonal(12, fixed)``, ``seasonal(12, trig, fixed)``.  A formula with
``reg(...)`` is bound to the data holding those columns (:meth:`Formula.bind`; ``fit(...,
data=df)``); column names keep their case, term names do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..spec import (
    Autoregressive,
    Cycle,
    Irregular,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
)
from ..spec.model import StateSpaceModel

__all__ = ["Formula", "parse_formula"]

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
        return {
            "level": ("sigma.level",),
            "trend": ("sigma.level", "sigma.slope"),
            "seasonal": ("sigma.seasonal",),
            "cycle": ("sigma.cycle",),
            "ar": ("phi.ar", "sigma.ar"),
        }[self.kind]

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
        if self.kind == "seasonal":
            period, trig = self.args
            return Seasonal(period, v[0], form="trigonometric" if trig else "dummy")
        if self.kind == "cycle":
            period, damping = self.args
            return Cycle(period, damping, v[0])
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
    >>> f.build([1.0, 0.1, 0.5, 2.0]).state_names[:3]
    ('level', 'slope', 'seasonal_0')
    """

    text: str
    terms: tuple

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for t in self.terms for n in t.params) + ("sigma.obs",)

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
            comp = t.build(values[j : j + k])
            out = comp if out is None else out + comp
            j += k
        return out + Irregular(values[-1]) if out is not None else Irregular(values[-1])

    def start(self, y: Any) -> np.ndarray:
        """Starting values from the data: standard deviations a fraction of the spread of the
        first differences (the slope's smaller), AR coefficients 0.5."""
        arr = np.asarray(y, dtype=np.float64)
        diff = np.diff(arr, axis=0)
        scale = float(np.nanstd(diff)) if np.isfinite(diff).any() else 1.0
        scale = scale if scale > 0 else 1.0
        guess = {"phi.ar": 0.5, "sigma.slope": scale / 10.0}
        return np.array([guess.get(n, scale / 2.0) for n in self.param_names])


def _int(text: str, term: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"{term}: expected an integer; got {text!r}") from None
    if v < 2:
        raise ValueError(f"{term}: expected a period >= 2; got {v}")
    return v


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
    ValueError: unknown term 'season(12)' in 'level + season(12)'; expected level, trend, seasonal(s), seasonal(s, trig), cycle(period[, damping]), ar(1) or reg(column, ...)
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
        elif kind == "seasonal" and len(args) in (1, 2) and (len(args) == 1 or args[1] in ("trig", "dummy")):
            terms.append(_Term(kind, (_int(args[0], part), len(args) == 2 and args[1] == "trig"),
                               fixed))
        elif kind == "cycle" and len(args) in (1, 2):
            try:
                period = float(args[0])
                damping = float(args[1]) if len(args) == 2 else 0.9
            except ValueError:
                raise ValueError(f"{part}: expected numbers; got {args}") from None
            if not (period > 2 and 0 < damping < 1):
                raise ValueError(f"{part}: expected period > 2 and damping in (0, 1)")
            terms.append(_Term(kind, (period, damping)))
        elif kind == "ar" and args == ["1"]:
            terms.append(_Term(kind, (1,)))
        else:
            raise ValueError(
                f"unknown term {raw.strip()!r} in {text!r}; expected level, trend, seasonal(s), "
                "seasonal(s, trig), cycle(period[, damping]), ar(1) or reg(column, ...)"
            )
    kinds = [t.kind for t in terms if t.kind != "reg"]
    regs = [a for t in terms if t.kind == "reg" for a in t.args]
    if len(set(regs)) < len(regs):
        raise ValueError(f"{text!r}: a regressor appears twice in reg(...)")
    if "level" in kinds and "trend" in kinds:
        raise ValueError(f"{text!r}: 'trend' already has a level; use one of level, trend")
    for k in set(kinds):
        if kinds.count(k) > 1:
            raise ValueError(f"{text!r}: the term {k!r} appears {kinds.count(k)} times")
    return Formula(text, tuple(terms))
