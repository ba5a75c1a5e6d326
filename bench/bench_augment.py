"""Augmentation kernels (Cython, pydl/data/_augment.pyx) vs vectorised numpy (pydl/data/_reference.py).

Batch: 128 images of 1 x 28 x 28 (MNIST-sized), float32 and float64. Ops: bilinear rotation by a
random angle per image, random crop 28x28 of the image padded by 4, Cutout 8x8. Every pair is
checked for equal results before it is timed.

    PYTHONPATH=. python bench/bench_augment.py          # table: images/s and ratio, same run
    python -m pytest bench/bench_augment.py --benchmark-enable   # the same pairs under pytest-benchmark
"""
import timeit

import numpy as np
import pytest

from pydl.data import _reference as R
from pydl.data import transforms as T

N, H, W, PAD, CUT = 128, 28, 28, 4, 8


def _cases(dtype):
    rng = np.random.default_rng(0)
    x = rng.random((N, 1, H, W)).astype(dtype)
    angles = rng.uniform(-30, 30, N)
    c, s = T.rotation_cos_sin(angles)
    top, left = rng.integers(0, 2 * PAD + 1, N), rng.integers(0, 2 * PAD + 1, N)
    cy, cx = rng.integers(0, H, N), rng.integers(0, W, N)
    boxes = T.cutout_boxes(cy, cx, CUT, H, W)
    return {
        "rotate": (lambda: T.rotate(x, angles), lambda: R.rotate_bilinear(x, c, s)),
        "crop_pad4": (lambda: T.crop(x, top, left, (H, W), PAD), lambda: R.crop_pad(x, top, left, (H, W), PAD)),
        "cutout8": (lambda: T.cutout(x, cy, cx, CUT), lambda: R.fill_boxes(x, *boxes)),
    }


def _check(fast, ref, dtype):
    a, b = fast(), ref()
    assert a.dtype == b.dtype == dtype and a.shape == b.shape
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _best(fn, number=20, repeat=7):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["rotate", "crop_pad4", "cutout8"])
@pytest.mark.parametrize("impl", ["cython", "numpy"])
def test_augment(benchmark, op, impl, dtype):
    fast, ref = _cases(dtype)[op]
    _check(fast, ref, dtype)
    benchmark.group = f"{op} {np.dtype(dtype).name} batch {N}x{H}x{W}"
    benchmark(fast if impl == "cython" else ref)


def main():
    print(f"batch of {N} images {H}x{W}, 1 channel; best of 7 x 20 calls")
    print(f"{'op':<10} {'dtype':<8} {'cython img/s':>14} {'numpy img/s':>14} {'ratio':>7}")
    for dtype in (np.float32, np.float64):
        for op, (fast, ref) in _cases(dtype).items():
            _check(fast, ref, dtype)
            tf, tr = _best(fast), _best(ref)
            print(f"{op:<10} {np.dtype(dtype).name:<8} {N / tf:>14,.0f} {N / tr:>14,.0f} {tr / tf:>6.1f}x")


if __name__ == "__main__":
    main()
