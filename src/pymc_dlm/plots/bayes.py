r"""Residual diagnostics of a DataTree's ``residuals`` group, drawn with arviz-plots.

:func:`plot_residual_diagnostics` reads the group that :func:`pymc_dlm.add_residuals` (NUTS
draws) or ``res.to_datatree()`` (an MLE or EM fit: one draw) writes, and draws four panels
per series on an ``arviz_plots.PlotCollection`` (so ArviZ's backends, styles and
``pc.savefig`` apply):

- the standardized residuals :math:`e_t` over time: posterior median and ``ci_prob`` band;
- their autocorrelations :math:`r_1..r_L` (median and band over draws) with the
  :math:`\pm 1.96/\sqrt N` lines of white noise;
- a normal QQ plot: the ordered residuals against :math:`\Phi^{-1}((i - 1/2)/N)` (median and
  band of each order statistic over draws) and the line y = x;
- the ECDF difference of the one-step PIT values :math:`u_t = \frac1S\sum_s
  \Phi(v^{(s)}_{t,i}/\sqrt{F^{(s)}_{t,ii}})` (the predictive CDF at :math:`y_t`, averaged
  over the draws: the Rao-Blackwellised PIT of the posterior predictive, free of Monte Carlo
  error) minus the uniform CDF, with the pointwise ``ci_prob`` band of a uniform sample
  (:math:`\pm z\sqrt{u(1-u)/N}`).

Steps without a standardized residual in every draw (the exact diffuse period, missing
values) are left out.  This layer sees DataTrees only (no PyMC, no PyTensor).

One implementation serves both kinds of fit: an MLE/EM result passes ``res.to_datatree()``
(one draw: the bands collapse onto the lines, and the panels' numbers are those of
:mod:`pymc_dlm.diagnostics`, as tested).  ``res.plot("diagnostics")`` still draws the
matplotlib figure of :func:`pymc_dlm.plots.plot_diagnostics`: its return value (matplotlib
axes) is what callers of ``res.plot`` get for every kind, and changing it is left to the
owners of the result classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_component_draws", "plot_residual_diagnostics", "plot_state_draws",
           "residual_check_data"]

PANELS = ("standardized residuals", "residual ACF", "normal QQ", "PIT ECDF - uniform")


def _group(dt: Any) -> Any:
    try:
        r = dt["residuals"]
    except (KeyError, TypeError):
        raise ValueError("dt has no 'residuals' group; make it with pymc_dlm.add_residuals(idata, "
                         "model) or res.to_datatree()") from None
    return r.to_dataset() if hasattr(r, "to_dataset") else r


def residual_check_data(dt: Any, *, ci_prob: float = 0.94, max_lag: int = 20,
                        dates: str = "decimal") -> tuple:
    """The lines and bands of :func:`plot_residual_diagnostics`, as two xarray Datasets.

    Parameters
    ----------
    dt : DataTree
        With a ``residuals`` group.
    ci_prob : float, default 0.94
    max_lag : int, default 20
    dates : {"decimal", "days"}, default "decimal"
        A datetime time coordinate as x of the residual panel: decimal years, or days since
        1970-01-01 (matplotlib's date numbers, for a date axis).

    Returns
    -------
    lines : Dataset
        One variable per panel (``PANELS``), dims ([series,] plot_axis, <panel's x>),
        ``plot_axis`` in {"x", "y"}: the median curves.
    bands : Dataset
        The same variables with dims ([series,] kwarg, <panel's x>), ``kwarg`` in {"x",
        "y_bottom", "y_top"}.
    """
    import xarray as xr
    from scipy import special

    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob}")
    if dates not in ("decimal", "days"):
        raise ValueError(f"dates must be 'decimal' or 'days'; got {dates!r}")
    as_number = _decimal_year if dates == "decimal" else _epoch_days
    r = _group(dt)
    e_all = r["standardized_residual"]
    tname = e_all.dims[2]
    sdims = e_all.dims[3:]
    e_all = e_all.transpose("chain", "draw", tname, *sdims)
    p = 1 if not sdims else e_all.sizes[sdims[0]]
    e_np = e_all.values.reshape(e_all.sizes["chain"] * e_all.sizes["draw"], e_all.sizes[tname], p)
    v_np = r["prediction_error"].transpose("chain", "draw", tname, *sdims).values.reshape(e_np.shape)
    Fv = r["prediction_variance"]
    F_np = Fv.values.reshape(e_np.shape[:2] + (-1,))
    F_diag = F_np if p == 1 else F_np.reshape(e_np.shape[:2] + (p, p)).diagonal(axis1=2, axis2=3)
    times = np.asarray(e_all[tname].values)
    lo_q, hi_q = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    z = special.ndtri(hi_q)
    lines, bands = {k: [] for k in PANELS}, {k: [] for k in PANELS}
    for i in range(p):
        e = e_np[:, :, i]
        keep = np.isfinite(e).all(axis=0)
        e, t = e[:, keep], times[keep]
        n = e.shape[1]
        if n < 3:
            raise ValueError(f"series {i} has {n} standardized residuals; need at least 3")
        L = min(max_lag, n - 1)
        d = e - e.mean(axis=1, keepdims=True)
        den = np.sum(d * d, axis=1)
        acf = np.stack([np.sum(d[:, : n - j] * d[:, j:], axis=1) / den for j in range(1, L + 1)],
                       axis=1)
        srt = np.sort(e, axis=1)
        theo = special.ndtri((np.arange(1, n + 1) - 0.5) / n)
        pit = np.mean(special.ndtr(v_np[:, keep, i] / np.sqrt(F_diag[:, keep, i])), axis=0)
        grid = np.linspace(0.0, 1.0, 201)
        ecdf = np.searchsorted(np.sort(pit), grid, side="right") / n
        half = z * np.sqrt(grid * (1 - grid) / n)
        curves = {
            PANELS[0]: (t, e), PANELS[1]: (np.arange(1, L + 1), acf),
            PANELS[2]: (theo, srt),
        }
        for k, (x, draws) in curves.items():
            q = np.quantile(draws, [lo_q, 0.5, hi_q], axis=0)
            lines[k].append((x, q[1]))
            bands[k].append((x, q[0], q[2]))
        lines[PANELS[3]].append((grid, ecdf - grid))
        bands[PANELS[3]].append((grid, -half, half))

    def stack(parts: list, labels: tuple, k: str) -> Any:
        """One DataArray per panel: series of different lengths (missing values) NaN-padded."""
        xdim = f"{k} index"
        width = max(len(part[0]) for part in parts)
        arrays = []
        for part in parts:
            rows = np.full((len(part), width), np.nan)
            for j, a in enumerate(part):
                a = np.asarray(a)
                rows[j, : a.size] = as_number(a) if np.issubdtype(a.dtype, np.datetime64) else a
            arrays.append(xr.DataArray(rows, dims=(labels[0], xdim),
                                       coords={labels[0]: list(labels[1:])}))
        out = xr.concat(arrays, dim=sdims[0]) if sdims else arrays[0]
        if sdims:
            out = out.assign_coords({sdims[0]: e_all[sdims[0]].values})
        return out

    lines_ds = xr.Dataset({k: stack(v, ("plot_axis", "x", "y"), k) for k, v in lines.items()})
    bands_ds = xr.Dataset({k: stack(v, ("kwarg", "x", "y_bottom", "y_top"), k)
                           for k, v in bands.items()})
    return lines_ds, bands_ds


def plot_residual_diagnostics(dt: Any, *, ci_prob: float = 0.94, max_lag: int = 20,
                              backend: str | None = None, **pc_kwargs: Any) -> Any:
    r"""Standardized residuals, their ACF, a normal QQ plot and the PIT ECDF difference.

    Parameters
    ----------
    dt : DataTree
        With a ``residuals`` group (:func:`pymc_dlm.add_residuals`, ``res.to_datatree()``).
    ci_prob : float, default 0.94
        Probability of the bands (over posterior draws; for the PIT panel, of a uniform sample).
    max_lag : int, default 20
    backend : {"matplotlib", "bokeh", "plotly"}, optional
        Default: arviz's ``rcParams["plot.backend"]``.
    **pc_kwargs
        Passed to ``arviz_plots.PlotCollection.wrap`` (e.g. ``figure_kwargs``).

    Returns
    -------
    arviz_plots.PlotCollection
        ``pc.savefig(path)`` saves it.

    Examples
    --------
    >>> import numpy as np, pymc_dlm as dlm
    >>> from pymc_dlm.plots import plot_residual_diagnostics
    >>> res = dlm.estimation.fit_mle(dlm.LocalLevel(30.0, 100.0), dlm.datasets.load_nile())
    >>> pc = plot_residual_diagnostics(res.to_datatree(), backend="none")
    >>> sorted(pc.viz["plot"].data_vars)[:2]
    ['PIT ECDF - uniform', 'normal QQ']
    """
    from arviz_base import rcParams
    from arviz_base.labels import BaseLabeller
    from arviz_plots import PlotCollection
    from arviz_plots.visuals import fill_between_y, labelled_title, line_xy

    if backend is None:
        backend = rcParams["plot.backend"]
    date_axis = backend == "matplotlib" and _has_dates(dt)
    lines, bands = residual_check_data(dt, ci_prob=ci_prob, max_lag=max_lag,
                                       dates="days" if date_axis else "decimal")
    sdims = [d for d in lines[PANELS[0]].dims if d not in ("plot_axis", f"{PANELS[0]} index")]
    pc_kwargs.setdefault("cols", ["__variable__", *sdims])
    pc_kwargs.setdefault("col_wrap", 4)
    pc_kwargs.setdefault("aes", {})
    pc = PlotCollection.wrap(lines, backend=backend, **pc_kwargs)
    pc.map(fill_between_y, "band", data=bands, alpha=0.3, color="C0")
    pc.map(line_xy, "median", data=lines, color="C0")
    zero = lines[[PANELS[0], PANELS[1], PANELS[3]]].copy()
    for k in zero.data_vars:
        zero[k] = zero[k].where(zero[k].plot_axis == "x", 0.0)
    pc.map(line_xy, "reference", data=zero, color="B2", linestyle="--")
    diag = lines[[PANELS[2]]].copy()
    diag[PANELS[2]] = diag[PANELS[2]].sel(plot_axis="x").expand_dims(
        plot_axis=["x", "y"]).transpose(*lines[PANELS[2]].dims)
    pc.map(line_xy, "reference_qq", data=diag, color="B2", linestyle="--")
    n_obs = _n_residuals(dt, lines)
    acf_ref = lines[[PANELS[1]]].copy()
    for sign, name in ((1.0, "white_noise_hi"), (-1.0, "white_noise_lo")):
        ref = acf_ref.copy()
        ref[PANELS[1]] = ref[PANELS[1]].where(ref[PANELS[1]].plot_axis == "x",
                                              sign * 1.96 / np.sqrt(n_obs))
        pc.map(line_xy, name, data=ref, color="B2", linestyle=":")
    pc.map(labelled_title, "title", subset_info=True, labeller=BaseLabeller(),
           ignore_aes=set(pc.aes_set))
    if date_axis:  # dated series: a date axis (other backends: decimal years)
        import matplotlib.dates as mdates

        for ax in np.ravel(np.asarray(pc.viz["plot"][PANELS[0]].values, dtype=object)):
            locator = mdates.AutoDateLocator(maxticks=6)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return pc


def _has_dates(dt: Any) -> bool:
    e = _group(dt)["standardized_residual"]
    return bool(np.issubdtype(e[e.dims[2]].dtype, np.datetime64))


def _epoch_days(a: np.ndarray) -> np.ndarray:
    """Dates as days since 1970-01-01 (matplotlib's date numbers)."""
    return (np.asarray(a, "datetime64[ns]") - np.datetime64("1970-01-01", "ns")) \
        / np.timedelta64(1, "D")


def _decimal_year(a: np.ndarray) -> np.ndarray:
    """Dates as decimal years (one numeric x axis for every panel)."""
    import pandas as pd

    d = pd.DatetimeIndex(a)
    return np.asarray(d.year + (d.day_of_year - 1) / 365.25, dtype=float)


def _n_residuals(dt: Any, lines: Any) -> Any:
    """N, the residuals of each series (the length of the QQ panel)."""
    return lines[PANELS[2]].sizes[f"{PANELS[2]} index"]


def _draw_band(ax: Any, x: Any, draws: np.ndarray, ci_prob: float, colour: str,
               label: str) -> None:
    """Median line and central ``ci_prob`` band of draws (S, n) over the first axis."""
    lo, med, hi = np.quantile(draws, [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2], axis=0)
    ax.plot(x, med, color=colour, label=f"{label} (median)")
    ax.fill_between(x, lo, hi, color=colour, alpha=0.25,
                    label=f"{label}, {100 * ci_prob:g}% posterior band")


def _path_draws(states: Any) -> tuple:
    """(S, n, m) draws, the time values and the state names of ``sample_states`` output."""
    if "states" not in getattr(states, "data_vars", {}):
        raise ValueError("states must be the Dataset of pymc_dlm.sample_states(..., "
                         "kind='simulated') (a variable 'states')")
    da = states["states"]
    tname = da.dims[2]
    flat = da.transpose("chain", "draw", tname, "state").values
    return flat.reshape(-1, *flat.shape[2:]), np.asarray(da[tname].values), \
        [str(s) for s in da["state"].values], tname


def plot_state_draws(states: Any, y: Any = None, *, names: Any = None, ci_prob: float = 0.94,
                     axes: Any = None):
    r"""Posterior median and band of each state from draws of the state paths.

    The draws are :math:`\alpha^{(s)} \sim p(\alpha \mid y, \theta^{(s)})` at posterior draws
    :math:`\theta^{(s)}` (``sample_states(model, idata, kind="simulated")``), so together they
    are draws of :math:`p(\alpha \mid y)`: the bands hold the uncertainty of the states and of
    the parameters (a plot at one parameter value, e.g. the posterior median, holds the first
    only).

    Parameters
    ----------
    states : xarray.Dataset
        With ``states`` (chain, draw, time, state).
    y : (n,) array_like, optional
        Drawn as points on the first panel.
    names : sequence of str, optional
        Which states; the first four by default.
    ci_prob : float, default 0.94
    axes : sequence of matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Axes

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from pymc_dlm.plots.bayes import plot_state_draws
    >>> draws = np.random.default_rng(0).normal(size=(1, 50, 10, 1)).cumsum(axis=2)
    >>> ds = xr.Dataset({"states": (("chain", "draw", "time", "state"), draws)},
    ...                 coords={"time": np.arange(10), "state": ["level"]})
    >>> [ax.get_ylabel() for ax in plot_state_draws(ds)]
    ['level']
    """
    from ._common import new_axes

    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob}")
    draws, x, state_names, tname = _path_draws(states)
    if names is None:
        names = state_names[:4]
    unknown = [s for s in names if s not in state_names]
    if unknown:
        raise ValueError(f"unknown states {unknown}; the states are {state_names}")
    axes = new_axes(len(names), axes)
    for k, (ax, s) in enumerate(zip(axes, names, strict=True)):
        if k == 0 and y is not None:
            ax.plot(x, np.asarray(y, float).ravel(), "k.", ms=3, label="observed")
        _draw_band(ax, x, draws[:, :, state_names.index(s)], ci_prob, "C3", s)
        ax.set_ylabel(s)
        ax.legend(loc="best", fontsize=7)
    axes[0].set_title(f"smoothed states: posterior over {draws.shape[0]} draws")
    axes[-1].set_xlabel(tname)
    return axes


def plot_component_draws(states: Any, model: Any, *, series: int = 0, ci_prob: float = 0.94,
                         axes: Any = None):
    r"""Each structural component's contribution :math:`Z_{t,c}\alpha_{t,c}` to y, posterior
    median and band from draws of the state paths (see :func:`plot_state_draws`).

    Parameters
    ----------
    states : xarray.Dataset
        ``sample_states(model, idata, kind="simulated")``.
    model : StateSpaceModel
        A numeric model of the same structure (its ``Z`` and components; ``Z`` does not
        depend on the parameters in the models of :mod:`pymc_dlm.spec`).
    series : int
        Which observed series when y is multivariate.
    ci_prob : float, default 0.94
    axes : sequence of matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Axes

    Examples
    --------
    >>> import numpy as np, xarray as xr, pymc_dlm as dlm
    >>> from pymc_dlm.plots.bayes import plot_component_draws
    >>> mod = dlm.LocalLevel(1.0, 1.0)
    >>> draws = np.random.default_rng(0).normal(size=(1, 50, 10, 1))
    >>> ds = xr.Dataset({"states": (("chain", "draw", "time", "state"), draws)},
    ...                 coords={"time": np.arange(10), "state": list(mod.state_names)})
    >>> [ax.get_ylabel() for ax in plot_component_draws(ds, mod)]
    ['level']
    """
    from ._common import new_axes

    draws, x, state_names, tname = _path_draws(states)
    if list(model.state_names) != state_names:
        raise ValueError(f"model's states {list(model.state_names)} are not the draws' "
                         f"{state_names}")
    n = draws.shape[1]
    Z = np.asarray(model.Z, dtype=np.float64)
    Z = np.broadcast_to(Z if Z.ndim == 3 else Z[None], (n,) + Z.shape[-2:])
    comps = [c for c in model.components if c.states]
    axes = new_axes(len(comps), axes)
    for k, (ax, comp) in enumerate(zip(axes, comps, strict=True)):
        s = np.asarray(comp.states)
        part = np.einsum("tj,stj->st", Z[:, series, s], draws[:, :, s])
        _draw_band(ax, x, part, ci_prob, f"C{k}", comp.name)
        ax.set_ylabel(comp.name)
        ax.set_title(comp.description, fontsize=9)
        ax.legend(loc="best", fontsize=7)
    axes[-1].set_xlabel(tname)
    return axes
