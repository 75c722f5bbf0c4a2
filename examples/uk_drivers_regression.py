"""Regression with a time-varying coefficient: UK drivers killed or seriously injured.

Commandeur and Koopman (2007), chapters 6-7: log KSI = level + seasonal + beta * log petrol
price + lambda * seat-belt law + noise, the coefficients as diffuse states (estimated inside
the filter).  Fitted twice: static coefficients, then a petrol-price coefficient that follows
a random walk, and compared by the likelihood ratio.
"""

import numpy as np
import pytensor.tensor as pt
from scipy import stats

import pymc_dlm as dlm
from pymc_dlm.estimation import fit_mle

df = dlm.datasets.load_uk_drivers()
y = np.log(df["drivers_ksi"])


def model(p, sd_petrol=0.0):
    return (dlm.LocalLevel(pt.exp(p[0]))
            + dlm.Seasonal(12, pt.exp(p[1]))
            + dlm.Regression(df[["log_petrol_price"]], sd_petrol, name="petrol")
            + dlm.Regression(df[["seatbelt_law"]], name="law")
            + dlm.Irregular(pt.exp(p[2])))


names = ["log sd level", "log sd seasonal", "log sd obs"]
static = fit_mle(model, y, np.log([0.01, 0.001, 0.05]), param_names=names)
varying = fit_mle(lambda p: model(p, pt.exp(p[3])), y, np.log([0.01, 0.001, 0.05, 0.01]),
                  param_names=names + ["log sd beta_petrol"])
print(varying.summary())
for label, res in (("static", static), ("time-varying", varying)):
    sm = res.smooth()
    s = list(sm.state_names)
    b, law = sm.a_smooth[:, s.index("beta_log_petrol_price")], s.index("beta_seatbelt_law")
    print(f"{label:>12}: log-likelihood {res.log_likelihood:.4f}; petrol elasticity "
          f"{b[0]:.3f} (1969) .. {b[-1]:.3f} (1984); seat-belt law {sm.a_smooth[-1, law]:.4f} "
          f"(se {np.sqrt(sm.V[-1, law, law]):.4f}), {100 * (np.exp(sm.a_smooth[-1, law]) - 1):.1f}%")
lr = 2 * (varying.log_likelihood - static.log_likelihood)
# a variance on its boundary under the null: the LR statistic is a 50:50 mixture of 0 and chi2(1)
print(f"likelihood ratio {lr:.2f}, p = {0.5 * stats.chi2.sf(lr, 1):.3f}")
