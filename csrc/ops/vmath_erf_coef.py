"""Regenerate kErfCoef in vmath_core.inc: erf(a)/a on [k/2, (k+1)/2), k = 0..7, as degree-6
polynomials in u = a - (k + 1/2)/2 (Chebyshev interpolants in 30-digit mpmath, rounded to float32).

Run: python csrc/ops/vmath_erf_coef.py   (needs mpmath and numpy; prints the C table)
"""
import mpmath
import numpy as np
from numpy.polynomial import chebyshev

mpmath.mp.dps = 30
DEGREE, WIDTH, INTERVALS = 6, 0.5, 8


def g(a):
    return float(mpmath.erf(a) / a) if a != 0 else float(2 / mpmath.sqrt(mpmath.pi))


def interval_coefficients(k):
    mid = (k + 0.5) * WIDTH
    cheb = chebyshev.chebinterpolate(lambda t: np.array([g(mid + v * WIDTH / 2) for v in np.atleast_1d(t)]), DEGREE)
    # polynomial in t = u / (WIDTH/2)  ->  polynomial in u
    return (chebyshev.cheb2poly(cheb) / (WIDTH / 2) ** np.arange(DEGREE + 1)).astype(np.float32)


if __name__ == "__main__":
    table = np.array([interval_coefficients(k) for k in range(INTERVALS)])
    print(f"alignas(32) static const float kErfCoef[{DEGREE + 1}][{INTERVALS}] = {{")
    for j in range(DEGREE + 1):
        print("    {" + ", ".join("%.9ef" % c for c in table[:, j]) + f"}},  // u^{j}")
    print("};")
