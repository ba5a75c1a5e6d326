# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-pixel augmentation kernels on image batches (N, C, H, W), float32 and float64.

Outputs first, then inputs, then parameters; the GIL is released around every loop. The
numpy oracle of each kernel is in pydl/data/_reference.py. Callers (pydl.data.transforms)
validate shapes and dtypes; these kernels trust them.
"""
ctypedef fused real:
    float
    double


cdef inline Py_ssize_t _floor(double v) noexcept nogil:
    # floor for the small coordinates here; libc floor() is a call without SSE4.1
    cdef Py_ssize_t t = <Py_ssize_t>v
    return t - 1 if v < t else t


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
    cdef double ct, st, ax, ay, xs, ys, fx, fy, v00, v01, v10, v11
    cdef const real* img
    cdef const real* p
    cdef real* o
    with nogil:
        for n in range(N):
            ct = cos_t[n]
            st = sin_t[n]
            for c in range(C):
                img = &x[n, c, 0, 0]
                o = &out[n, c, 0, 0]
                for i in range(H):
                    # xs = ax + cos*j, ys = ay + sin*j along the output row
                    ax = cx - ct * cx - st * (i - cy)
                    ay = cy - st * cx + ct * (i - cy)
                    for j in range(W):
                        xs = ax + ct * j
                        ys = ay + st * j
                        x0 = _floor(xs)
                        y0 = _floor(ys)
                        fx = xs - x0
                        fy = ys - y0
                        if x0 >= 0 and x0 + 1 < W and y0 >= 0 and y0 + 1 < H:
                            p = img + y0 * W + x0
                            v00 = p[0]
                            v01 = p[1]
                            v10 = p[W]
                            v11 = p[W + 1]
                        elif x0 < -1 or x0 >= W or y0 < -1 or y0 >= H:
                            o[i * W + j] = <real>fill
                            continue
                        else:
                            v00 = img[y0 * W + x0] if (y0 >= 0 and x0 >= 0) else fill
                            v01 = img[y0 * W + x0 + 1] if (y0 >= 0 and x0 + 1 < W) else fill
                            v10 = img[(y0 + 1) * W + x0] if (y0 + 1 < H and x0 >= 0) else fill
                            v11 = img[(y0 + 1) * W + x0 + 1] if (y0 + 1 < H and x0 + 1 < W) else fill
                        o[i * W + j] = <real>((1.0 - fy) * ((1.0 - fx) * v00 + fx * v01)
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
            # output columns j with 0 <= sx0 + j < W, as 0 <= j_lo <= j_hi <= w
            j_lo = -sx0 if sx0 < 0 else 0
            if j_lo > w:
                j_lo = w
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
