"""Harvey (1981, pp. 116-117): the stepwise Kalman procedure, one stage at a time.

The example of the IMSL / PV-WAVE ``KALMAN`` manual: a random walk observed with noise,
z = 1, r = 1, t = 1, q = 4, starting from b = 4 with covb = 16; each stage is an update with
y_k followed by a prediction.  Prints the manual's table (k, j, b, covb, n, ss, alndet, v,
covv): row (k, k) after the update of stage k, row (k + 1, k) after the prediction.

Run: ``python examples/harvey_stepwise.py``
"""

import pymc_dlm as dlm

HEADER = "  k  j      b   covb  n     ss  alndet       v    covv"


def run() -> tuple[str, dlm.KalmanState]:
    """The table as the manual prints it (3 decimals) and the final state."""
    state = dlm.KalmanState(b=4.0, covb=16.0)
    lines = [HEADER]

    def row(j: int, k: int, s: dlm.KalmanState, v: float, covv: float) -> str:
        return (f"{j:3d} {k:2d} {s.b[0]:6.3f} {s.covb[0, 0]:6.3f} {s.n:2d} {s.ss:6.3f} "
                f"{s.alndet:7.3f} {v:7.3f} {covv:7.3f}")

    for k, y in enumerate([4.4, 4.0, 3.5, 4.6]):
        step = dlm.kalman(state, y=y, z=1.0, r=1.0)           # update: b_{k|k}
        v, covv = step.v[0], step.covv[0, 0]
        lines.append(row(k, k, step.state, v, covv))
        state = dlm.kalman(step.state, t=1.0, q=4.0).state    # prediction: b_{k+1|k}
        lines.append(row(k + 1, k, state, v, covv))
    return "\n".join(lines), state


if __name__ == "__main__":
    text, final = run()
    print(text)
    print(f"sigma2_hat = ss / n = {final.sigma2_hat:.4f}; "
          f"-2Lc = n log(ss / n) + alndet = {dlm.concentrated_neg2_loglik(final):.4f}")
