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
=====================  ===================================  ==============================

plus ``sigma.obs`` last.  ``level`` and ``trend`` exclude each other (a trend has a level).

Names: a formula's arguments are standard deviations ``sigma.<component>`` (as the
components take them, and as :func:`pymc_dlm.bayesian` names their priors); the estimators
report variances ``sigma2.<component>`` (:attr:`Formula.estimate_names`) and optimise
``log sigma2.<component>`` and ``atanh phi.ar`` (:attr:`Formula.unconstrained_names`).  The
one scheme is tabulated in ``docs/estimation.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec import Autoregressive, Cycle, Irregular, LocalLevel, LocalLinearTrend, Seasonal
from ..spec.model import StateSpaceModel

__all__ = ["Formula", "parse_formula"]

_TERM = re.compile(r"^([a-z_]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class _Term:
    kind: str
    args: tuple

    @property
    def params(self) -> tuple[str, ...]:
        return {
            "level": ("sigma.level",),
            "trend": ("sigma.level", "sigma.slope"),
            "seasonal": ("sigma.seasonal",),
            "cycle": ("sigma.cycle",),
            "ar": ("phi.ar", "sigma.ar"),
        }[self.kind]

    def build(self, v: list) -> StateSpaceModel:
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
    >>> f.unconstrained_names
    ('log sigma2.level', 'log sigma2.slope', 'log sigma2.seasonal', 'log sigma2.obs')
    >>> f.build([1.0, 0.1, 0.5, 2.0]).state_names[:3]
    ('level', 'slope', 'seasonal_0')
    """

    text: str
    terms: tuple

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for t in self.terms for n in t.params) + ("sigma.obs",)

    @property
    def estimate_names(self) -> tuple[str, ...]:
        """The names the estimators report: ``sigma2.X`` (the variance of ``sigma.X``) and
        ``phi.ar``."""
        return tuple("sigma2." + n[6:] if n.startswith("sigma.") else n
                     for n in self.param_names)

    @property
    def unconstrained_names(self) -> tuple[str, ...]:
        """The names of fit_mle's parameters: ``log sigma2.X`` and ``atanh phi.ar``."""
        return tuple(("atanh " if n.startswith("phi") else "log ") + n
                     for n in self.estimate_names)

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
    ValueError: unknown term 'season(12)' in 'level + season(12)'; expected level, trend, seasonal(s), seasonal(s, trig), cycle(period[, damping]) or ar(1)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a model formula such as 'level + seasonal(12)'; got {text!r}")
    terms = []
    for raw in text.lower().split("+"):
        part = raw.strip().replace(" ", "")
        match = _TERM.match(part)
        kind = match.group(1) if match else None
        args = [a for a in (match.group(2) or "").split(",") if a] if match else []
        if kind in ("level", "trend") and not args and match.group(2) is None:
            terms.append(_Term(kind, ()))
        elif kind == "seasonal" and len(args) in (1, 2) and (len(args) == 1 or args[1] in ("trig", "dummy")):
            terms.append(_Term(kind, (_int(args[0], part), len(args) == 2 and args[1] == "trig")))
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
                "seasonal(s, trig), cycle(period[, damping]) or ar(1)"
            )
    kinds = [t.kind for t in terms]
    if "level" in kinds and "trend" in kinds:
        raise ValueError(f"{text!r}: 'trend' already has a level; use one of level, trend")
    for k in set(kinds):
        if kinds.count(k) > 1:
            raise ValueError(f"{text!r}: the term {k!r} appears {kinds.count(k)} times")
    return Formula(text, tuple(terms))
