"""Augmentation kernels (Cython, pydl/data/_augment.pyx) vs vectorised numpy (pydl/data/_reference.py).

Batch: 128 images of 1 x 28 x 28 (MNIST-sized), float32 and float64. Ops: bilinear rotation by a
random angle per image ("rotate": against rotate_numpy below, the fastest numpy version written
here; "rotate_or": against the test oracle), random crop 28x28 of the image padded by 4 (numpy: pad + sliding-window gather),
Cutout 8x8. Every pair is checked for equal results before it is timed.

    PYTHONPATH=src python bench/bench_augment.py          # table: images/s and ratio, same run
    python -m pytest bench/bench_augment.py --benchmark-enable   # the same pairs under pytest-benchmark
"""
import timeit

import numpy as np
import pytest

from pydl.data import _reference as R
from pydl.data import transforms as T

N, H, W, PAD, CUT = 128, 28, 28, 4, 8


def rotate_numpy(x, cos_t, sin_t, fill=0.0):
    """A faster numpy rotation than the test oracle: pad by 2 pixels of fill, clip the corner
    coordinates into the padding (so no masks), gather the 4 neighbours with one flat take each,
    blend in the input dtype."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=fill)
    Hp, Wp = H + 4, W + 4
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    dy = (np.arange(H) - cy)[None, :, None]
    dx = (np.arange(W) - cx)[None, None, :]
    c, s = cos_t[:, None, None], sin_t[:, None, None]
    xs, ys = cx + c * dx - s * dy, cy + s * dx + c * dy
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0).astype(x.dtype), (ys - y0).astype(x.dtype)
    x0 = np.clip(x0.astype(np.intp), -2, W) + 2
    y0 = np.clip(y0.astype(np.intp), -2, H) + 2
    base = (np.arange(N * C) * (Hp * Wp)).reshape(N, C, 1, 1)
    idx = base + (y0 * Wp + x0)[:, None]
    flat = xp.reshape(-1)
    v00, v01 = flat[idx], flat[idx + 1]
    v10, v11 = flat[idx + Wp], flat[idx + Wp + 1]
    fx, fy = fx[:, None], fy[:, None]
    return (1 - fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx * v11)


def crop_numpy(x, top, left, size, padding, fill=0.0):
    """Crop via np.pad and a sliding-window view: one gather of N windows."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, size, axis=(2, 3))  # (N, C, ., ., h, w)
    return win[np.arange(x.shape[0]), :, top, left]


def _cases(dtype):
    rng = np.random.default_rng(0)
    x = rng.random((N, 1, H, W)).astype(dtype)
    angles = rng.uniform(-30, 30, N)
    c, s = T.rotation_cos_sin(angles)
    top, left = rng.integers(0, 2 * PAD + 1, N), rng.integers(0, 2 * PAD + 1, N)
    cy, cx = rng.integers(0, H, N), rng.integers(0, W, N)
    boxes = T.cutout_boxes(cy, cx, CUT, H, W)
    return {
        "rotate": (lambda: T.rotate(x, angles), lambda: rotate_numpy(x, c, s)),
        "rotate_or": (lambda: T.rotate(x, angles), lambda: R.rotate_bilinear(x, c, s)),
        "crop_pad4": (lambda: T.crop(x, top, left, (H, W), PAD), lambda: crop_numpy(x, top, left, (H, W), PAD)),
        "cutout8": (lambda: T.cutout(x, cy, cx, CUT), lambda: R.fill_boxes(x, *boxes)),
    }


def _check(fast, ref, dtype):
    a, b = fast(), ref()
    assert a.dtype == b.dtype == dtype and a.shape == b.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _best(fn, number=20, repeat=7):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["rotate", "rotate_or", "crop_pad4", "cutout8"])
@pytest.mark.parametrize("impl", ["cython", "numpy"])
def test_augment(benchmark, throughput, op, impl, dtype):
    fast, ref = _cases(dtype)[op]
    _check(fast, ref, dtype)
    benchmark.group = f"{op} {np.dtype(dtype).name} batch {N}x{H}x{W}"
    benchmark(fast if impl == "cython" else ref)
    throughput.record(benchmark, benchmark.group, impl, N, unit="img/s", scale=1.0)


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
