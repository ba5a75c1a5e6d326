"""Vectorised numpy versions of the Cython kernels in _augment.pyx.

They are the oracles of the tests (run in float64) and the baselines of bench/bench_augment.py.
All take and return (N, C, H, W) arrays; parameters are per-sample arrays of shape (N,).
"""
import numpy as np


def rotate_bilinear(x, cos_t, sin_t, fill=0.0):
    """Bilinear rotation about ((H-1)/2, (W-1)/2); see pydl.data.transforms.rotate."""
    N, C, H, W = x.shape
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    dy = (np.arange(H) - cy)[None, :, None]
    dx = (np.arange(W) - cx)[None, None, :]
    c = np.asarray(cos_t, dtype=np.float64)[:, None, None]
    s = np.asarray(sin_t, dtype=np.float64)[:, None, None]
    xs = cx + c * dx - s * dy                       # (N, H, W) source coordinates
    ys = cy + s * dx + c * dy
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    n = np.arange(N)[:, None, None]
    out = np.zeros((N, H, W, C))
    for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                        (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        vals = x[n, :, np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)]    # (N, H, W, C)
        vals = np.where(inside[..., None], vals, fill)
        out += wgt[..., None] * vals
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)).astype(x.dtype, copy=False)


def crop_pad(x, top, left, size, padding=0, fill=0.0):
    """Crop (h, w) windows at (top[n], left[n]) of x padded by ``padding`` pixels of ``fill``."""
    h, w = size
    N = x.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=fill)
    rows = np.asarray(top)[:, None] + np.arange(h)[None, :]          # (N, h)
    cols = np.asarray(left)[:, None] + np.arange(w)[None, :]         # (N, w)
    out = xp[np.arange(N)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, h, w, C)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def fill_boxes(x, y1, y2, x1, x2, fill=0.0):
    """Copy of x with x[n, :, y1[n]:y2[n], x1[n]:x2[n]] = fill."""
    H, W = x.shape[2:]
    r = np.arange(H)[None, :, None]
    c = np.arange(W)[None, None, :]
    box = ((r >= np.asarray(y1)[:, None, None]) & (r < np.asarray(y2)[:, None, None])
           & (c >= np.asarray(x1)[:, None, None]) & (c < np.asarray(x2)[:, None, None]))
    return np.where(box[:, None], np.asarray(fill, dtype=x.dtype), x)
