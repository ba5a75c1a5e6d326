"""Data augmentation on batches.

Protocol: every transform is a callable ``t(x, y=None)``; it returns ``x`` when ``y`` is None
and ``(x, y)`` otherwise, and never writes into its inputs. ``DataLoader`` calls
``transform(x_batch, y_batch)``. Image transforms take batches shaped (N, H, W) or
(N, C, H, W), draw their parameters once per sample (shared by the channels of that sample),
and return ``y`` unchanged. The batch mixers (:class:`Mixup`, :class:`CutMix`) return soft
targets of shape (N, num_classes).

Random state: ``seed=None`` draws from pydl's global generator (``pydl.manual_seed``), an int
seeds the transform's own ``np.random.default_rng`` (created once: successive calls differ,
the sequence is reproducible).

The per-pixel loops (rotation, crop/pad, cutout) are Cython (pydl/data/_augment.pyx); their
numpy oracles are in pydl/data/_reference.py.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Callable

import numpy as np

from .._random import make_rng, rng_or_global
from .._typing import Array, SeedLike
from .._validate import FLOAT_DTYPES, check_float, check_int, shape_str
from . import _augment


def _image_batch(x, name="x"):
    """Return (x4, shape): ``x`` as a C-contiguous (N, C, H, W) float array, and its own shape."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected an image batch of shape (N, H, W) or (N, C, H, W), "
                         f"got shape {shape_str(x.shape)}")
    if x.size == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {shape_str(x.shape)}")
    x4 = x if x.ndim == 4 else x[:, None]
    return np.ascontiguousarray(x4), x.shape


def _float_batch(x, name="x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch (N, ...), got shape {shape_str(x.shape)}")
    return x


def _per_sample(values: Any, n: int, name: str, dtype: Any) -> Array:
    """A scalar broadcast to (n,), or an (n,) array, as a contiguous array of ``dtype``. Integer
    ``dtype`` (pixel positions) takes integer values only: a float is never truncated silently."""
    try:
        v = np.asarray(values)
    except ValueError as e:
        raise ValueError(f"{name}: expected a number or an array of numbers: {e}") from None
    if v.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected numbers, got dtype {v.dtype}")
    if np.dtype(dtype).kind == "i" and v.size:
        if v.dtype.kind == "f" and not np.all(np.isfinite(v) & (v == np.round(v))):
            raise ValueError(f"{name}: expected integer pixel positions, got {v.ravel()[:4].tolist()}")
        info = np.iinfo(dtype)
        if v.min() < info.min // 4 or v.max() > info.max // 4:  # room for the box arithmetic
            raise ValueError(f"{name}: pixel positions out of range, got {v.min()} to {v.max()}")
    v = v.astype(dtype)
    if v.ndim == 0:
        return np.full(n, v, dtype=dtype)
    if v.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got shape {shape_str(v.shape)}")
    return np.ascontiguousarray(v)


def _size2(size, name):
    if isinstance(size, numbers.Integral) and not isinstance(size, (bool, np.bool_)):
        size = (size, size)
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise TypeError(f"{name}: expected an int or a pair (h, w), got {size!r}")
    return tuple(check_int(s, name, low=1) for s in size)


def rotation_cos_sin(angles: Array | float) -> tuple[Array, Array]:
    """cos and sin of ``angles`` (degrees, float64 array); exact at multiples of 90 degrees,
    so that rotating by 90k degrees moves pixels exactly (equals np.rot90)."""
    angles = np.asarray(angles, dtype=np.float64)
    rad = np.deg2rad(angles)
    c, s = np.cos(rad), np.sin(rad)
    quarter = np.remainder(angles, 360.0) / 90.0
    exact = quarter == np.round(quarter)
    q = np.round(quarter[exact]).astype(np.int64) % 4
    c[exact] = np.array([1.0, 0.0, -1.0, 0.0])[q]
    s[exact] = np.array([0.0, 1.0, 0.0, -1.0])[q]
    return np.ascontiguousarray(c), np.ascontiguousarray(s)


# ---------------------------------------------------------------- functional forms (deterministic)

def rotate(x: Array, angle: Array | float, fill: float = 0.0) -> Array:
    """Rotate every image of ``x`` by ``angle`` degrees counter-clockwise about its centre.

    Parameters
    ----------
    x : ndarray of shape (N, H, W) or (N, C, H, W), float32 or float64
    angle : float or ndarray of shape (N,)
        Degrees, positive = counter-clockwise as displayed (torchvision's convention).
    fill : float
        Value of the pixels that come from outside the image.

    Output pixel (i, j) takes, by bilinear interpolation, the input at
    (ys, xs) = (cy + sin*(j-cx) + cos*(i-cy), cx + cos*(j-cx) - sin*(i-cy)), with
    (cy, cx) = ((H-1)/2, (W-1)/2); neighbours outside the image count as ``fill`` (zero padding
    for fill=0, as torch's grid_sample with padding_mode="zeros", align_corners=False).
    """
    x4, shape = _image_batch(x)
    angles = _per_sample(angle, x4.shape[0], "angle", np.float64)
    if not np.all(np.isfinite(angles)):
        raise ValueError("angle: expected finite angles, got NaN or inf")
    fill = check_float(fill, "fill")
    c, s = rotation_cos_sin(angles)
    out = np.empty_like(x4)
    _augment.rotate_bilinear(out, x4, c, s, fill)
    return out.reshape(shape)


def crop(x: Array, top: Array | int, left: Array | int, size: int | Sequence[int], padding: int = 0,
         fill: float = 0.0) -> Array:
    """Crop ``size`` = (h, w) windows at (top[n], left[n]) of the images padded by ``padding``.

    out[n, ..., i, j] = xp[n, ..., top[n] + i, left[n] + j] where xp is x padded with ``fill``
    by ``padding`` pixels on every side; needs 0 <= top <= H + 2p - h and 0 <= left <= W + 2p - w.
    """
    x4, shape = _image_batch(x)
    N, C, H, W = x4.shape
    h, w = _size2(size, "size")
    padding = check_int(padding, "padding", low=0)
    fill = check_float(fill, "fill")
    if h > H + 2 * padding or w > W + 2 * padding:
        raise ValueError(f"size: crop ({h}, {w}) is larger than the padded image "
                         f"({H + 2 * padding}, {W + 2 * padding})")
    top = _per_sample(top, N, "top", np.intp)
    left = _per_sample(left, N, "left", np.intp)
    if np.any((top < 0) | (top > H + 2 * padding - h)) or np.any((left < 0) | (left > W + 2 * padding - w)):
        raise ValueError(f"top, left: expected 0 <= top <= {H + 2 * padding - h} and "
                         f"0 <= left <= {W + 2 * padding - w}")
    out = np.empty((N, C, h, w), dtype=x4.dtype)
    _augment.crop_pad(out, x4, top, left, padding, fill)
    return out.reshape(shape[:-2] + (h, w))


def cutout_boxes(centers_y: Array, centers_x: Array, size: int, H: int, W: int) -> list[Array]:
    """Rows [y1, y2) and columns [x1, x2) of ``size`` x ``size`` squares centred at the given
    pixels (top-left at centre - size//2), clipped to the H x W image."""
    cy = np.asarray(centers_y, dtype=np.intp)
    cx = np.asarray(centers_x, dtype=np.intp)
    y1 = np.clip(cy - size // 2, 0, H)
    x1 = np.clip(cx - size // 2, 0, W)
    y2 = np.clip(cy - size // 2 + size, 0, H)
    x2 = np.clip(cx - size // 2 + size, 0, W)
    return [np.ascontiguousarray(a, dtype=np.intp) for a in (y1, y2, x1, x2)]


def cutout(x: Array, centers_y: Array | int, centers_x: Array | int, size: int, fill: float = 0.0) -> Array:
    """Set a ``size`` x ``size`` square centred at (centers_y[n], centers_x[n]), clipped at the
    borders, to ``fill`` in every channel of image n (DeVries & Taylor 2017)."""
    x4, shape = _image_batch(x)
    N, _, H, W = x4.shape
    size = min(check_int(size, "size", low=1), 2 ** 60)  # same boxes for |centre| < 2**59; no int64 overflow
    fill = check_float(fill, "fill")
    y1, y2, x1, x2 = cutout_boxes(_per_sample(centers_y, N, "centers_y", np.intp),
                                  _per_sample(centers_x, N, "centers_x", np.intp), size, H, W)
    out = x4.copy()
    _augment.fill_boxes(out, y1, y2, x1, x2, fill)
    return out.reshape(shape)


# ---------------------------------------------------------------- random transforms

class Transform:
    """Base of the transforms: ``t(x, y=None)`` applies ``self.apply(x)`` and passes y through."""

    def __init__(self, seed: SeedLike = None) -> None:
        self._rng = make_rng(seed)

    @property
    def rng(self) -> np.random.Generator:
        return rng_or_global(self._rng)

    def apply(self, x: Array) -> Array:
        raise NotImplementedError

    def __call__(self, x: Array, y: Array | None = None) -> Any:
        """``apply(x)``, or ``(apply(x), y)`` when ``y`` is given."""
        out = self.apply(x)
        return out if y is None else (out, y)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose:
    """Apply transforms in order: ``Compose([t1, t2])(x, y) == t2(*t1(x, y))``."""

    def __init__(self, transforms: Iterable[Callable[..., Any]]) -> None:
        try:
            transforms = list(transforms)
        except TypeError:
            raise TypeError(f"transforms: expected a list of callables, got {type(transforms).__name__}") from None
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}]: expected a callable, got {type(t).__name__}")
        self.transforms = transforms

    def __call__(self, x: Array, y: Array | None = None) -> Any:
        for t in self.transforms:
            if y is None:
                x = t(x)
            else:
                x, y = t(x, y)
        return x if y is None else (x, y)

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class RandomRotation(Transform):
    """Rotate each image by an angle drawn uniformly from [-degrees, degrees] (or from
    ``degrees=(lo, hi)``), counter-clockwise for positive angles; bilinear interpolation about
    the image centre, pixels from outside the image set to ``fill``. See :func:`rotate`."""

    def __init__(self, degrees: float | tuple[float, float], fill: float = 0.0, seed: SeedLike = None) -> None:
        super().__init__(seed)
        if isinstance(degrees, (tuple, list)):
            if len(degrees) != 2:
                raise ValueError(f"degrees: expected a number or a pair (lo, hi), got {degrees!r}")
            lo, hi = (check_float(d, "degrees") for d in degrees)
            if lo > hi:
                raise ValueError(f"degrees: expected lo <= hi, got ({lo}, {hi})")
        else:
            hi = check_float(degrees, "degrees", low=0.0)
            lo = -hi
        self.degrees = (lo, hi)
        self.fill = check_float(fill, "fill")

    def apply(self, x: Array) -> Array:
        n = _image_batch(x)[0].shape[0]
        angles = self.rng.uniform(self.degrees[0], self.degrees[1], size=n)
        return rotate(x, angles, self.fill)


class _RandomFlip(Transform):
    axis: int | None = None        # the image axis a subclass mirrors

    def __init__(self, p: float = 0.5, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.p = check_float(p, "p", low=0.0, high=1.0)

    def apply(self, x: Array) -> Array:
        _image_batch(x)
        flip = self.rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = np.flip(x[flip], axis=self.axis)
        return out


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right (reverse the W axis) with probability ``p``."""
    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image upside-down (reverse the H axis) with probability ``p``."""
    axis = -2


class RandomCrop(Transform):
    """Pad each image with ``padding`` pixels of ``fill`` on every side, then crop a random
    ``size`` window (torchvision's RandomCrop(size, padding)): top uniform in
    {0..H+2p-h}, left uniform in {0..W+2p-w}. See :func:`crop`."""

    def __init__(self, size: int | Sequence[int], padding: int = 0, fill: float = 0.0, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.size = _size2(size, "size")
        self.padding = check_int(padding, "padding", low=0)
        self.fill = check_float(fill, "fill")

    def apply(self, x: Array) -> Array:
        x4, _ = _image_batch(x)
        N, _, H, W = x4.shape
        h, w = self.size
        p = self.padding
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"size: crop ({h}, {w}) is larger than the padded image ({H + 2 * p}, {W + 2 * p})")
        top = self.rng.integers(0, H + 2 * p - h + 1, size=N)
        left = self.rng.integers(0, W + 2 * p - w + 1, size=N)
        return crop(x, top, left, self.size, p, self.fill)


class GaussianNoise(Transform):
    """Add N(0, std^2) noise to every element (any float batch shape)."""

    def __init__(self, std: float, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.std = check_float(std, "std", low=0.0)

    def apply(self, x: Array) -> Array:
        _float_batch(x)
        return x + (self.std * self.rng.standard_normal(x.shape)).astype(x.dtype)


class Cutout(Transform):
    """Cutout (DeVries & Taylor 2017): per image, a ``size`` x ``size`` square whose centre is a
    uniformly random pixel is set to ``fill`` (0) in every channel; the square is clipped at the
    borders, so near an edge less than size^2 pixels are cut. With probability 1 - ``p`` an
    image is left as it is."""

    def __init__(self, size: int, p: float = 1.0, fill: float = 0.0, seed: SeedLike = None) -> None:
        super().__init__(seed)
        self.size = check_int(size, "size", low=1)
        self.p = check_float(p, "p", low=0.0, high=1.0)
        self.fill = check_float(fill, "fill")

    def apply(self, x: Array) -> Array:
        x4, shape = _image_batch(x)
        N, _, H, W = x4.shape
        cy = self.rng.integers(0, H, size=N)
        cx = self.rng.integers(0, W, size=N)
        keep = self.rng.random(N) >= self.p
        y1, y2, x1, x2 = cutout_boxes(cy, cx, self.size, H, W)
        y2[keep] = y1[keep]  # empty box
        out = x4.copy()
        _augment.fill_boxes(out, y1, y2, x1, x2, self.fill)
        return out.reshape(shape)


# ---------------------------------------------------------------- batch mixers

def soft_targets(y: Array | None, num_classes: int | None, n: int, dtype: Any, name: str = "y") -> Array:
    """Integer labels (n,) -> one-hot (n, num_classes); probabilities (n, C) pass (copied, cast)."""
    if y is None:
        raise TypeError(f"{name}: the batch mixers need targets, got None")
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} samples"
        raise ValueError(f"x and {name}: expected the same number of samples, got x with {n} and {name} with {got}")
    if y.ndim == 1 and y.dtype.kind in "iu":
        if num_classes is None:
            raise ValueError("num_classes: needed to one-hot encode integer labels, got None")
        bad = (y < 0) | (y >= num_classes)
        if np.any(bad):
            raise ValueError(f"{name}: labels must lie in [0, {num_classes}), got {y[bad][0]}")
        out = np.zeros((n, num_classes), dtype=dtype)
        out[np.arange(n), y] = 1
        return out
    if y.ndim == 2 and y.dtype.kind == "f":
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(f"{name}: expected soft targets of shape ({n}, {num_classes}), "
                             f"got shape {shape_str(y.shape)}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name}: soft targets contain NaN or inf")
        return y.astype(dtype, copy=True)
    raise TypeError(f"{name}: expected integer labels of shape ({n},) or float probabilities of "
                    f"shape ({n}, C), got dtype {y.dtype} and shape {shape_str(y.shape)}")


class _Mixer:
    def __init__(self, alpha: float, num_classes: int | None, seed: SeedLike) -> None:
        self.alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
        self.num_classes = check_int(num_classes, "num_classes", low=1, allow_none=True)
        self._rng = make_rng(seed)
        self.last_lam: float | None = None
        self.last_perm: Array | None = None

    @property
    def rng(self) -> np.random.Generator:
        return rng_or_global(self._rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes})"


class Mixup(_Mixer):
    """Mixup (Zhang et al. 2018). Per batch: lam ~ Beta(alpha, alpha), perm a random permutation,
        x' = lam * x + (1 - lam) * x[perm],   y' = lam * onehot(y) + (1 - lam) * onehot(y)[perm].

    ``x``: any float batch (N, ...). ``y``: int labels (N,) in [0, num_classes), or soft
    targets (N, C). Returns ``(x', y')`` with y' of shape (N, C) in x's dtype (rows sum to 1
    when y's rows do). ``last_lam`` and ``last_perm`` keep the last draw.
    """

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None, seed: SeedLike = None) -> None:
        super().__init__(alpha, num_classes, seed)

    def __call__(self, x: Array, y: Array | None = None) -> tuple[Array, Array]:
        _float_batch(x)
        n = x.shape[0]
        y1 = soft_targets(y, self.num_classes, n, x.dtype)
        rng = self.rng
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(n)
        self.last_lam, self.last_perm = lam, perm
        xm = (lam * x + (1.0 - lam) * x[perm]).astype(x.dtype, copy=False)
        ym = (lam * y1 + (1.0 - lam) * y1[perm]).astype(x.dtype, copy=False)
        return xm, ym


class CutMix(_Mixer):
    """CutMix (Yun et al. 2019). Per batch: lam ~ Beta(alpha, alpha), perm a random permutation,
    a box of cut_h x cut_w = int(H sqrt(1-lam)) x int(W sqrt(1-lam)) pixels centred at a
    uniformly random pixel (top-left at centre - cut//2), clipped at the borders, is pasted
    into every image n from image perm[n]; then lam is set to the exact kept fraction,
    lam = 1 - box_area / (H W), and y' = lam * onehot(y) + (1 - lam) * onehot(y)[perm].

    ``x``: image batch (N, H, W) or (N, C, H, W). ``y`` as in :class:`Mixup`. ``last_lam``,
    ``last_perm`` and ``last_box`` = (y1, y2, x1, x2) keep the last draw.
    """

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None, seed: SeedLike = None) -> None:
        super().__init__(alpha, num_classes, seed)
        self.last_box: tuple[int, int, int, int] | None = None

    def __call__(self, x: Array, y: Array | None = None) -> tuple[Array, Array]:
        x4, shape = _image_batch(x)
        n, _, H, W = x4.shape
        y1 = soft_targets(y, self.num_classes, n, x.dtype)
        rng = self.rng
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(n)
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(H * cut), int(W * cut)
        cy, cx = int(rng.integers(0, H)), int(rng.integers(0, W))
        top, lft = max(cy - cut_h // 2, 0), max(cx - cut_w // 2, 0)
        bot, rgt = min(cy - cut_h // 2 + cut_h, H), min(cx - cut_w // 2 + cut_w, W)
        bot, rgt = max(bot, top), max(rgt, lft)
        lam = 1.0 - (bot - top) * (rgt - lft) / (H * W)
        out = x4.copy()
        out[:, :, top:bot, lft:rgt] = x4[perm, :, top:bot, lft:rgt]
        self.last_lam, self.last_perm, self.last_box = lam, perm, (top, bot, lft, rgt)
        ym = (lam * y1 + (1.0 - lam) * y1[perm]).astype(x.dtype, copy=False)
        return out.reshape(shape), ym
