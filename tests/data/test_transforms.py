import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pydl
from pydl.data import DataLoader, transforms as T
from pydl.data import _reference as R
from pydl.testing import assert_close

DTYPES = [np.float32, np.float64]


def _batch(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ rotation

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 6, 6), (2, 3, 5, 5), (1, 1, 1, 1)])
def test_rotate_multiples_of_90_equal_rot90(dtype, shape):
    x = _batch(shape, dtype)
    for k in (-1, 1, 2, 3, 4, 5):
        # positive angle = counter-clockwise, as np.rot90 (and torchvision)
        np.testing.assert_array_equal(T.rotate(x, 90 * k), np.rot90(x, k, axes=(-2, -1)))
    np.testing.assert_array_equal(T.rotate(x, 0), x)


def test_rotate_180_on_rectangles_and_zero_identity():
    x = _batch((2, 3, 4, 7))
    np.testing.assert_array_equal(T.rotate(x, 180.0), x[..., ::-1, ::-1])
    np.testing.assert_array_equal(T.rotate(x, -180.0), x[..., ::-1, ::-1])
    np.testing.assert_array_equal(T.rotate(x, 0.0), x)


def test_rotate_counter_clockwise_on_a_picture():
    x = np.zeros((1, 5, 5))
    x[0, 2, 4] = 1.0  # a dot right of the centre
    out = T.rotate(x, 90.0)
    assert out[0, 0, 2] == 1.0 and out.sum() == 1.0  # counter-clockwise: it moves to the top


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       seed=st.integers(0, 2**31 - 1), fill=st.sampled_from([0.0, 0.5]))
def test_rotate_random_angles_against_numpy_reference(dtype, n, c, h, w, seed, fill):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    angles = rng.uniform(-360, 360, n)
    ref = R.rotate_bilinear(x.astype(np.float64), np.cos(np.deg2rad(angles)),
                            np.sin(np.deg2rad(angles)), fill)
    assert_close(T.rotate(x, angles, fill=fill), ref, dtype=dtype, atol=1e-6 if dtype == np.float32 else 1e-12)


def test_rotate_against_torch_grid_sample():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    N, C, H, W = 6, 2, 7, 10
    x = rng.standard_normal((N, C, H, W))
    a = rng.uniform(-180, 180, N)
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    # the same map in grid_sample's normalised coordinates (align_corners=False)
    theta = np.zeros((N, 2, 3))
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = c, -s * H / W, s * W / H, c
    grid = F.affine_grid(torch.tensor(theta), (N, C, H, W), align_corners=False)
    ref = F.grid_sample(torch.tensor(x), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False).numpy()
    assert_close(T.rotate(x, a), ref, atol=1e-12)


def test_random_rotation_range_and_seed():
    x = _batch((16, 9, 9))
    t1, t2 = T.RandomRotation(30, seed=4), T.RandomRotation(30, seed=4)
    first = t1(x)
    np.testing.assert_array_equal(first, t2(x))
    assert not np.array_equal(first, t1(x))  # the next call draws new angles
    angles = np.random.default_rng(4).uniform(-30, 30, 16)
    np.testing.assert_array_equal(T.RandomRotation(30, seed=4)(x), T.rotate(x, angles))
    angles = np.random.default_rng(4).uniform(10, 20, 16)
    np.testing.assert_array_equal(T.RandomRotation((10, 20), seed=4)(x), T.rotate(x, angles))
    pydl.manual_seed(3)
    a = T.RandomRotation(45)(x)
    pydl.manual_seed(3)
    np.testing.assert_array_equal(a, T.RandomRotation(45)(x))


# ------------------------------------------------------------------ flips

@pytest.mark.parametrize("cls, axis", [(T.RandomHorizontalFlip, -1), (T.RandomVerticalFlip, -2)])
def test_flips(cls, axis):
    x = _batch((20, 2, 4, 5))
    np.testing.assert_array_equal(cls(p=1.0)(x), np.flip(x, axis))
    np.testing.assert_array_equal(cls(p=0.0)(x), x)
    out = cls(p=0.5, seed=0)(x)
    flipped = np.random.default_rng(0).random(20) < 0.5
    np.testing.assert_array_equal(out[flipped], np.flip(x[flipped], axis))
    np.testing.assert_array_equal(out[~flipped], x[~flipped])
    assert 0 < flipped.sum() < 20
    y = np.arange(20)
    xo, yo = cls(p=1.0)(x, y)
    assert yo is y


# ------------------------------------------------------------------ crop

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 8), w=st.integers(1, 8), pad=st.integers(0, 4), seed=st.integers(0, 1000))
def test_crop_against_reference(dtype, h, w, pad, seed):
    rng = np.random.default_rng(seed)
    H, W = int(rng.integers(max(1, h - 2 * pad), 10)), int(rng.integers(max(1, w - 2 * pad), 10))
    x = rng.standard_normal((3, 2, H, W)).astype(dtype)
    top = rng.integers(0, H + 2 * pad - h + 1, 3)
    left = rng.integers(0, W + 2 * pad - w + 1, 3)
    out = T.crop(x, top, left, (h, w), pad, fill=0.25)
    assert out.shape == (3, 2, h, w) and out.dtype == dtype
    np.testing.assert_array_equal(out, R.crop_pad(x, top, left, (h, w), pad, fill=0.25))


def test_crop_content_by_hand():
    x = np.arange(16.0).reshape(1, 4, 4)
    # padded by 1: the window at (0, 0) has the zero border on top and left
    out = T.crop(x, 0, 0, 3, padding=1)
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [0, 0, 1], [0, 4, 5]])
    out = T.crop(x, 2, 3, (3, 3), padding=1)
    np.testing.assert_array_equal(out[0], [[6, 7, 0], [10, 11, 0], [14, 15, 0]])
    np.testing.assert_array_equal(T.crop(x, 1, 1, 4, padding=1), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_crop_padding_wider_than_the_window(dtype):
    # windows lying wholly in the padding, beside rows inside the image
    x = _batch((1, 1, 3, 3), dtype) + 5
    pad, H, W = 4, 3, 3
    for h, w in [(1, 1), (2, 1), (1, 3), (5, 2)]:
        for top in range(H + 2 * pad - h + 1):
            for left in range(W + 2 * pad - w + 1):
                out = T.crop(x, top, left, (h, w), pad)
                np.testing.assert_array_equal(out, R.crop_pad(x, [top], [left], (h, w), pad))


def test_random_crop_shape_and_torchvision_semantics():
    x = _batch((50, 3, 8, 8))
    t = T.RandomCrop(8, padding=2, seed=0)
    out = t(x)
    assert out.shape == x.shape
    rng = np.random.default_rng(0)
    top, left = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
    np.testing.assert_array_equal(out, R.crop_pad(x, top, left, (8, 8), 2))
    assert T.RandomCrop((5, 6))(x).shape == (50, 3, 5, 6)
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(13, padding=2)(x)


# ------------------------------------------------------------------ cutout

@pytest.mark.parametrize("dtype", DTYPES)
def test_cutout_zeroes_exactly_a_clipped_square(dtype):
    x = _batch((6, 2, 7, 9), dtype) + 10.0  # no zeros anywhere
    cy = np.array([3, 0, 6, 2, 5, 1])
    cx = np.array([4, 0, 8, 1, 7, 3])
    size = 4
    out = T.cutout(x, cy, cx, size)
    for n in range(6):
        y1, x1 = max(cy[n] - 2, 0), max(cx[n] - 2, 0)
        y2, x2 = min(cy[n] + 2, 7), min(cx[n] + 2, 9)
        mask = np.zeros((7, 9), bool)
        mask[y1:y2, x1:x2] = True
        assert np.all(out[n][:, mask] == 0)
        np.testing.assert_array_equal(out[n][:, ~mask], x[n][:, ~mask])
    assert (out[0] == 0).sum() == 2 * 16  # inside: a full square per channel
    assert (out[1] == 0).sum() == 2 * 4   # corner: clipped to 2 x 2
    np.testing.assert_array_equal(out, R.fill_boxes(x, *T.cutout_boxes(cy, cx, size, 7, 9)))


def test_cutout_odd_size_centred_and_random():
    x = np.ones((1, 5, 5))
    np.testing.assert_array_equal(T.cutout(x, 2, 2, 3)[0, 1:4, 1:4], np.zeros((3, 3)))
    assert T.cutout(x, 2, 2, 3).sum() == 25 - 9
    x = _batch((40, 8, 8)) + 10
    out = T.Cutout(3, seed=1)(x)
    cut = (out == 0).sum(axis=(1, 2))
    assert np.all((cut >= 4) & (cut <= 9))  # a 3x3 square, clipped at most to 2x2
    np.testing.assert_array_equal(T.Cutout(3, p=0.0)(x), x)


# ------------------------------------------------------------------ noise, compose

def test_gaussian_noise():
    x = np.zeros((200, 50), np.float32)
    out = T.GaussianNoise(0.5, seed=0)(x)
    assert out.dtype == np.float32
    assert abs(out.std() - 0.5) < 0.01 and abs(out.mean()) < 0.01
    np.testing.assert_array_equal(out, (0.5 * np.random.default_rng(0).standard_normal(x.shape)).astype(np.float32))
    np.testing.assert_array_equal(T.GaussianNoise(0.0)(x), x)


def test_compose_and_loader_protocol():
    x = _batch((10, 1, 6, 6))
    y = np.arange(10)
    t = T.Compose([T.RandomHorizontalFlip(p=1.0), T.RandomVerticalFlip(p=1.0)])
    xo, yo = t(x, y)
    np.testing.assert_array_equal(xo, x[..., ::-1, ::-1])
    np.testing.assert_array_equal(yo, y)
    np.testing.assert_array_equal(t(x), x[..., ::-1, ::-1])
    mix = T.Compose([T.RandomRotation(10, seed=0), T.Mixup(0.4, num_classes=10, seed=0)])
    batches = list(DataLoader(x, y, batch_size=4, transform=mix))
    assert [b[1].shape for b in batches] == [(4, 10), (4, 10), (2, 10)]
    before = x.copy()
    list(DataLoader(x, y, batch_size=4, transform=T.Compose([T.Cutout(3), T.RandomCrop(6, 1)])))
    np.testing.assert_array_equal(x, before)  # transforms never write into the dataset


# ------------------------------------------------------------------ mixers

@pytest.mark.parametrize("dtype", DTYPES)
def test_mixup(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5)).astype(dtype)
    y = rng.integers(0, 4, 32)
    t = T.Mixup(0.4, num_classes=4, seed=3)
    xm, ym = t(x, y)
    lam, perm = t.last_lam, t.last_perm
    r = np.random.default_rng(3)
    assert lam == r.beta(0.4, 0.4)
    np.testing.assert_array_equal(perm, r.permutation(32))
    onehot = np.eye(4)[y]
    assert xm.dtype == dtype and ym.dtype == dtype and ym.shape == (32, 4)
    assert_close(xm, lam * x.astype(np.float64) + (1 - lam) * x[perm], dtype=dtype)
    assert_close(ym, lam * onehot + (1 - lam) * onehot[perm], dtype=dtype)
    assert_close(ym.sum(axis=1), np.ones(32), dtype=dtype)
    # soft targets pass through the same formula
    xm2, ym2 = T.Mixup(0.4, seed=3)(x, onehot.astype(dtype))
    assert_close(ym2, ym, dtype=dtype)


@pytest.mark.parametrize("shape", [(64, 10, 12), (64, 3, 8, 8)])
def test_cutmix_lam_matches_pasted_area(shape):
    n = shape[0]
    # constant images: image k is filled with k+1, so every pixel tells where it came from
    x = np.broadcast_to((np.arange(n) + 1.0).reshape((n,) + (1,) * (len(shape) - 1)), shape).copy()
    y = np.arange(n) % 7
    t = T.CutMix(1.0, num_classes=7, seed=5)
    for _ in range(5):
        xm, ym = t(x, y)
        H, W = shape[-2:]
        lam, perm = t.last_lam, t.last_perm
        for i in range(n):
            pasted = np.mean(xm[i] == perm[i] + 1) if perm[i] != i else 1 - lam
            assert pasted == pytest.approx(1 - lam, abs=1e-12)
        assert (1 - lam) * H * W == pytest.approx(round((1 - lam) * H * W), abs=1e-9)
        onehot = np.eye(7)[y]
        np.testing.assert_allclose(ym, lam * onehot + (1 - lam) * onehot[perm], atol=1e-12)
        np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-12)
        top, bot, lft, rgt = t.last_box
        mask = np.zeros((H, W), bool)
        mask[top:bot, lft:rgt] = True
        np.testing.assert_array_equal(xm[..., mask], x[perm][..., mask])
        np.testing.assert_array_equal(xm[..., ~mask], x[..., ~mask])


def test_mixers_reproducible_with_global_seed():
    x = _batch((8, 6, 6))
    y = np.arange(8) % 3
    for cls in (T.Mixup, T.CutMix):
        pydl.manual_seed(9)
        a = cls(1.0, 3)(x, y)
        pydl.manual_seed(9)
        b = cls(1.0, 3)(x, y)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


# ------------------------------------------------------------------ bad inputs

def test_bad_inputs():
    x = _batch((4, 5, 5))
    with pytest.raises(ValueError, match="labels must lie in"):
        T.Mixup(1.0, num_classes=3)(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="labels must lie in"):
        T.CutMix(1.0, num_classes=3)(x, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match="num_classes"):
        T.Mixup(1.0)(x, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="NaN"):
        T.Mixup(1.0)(x, np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="4 and y with 3"):
        T.Mixup(1.0, 3)(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="y"):
        T.Mixup(1.0, 3)(x)
    with pytest.raises(TypeError, match="float probabilities"):
        T.Mixup(1.0, 3)(x, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="alpha"):
        T.Mixup(0.0, 3)
    with pytest.raises(ValueError, match="alpha"):
        T.CutMix(float("nan"), 3)
    with pytest.raises(ValueError, match="finite"):
        T.RandomRotation(float("nan"))
    with pytest.raises(ValueError, match="finite angles"):
        T.rotate(x, np.nan)
    with pytest.raises(ValueError, match="degrees"):
        T.RandomRotation(-5)
    with pytest.raises(ValueError, match="lo <= hi"):
        T.RandomRotation((10, -10))
    with pytest.raises(ValueError, match="std"):
        T.GaussianNoise(-1)
    with pytest.raises(ValueError, match="p"):
        T.RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, C, H, W\)"):
        T.RandomRotation(10)(np.zeros((5, 5)))
    with pytest.raises(TypeError, match="float32 or float64"):
        T.RandomRotation(10)(np.zeros((2, 5, 5), np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        T.Cutout(2)([[1.0]])
    with pytest.raises(ValueError, match="size"):
        T.Cutout(0)
    with pytest.raises(ValueError, match="angle"):
        T.rotate(x, np.zeros(3))
    with pytest.raises(ValueError, match="top, left"):
        T.crop(x, 2, 0, 4)
    with pytest.raises(TypeError, match="transforms"):
        T.Compose([T.Cutout(2), 3])
