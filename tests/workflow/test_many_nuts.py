"""fit_many(method="nuts"): NUTS per series (nutpie), one compiled PyMC model, data swapped.

Coverage check: four simulated local levels with different true standard deviations; if the
94% HDIs were calibrated each of the 8 intervals would cover its true value with probability
about 0.94, and 6 or more of 8 then happen with probability 0.99 (binomial: P(X <= 5) =
0.0095).  Fixed seeds make the run deterministic.  Had the data not been swapped (every
series sampled on the first one's data), the level intervals could not cover 0.3 and 3.0 at
once.  Sampling is short (200 + 200 draws, 2 chains) to keep the suite's time.
"""

from __future__ import annotations

import numpy as np
import pytest

import pymc_dlm as dlm
from pymc_dlm.workflow import many

TRUE = [(0.3, 1.0), (1.0, 1.0), (3.0, 1.0), (1.0, 3.0)]  # (sigma.level, sigma.obs)


def test_nuts_hdis_cover_the_true_standard_deviations():
    rng = np.random.default_rng(20)
    Y = np.stack([dlm.simulate(dlm.LocalLevel(lv, ob), 120, rng=rng)[0][:, 0]
                  for lv, ob in TRUE])
    before = len(many._SAMPLERS)
    res = dlm.fit_many("level", Y, "nuts", draws=200, tune=200, chains=2, random_seed=1,
                       progress=False)
    table = res.table
    assert len(many._SAMPLERS) - before <= 1  # one compiled model for the four series
    assert (table["error"] == "").all()
    covered = 0
    for b, (lv, ob) in enumerate(TRUE):
        for name, true in (("sigma.level", lv), ("sigma.obs", ob)):
            lo, hi = table.loc[b, f"{name} hdi94_lb"], table.loc[b, f"{name} hdi94_ub"]
            covered += int(lo <= true <= hi)
    assert covered >= 6
    # a mixing sanity check, not calibration (that is the coverage above): 400 draws of the
    # high signal-to-noise series (3.0, 1.0) give a bulk ESS of about 30, the others 150-400
    assert (table["sigma.level r_hat"] < 1.1).all() and (table["sigma.level ess_bulk"] > 20).all()
    with pytest.raises(ValueError, match="forecasts of method='nuts' fits"):
        res.forecast(2)


def test_nuts_bad_options():
    with pytest.raises(ValueError, match=r"method='nuts' takes \['draws', 'tune', 'chains', "
                                         r"'random_seed', 'target_accept'\]; got \['maxiter'\]"):
        dlm.fit_many("level", np.zeros((2, 10)), "nuts", maxiter=5)
