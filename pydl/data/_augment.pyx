# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-pixel augmentation kernels on image batches (N, C, H, W), float32 and float64.

Outputs first, then inputs, then parameters; the GIL is released around every loop. The
numpy oracle of each kernel is in pydl/data/_reference.py. Callers (pydl.data.transforms)
validate shapes and dtypes; these kernels trust them.
"""
from libc.math cimport floor

ctypedef fused real:
    float
    double


def rotate_bilinear(real[:, :, :, ::1] out, const real[:, :, :, ::1] x,
                    const double[::1] cos_t, const double[::1] sin_t, double fill):
    """out, x are (N, C, H, W); cos_t, sin_t are (N,).

    Rotation of image n by theta_n counter-clockwise (as displayed: rows downward) about the
    centre (cy, cx) = ((H-1)/2, (W-1)/2). Output pixel (i, j) samples the input at
        xs = cx + cos*(j-cx) - sin*(i-cy),   ys = cy + sin*(j-cx) + cos*(i-cy)
    by bilinear interpolation; neighbours outside the image count as ``fill``.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t n, c, i, j, x0, y0
    cdef double cy = (H - 1) * 0.5, cx = (W - 1) * 0.5
    cdef double ct, st, dx, dy, xs, ys, fx, fy, x0f, y0f, v00, v01, v10, v11
    cdef bint in_y0, in_y1, in_x0, in_x1
    with nogil:
        for n in range(N):
            ct = cos_t[n]
            st = sin_t[n]
            for i in range(H):
                dy = i - cy
                for j in range(W):
                    dx = j - cx
                    xs = cx + ct * dx - st * dy
                    ys = cy + st * dx + ct * dy
                    x0f = floor(xs)
                    y0f = floor(ys)
                    fx = xs - x0f
                    fy = ys - y0f
                    if x0f < -1.0 or x0f > W - 1 or y0f < -1.0 or y0f > H - 1:
                        for c in range(C):
                            out[n, c, i, j] = <real>fill
                        continue
                    x0 = <Py_ssize_t>x0f
                    y0 = <Py_ssize_t>y0f
                    in_x0 = x0 >= 0
                    in_x1 = x0 + 1 < W
                    in_y0 = y0 >= 0
                    in_y1 = y0 + 1 < H
                    for c in range(C):
                        v00 = x[n, c, y0, x0] if (in_y0 and in_x0) else fill
                        v01 = x[n, c, y0, x0 + 1] if (in_y0 and in_x1) else fill
                        v10 = x[n, c, y0 + 1, x0] if (in_y1 and in_x0) else fill
                        v11 = x[n, c, y0 + 1, x0 + 1] if (in_y1 and in_x1) else fill
                        out[n, c, i, j] = <real>((1.0 - fy) * ((1.0 - fx) * v00 + fx * v01)
                                                 + fy * ((1.0 - fx) * v10 + fx * v11))


def crop_pad(real[:, :, :, ::1] out, const real[:, :, :, ::1] x,
             const Py_ssize_t[::1] top, const Py_ssize_t[::1] left, Py_ssize_t padding,
             double fill):
    """out is (N, C, h, w), x is (N, C, H, W); top, left are (N,).

    Crop of the input padded by ``padding`` pixels of ``fill`` on every side:
        out[n, c, i, j] = x[n, c, top[n] + i - padding, left[n] + j - padding]  (fill outside x)
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t h = out.shape[2], w = out.shape[3]
    cdef Py_ssize_t n, c, i, j, sy, sx0, j_lo, j_hi
    cdef real f = <real>fill
    with nogil:
        for n in range(N):
            sx0 = left[n] - padding
            # output columns j with 0 <= sx0 + j < W
            j_lo = -sx0 if sx0 < 0 else 0
            j_hi = W - sx0 if W - sx0 < w else w
            if j_hi < j_lo:
                j_hi = j_lo
            for c in range(C):
                for i in range(h):
                    sy = top[n] + i - padding
                    if sy < 0 or sy >= H:
                        for j in range(w):
                            out[n, c, i, j] = f
                        continue
                    for j in range(j_lo):
                        out[n, c, i, j] = f
                    for j in range(j_lo, j_hi):
                        out[n, c, i, j] = x[n, c, sy, sx0 + j]
                    for j in range(j_hi, w):
                        out[n, c, i, j] = f


def fill_boxes(real[:, :, :, ::1] out, const Py_ssize_t[::1] y1, const Py_ssize_t[::1] y2,
               const Py_ssize_t[::1] x1, const Py_ssize_t[::1] x2, double fill):
    """out is (N, C, H, W), modified in place; y1, y2, x1, x2 are (N,), already clipped to the image.

    out[n, :, y1[n]:y2[n], x1[n]:x2[n]] = fill   (Cutout)
    """
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1]
    cdef Py_ssize_t n, c, i, j
    cdef real f = <real>fill
    with nogil:
        for n in range(N):
            for c in range(C):
                for i in range(y1[n], y2[n]):
                    for j in range(x1[n], x2[n]):
                        out[n, c, i, j] = f
