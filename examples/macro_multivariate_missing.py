"""A multivariate series with missing values: US output, consumption and investment growth.

Three quarterly growth rates (log differences x 100) share one common AR(1) factor, each with
its own mean and noise (``dlm.DynamicFactor``; GDP's loading is 1 and the factor's innovation
variance 1 for identification):

    y_t = d + lambda f_t + e_t,   f_{t+1} = phi f_t + n_t,   e_t ~ N(0, diag(h1, h2, h3))

A quarter of the investment observations are deleted at random (NaN: missing, the update
uses the observed rows only).  Fitted by maximum likelihood with exact gradients; the
smoothed factor fills the gaps.
"""

import numpy as np
import pytensor.tensor as pt

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_mle

macro = dlm.datasets.load_us_macro()
growth = 100 * np.log(macro[["realgdp", "realcons", "realinv"]]).diff().dropna()
y = growth.copy()
rng = np.random.default_rng(0)
y.loc[rng.random(len(y)) < 0.25, "realinv"] = np.nan
mean = growth.mean().to_numpy()


def model_fn(p):
    """One AR(1) factor (unit innovation variance), loadings (1, e^p0, e^p1), noise
    variances e^p2..e^p4, factor AR coefficient tanh(p5)."""
    return dlm.DynamicFactor(
        [[1.0], [pt.exp(p[0])], [pt.exp(p[1])]], [[pt.tanh(p[5])]],
        sigma_obs=[pt.exp(0.5 * p[i]) for i in (2, 3, 4)], names=list(y.columns),
    ).replace(d=mean)


# the GDP noise variance goes to its boundary (the factor is GDP growth itself): its
# standard error is then meaningless, as for any variance estimated at zero
res = fit_mle(model_fn, y, [0.0, 1.0, -1.0, -1.0, 1.0, 0.5],
              param_names=["log loading cons", "log loading inv", "log h gdp", "log h cons",
                           "log h inv", "atanh phi"])
print(res.summary())
print(f"observed: {int(np.isfinite(y.to_numpy()).sum())} of {y.size} entries")
sm = res.smooth()
fitted = mean + sm.a_smooth[:, 0:1] * np.r_[1.0, np.exp(res.params[0:2])]
gaps = y["realinv"].isna().to_numpy()
corr = np.corrcoef(fitted[gaps, 2], growth["realinv"].to_numpy()[gaps])[0, 1]
print(f"investment growth in the {gaps.sum()} deleted quarters vs the smoothed signal: "
      f"correlation {corr:.2f}")
