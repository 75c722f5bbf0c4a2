"""A seasonal series with trend: log airline passengers (Box and Jenkins series G).

Local linear trend + dummy seasonal(12) + noise, fitted by maximum likelihood from a formula;
prints the summary and the next year's forecasts, writes the components and forecast plots.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import pymc_dlm as dlm  # noqa: E402

y = np.log(dlm.datasets.load_airline_passengers())       # monthly, 1949-01 .. 1960-12
res = dlm.fit("trend + seasonal(12)", y)
print(res.summary())
fc = res.forecast(12)
print(np.exp(fc[["mean", "mean_ci_lower", "mean_ci_upper"]]).round(0).head(6).to_string())
comps = res.components()                                  # trend and seasonal, log scale
print("seasonal peak month:", comps["seasonal"].groupby(comps.index.month).mean().idxmax())
for kind in ("components", "forecast"):
    axes = res.plot(kind, steps=24)
    np.ravel(np.asarray(axes, dtype=object))[0].figure.savefig(f"airline_{kind}.png", dpi=90)
    plt.close("all")
