"""Every check on user input, with messages naming the matrix, what was expected and what was got."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .matrix import is_numeric, static_shape

__all__ = ["check_covariance", "check_finite", "check_shape", "check_option", "check_y"]

# Relative tolerance for symmetry and positive semi-definiteness of covariance matrices:
# entries are compared to the largest absolute entry, eigenvalues to the largest eigenvalue.
SYM_RTOL = 1e-10
PSD_RTOL = 1e-10


def _fmt(shape: tuple) -> str:
    inner = ", ".join("?" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_shape(name: str, x: Any, expected: tuple, labels: str, n_time: int | None) -> int | None:
    """Check the static shape of a system matrix; return its time length (None if constant).

    ``expected`` is the constant shape with ``None`` for a dimension not yet known; ``labels``
    names the dimensions for the message (e.g. ``"(p, m)"``).
    """
    shape = static_shape(x)
    base = len(expected)
    if len(shape) not in (base, base + 1):
        raise ValueError(
            f"{name} must be {labels} = {_fmt(expected)} or time-varying (n, *{labels}); "
            f"got an array with {len(shape)} dimensions, shape {_fmt(shape)}"
        )
    core = shape[-base:] if base else ()
    for got, want in zip(core, expected, strict=True):
        if got is not None and want is not None and got != want:
            raise ValueError(f"{name} must be {labels} = {_fmt(expected)}; got {_fmt(core)}")
    if len(shape) == base + 1:
        n = shape[0]
        if n is not None and n_time is not None and n != n_time:
            raise ValueError(
                f"time-varying {name} has {n} time steps but other matrices have {n_time}"
            )
        return n if n is not None else n_time
    return n_time


def check_finite(name: str, x: Any) -> None:
    """Raise if a numeric entry holds inf or NaN."""
    if is_numeric(x) and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name} must be finite; got {x[tuple(bad)]} at index {tuple(bad.tolist())}")


def check_covariance(name: str, x: Any) -> None:
    """Raise unless every (time slice of a) numeric covariance is symmetric PSD with diag >= 0."""
    if not is_numeric(x):
        return
    check_finite(name, x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square; got shape {x.shape}")
    if x.size == 0:
        return
    diag = np.diagonal(x, axis1=-2, axis2=-1)
    if np.any(diag < 0):
        idx = np.argwhere(diag < 0)[0]
        raise ValueError(
            f"{name} must have non-negative variances on its diagonal; got {diag[tuple(idx)]} "
            f"at diagonal index {tuple(idx.tolist())}"
        )
    scale = max(np.max(np.abs(x)), np.finfo(float).tiny)
    asym = np.max(np.abs(x - np.swapaxes(x, -1, -2)))
    if asym > SYM_RTOL * scale:
        raise ValueError(
            f"{name} must be symmetric; got max |{name} - {name}'| = {asym:.3g} "
            f"(largest entry {scale:.3g})"
        )
    eig = np.linalg.eigvalsh(x)
    top = np.max(eig, axis=-1, keepdims=True)
    if np.any(eig < -PSD_RTOL * np.maximum(top, np.finfo(float).tiny)):
        raise ValueError(
            f"{name} must be positive semi-definite; got smallest eigenvalue {eig.min():.6g} "
            f"(largest {top.max():.6g})"
        )


def check_option(name: str, value: Any, valid: tuple) -> None:
    """Raise a ValueError listing the valid options."""
    if value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}; got {value!r}")


def check_y(y: Any, p: int, *, copy: bool = True, check_inf: bool = True) -> np.ndarray:
    """Return y as a float (n, p) array; NaN means missing, inf is an error.

    ``copy=False`` returns a view of a float64 array where it can (the caller must not write
    to it); ``check_inf=False`` leaves the inf check to the caller (the compiled
    log-likelihood checks while it reads y, and calls this again to word the error).
    """
    try:
        if hasattr(y, "to_numpy"):  # pandas: 5x faster than np.array on a Series
            arr = y.to_numpy(dtype=np.float64, copy=copy)
        else:
            arr = np.array(y, dtype=np.float64, copy=copy or None)
    except (TypeError, ValueError) as err:
        raise TypeError(f"y must be numeric (NaN for missing); could not convert: {err}") from err
    if arr.ndim == 1:
        if p != 1:
            raise ValueError(f"y is 1-D but the model has p = {p} observed series; pass y as (n, {p})")
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != p:
        raise ValueError(f"y must be (n, p) = (n, {p}); got shape {arr.shape}")
    # a finite sum rules inf out without a pass over isinf (NaN or overflow: look closer)
    if check_inf and not math.isfinite(arr.sum()) and np.any(np.isinf(arr)):
        bad = np.argwhere(np.isinf(arr))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(f"y must not contain inf (NaN marks missing values); got inf at {where}")
    return arr
