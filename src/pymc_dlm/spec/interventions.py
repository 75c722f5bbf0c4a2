r"""Intervention components: a level shift, a pulse (outlier) or a slope change at a date.

Box and Tiao (1975); Harvey (1989), section 7.6; Durbin and Koopman (2012), section 3.2.3.
Each is a regression on a known dummy variable :math:`x_t` with a static (diffuse)
coefficient :math:`\lambda`, :math:`y_t = \dots + \lambda x_t`, estimated by generalised least
squares inside the filter:

=================  ===========================================  ===========================
component          :math:`x_t` (intervention at period τ)       effect on y
=================  ===========================================  ===========================
:func:`LevelShift` :math:`1` for :math:`t \ge \tau`, else 0     a permanent step λ
:func:`Pulse`      :math:`1` at :math:`t = \tau`, else 0        a one-off outlier λ
:func:`SlopeChange` :math:`t - \tau + 1` for :math:`t \ge \tau`  a new slope λ per period
=================  ===========================================  ===========================

The dummies are functions of time, so forecasts continue them with no future data
(:class:`~pymc_dlm.spec.model.Component` ``rules``).  The period is a label of the data's
index (a date, a period, an integer label) with ``index=``, or a 0-based position.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import Component, StateSpaceModel

__all__ = ["LevelShift", "Pulse", "SlopeChange", "dummy"]


def dummy(kind: str, t0: int, start: int, stop: int) -> np.ndarray:
    """The intervention variable of ``kind`` ("level", "pulse", "slope") at 0-based period
    ``t0``, for the periods ``start .. stop - 1``.

    Examples
    --------
    >>> dummy("slope", 2, 0, 5).tolist()
    [0.0, 0.0, 1.0, 2.0, 3.0]
    """
    t = np.arange(start, stop)
    if kind == "level":
        return (t >= t0).astype(np.float64)
    if kind == "pulse":
        return (t == t0).astype(np.float64)
    if kind == "slope":
        return np.maximum(t - t0 + 1, 0).astype(np.float64)
    raise ValueError(f"intervention kind must be one of ['level', 'pulse', 'slope']; got {kind!r}")


def _position(at: Any, index: Any, n: int | None) -> tuple[int, int, str]:
    if index is not None:
        try:
            loc = index.get_loc(at)
        except (KeyError, ValueError, TypeError):
            raise ValueError(f"the intervention date {at!r} is not in the index "
                             f"({index[0]} .. {index[-1]})") from None
        if not isinstance(loc, int | np.integer):
            raise ValueError(f"the intervention date {at!r} matches several periods")
        label = index[loc]
        text = str(label.date()) if hasattr(label, "date") and label == label.normalize() \
            else str(label)
        return int(loc), len(index), text
    if n is None:
        raise ValueError("give index= (the data's index) or n= (its length) with a position")
    if not isinstance(at, int | np.integer) or not 0 <= at < n:
        raise ValueError(f"at must be a position in 0 .. {n - 1} without index=; got {at!r}")
    return int(at), n, str(at)


def _intervention(kind: str, at: Any, index: Any, n: int | None, name: str | None,
                  label: str) -> StateSpaceModel:
    t0, length, text = _position(at, index, n)
    name = name or f"{label}({text})"
    x = dummy(kind, t0, 0, length)
    comp = Component(name, f"{label} at {text}", (0,), exog=(name,), rules=((kind, t0),))
    return StateSpaceModel(Z=x[:, None, None], T=np.eye(1), Q=np.zeros((1, 1)), diffuse=[True],
                           state_names=[f"lambda_{name}"], components=[comp])


def LevelShift(at: Any, *, index: Any = None, n: int | None = None,
               name: str | None = None) -> StateSpaceModel:
    r"""A permanent shift of the level from period ``at`` on: :math:`x_t = 1(t \ge \tau)`.

    Parameters
    ----------
    at : index label or int
        The first period of the new level (a label of ``index``, else a 0-based position).
    index : pandas.Index, optional
        The data's (regular) index.
    n : int, optional
        Number of periods, when ``at`` is a position.
    name : str, optional
        Component name (default ``level_shift(<date>)``).

    Returns
    -------
    StateSpaceModel
        One diffuse static state :math:`\lambda`, time-varying ``Z`` (n, 1, 1).

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> df = dlm.datasets.load_uk_drivers()
    >>> law = LevelShift("1983-02-01", index=df.index)
    >>> law.components[0].name, int(law.Z[:, 0, 0].sum())
    ('level_shift(1983-02-01)', 23)
    """
    return _intervention("level", at, index, n, name, "level_shift")


def Pulse(at: Any, *, index: Any = None, n: int | None = None,
          name: str | None = None) -> StateSpaceModel:
    r"""A one-period effect (an additive outlier) at ``at``: :math:`x_t = 1(t = \tau)`.

    Parameters and Returns as :func:`LevelShift`.

    Examples
    --------
    >>> import pymc_dlm as dlm
    >>> Pulse(1913, index=dlm.datasets.load_nile().index).Z[42, 0, 0]
    np.float64(1.0)
    """
    return _intervention("pulse", at, index, n, name, "pulse")


def SlopeChange(at: Any, *, index: Any = None, n: int | None = None,
                name: str | None = None) -> StateSpaceModel:
    r"""A change of slope from ``at`` on: :math:`x_t = \max(t - \tau + 1, 0)`.

    Parameters and Returns as :func:`LevelShift`.

    Examples
    --------
    >>> SlopeChange(3, n=6).Z[:, 0, 0].tolist()
    [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]
    """
    return _intervention("slope", at, index, n, name, "slope_change")
