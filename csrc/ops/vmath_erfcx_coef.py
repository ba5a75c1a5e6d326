"""Regenerate kGeluTailCoef / kGeluTailMid in vmath_core.inc: q(t) = erfcx(t / sqrt 2) / 2 (so that
Phi(-t) = exp(-t^2 / 2) q(t)) on the 8 half-octaves of t + 1 in [1, 16):
t in [0, 0.5), [0.5, 1), [1, 2), [2, 3), [3, 5), [5, 7), [7, 11), [11, 15), as degree-7
polynomials in u = t - mid_k, fitted for least relative error on 64 Chebyshev nodes per interval
in 40-digit mpmath, rounded to float32. (erfcx(a) = exp(a^2) erfc(a) is smooth and slowly varying:
no cancellation and no underflow, unlike erfc itself.)

Run: python csrc/ops/vmath_erfcx_coef.py   (needs mpmath and numpy; prints the C tables)
"""
import mpmath
import numpy as np

mpmath.mp.dps = 40
DEGREE, NODES = 7, 64
EDGES = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 11.0, 15.0]


def q(t):
    a = mpmath.mpf(t) / mpmath.sqrt(2)
    return mpmath.erfc(a) * mpmath.exp(a * a) / 2


def interval_coefficients(lo, hi):
    mid = np.float32((lo + hi) / 2)
    k = np.arange(NODES)
    t = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / NODES)
    y = np.array([float(q(v)) for v in t])
    a = np.vander(t - float(mid), DEGREE + 1, increasing=True) / y[:, None]
    coef = np.linalg.lstsq(a, np.ones(NODES), rcond=None)[0]
    return mid, coef.astype(np.float32)


if __name__ == "__main__":
    fits = [interval_coefficients(lo, hi) for lo, hi in zip(EDGES[:-1], EDGES[1:])]
    print("alignas(32) static const float kGeluTailMid[8] = {" + ", ".join("%.9ef" % m for m, _ in fits) + "};")
    print(f"alignas(32) static const float kGeluTailCoef[{DEGREE + 1}][8] = {{")
    for j in range(DEGREE + 1):
        print("    {" + ", ".join("%.9ef" % c[j] for _, c in fits) + f"}},  // u^{j}")
    print("};")
