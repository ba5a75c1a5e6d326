"""ops.linear_chain / linear_chain_backward: bitwise the layer-by-layer ops.linear / linear_backward
they chain (docs/ARCHITECTURE.md §2), on every ISA; bad chains named."""
import numpy as np
import pytest

from pydl import ops

ACTS = [("relu", 0.0), ("leaky_relu", 0.2), ("sigmoid", 0.0), ("tanh", 0.0), ("none", 0.0)]


def chain(dtype, widths=(6, 9, 7, 4), seed=0, bias=(True, False, True)):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((o, i)).astype(dtype) for i, o in zip(widths[:-1], widths[1:])]
    bs = [rng.standard_normal(o).astype(dtype) if b else None for o, b in zip(widths[1:], bias)]
    return ws, bs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", [0, 4])
def test_chain_is_bitwise_the_layers_in_order(isa, dtype, last):
    ws, bs = chain(dtype)
    acts = [ACTS[1], ACTS[3], ACTS[last]]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6)).astype(dtype)
    ys = ops.linear_chain(x, ws, bs, [a for a, _ in acts], [s for _, s in acts])
    ref, h = [], x
    for w, b, (a, s) in zip(ws, bs, acts):
        h = ops.linear(h, w, b, a, s)
        ref.append(h)
    for y, r in zip(ys, ref):
        np.testing.assert_array_equal(y, r)

    g = rng.standard_normal(ys[-1].shape).astype(dtype)
    old = [rng.standard_normal(w.shape).astype(dtype) for w in ws]  # layer 1 accumulates into its gradient
    grads_w = [None, old[1].copy(), None]
    grads_b = [None, False, bs[2] * 0 + 1]
    gx, gws, gbs = ops.linear_chain_backward(g, x, ys, ws, [a for a, _ in acts], [s for _, s in acts], grads_w,
                                             [gb.copy() if isinstance(gb, np.ndarray) else gb for gb in grads_b])
    dy, ins = g, [x] + ref[:-1]
    for l in reversed(range(3)):
        a, s = acts[l]
        acc_w = old[1].copy() if l == 1 else None
        acc_b = (bs[2] * 0 + 1) if l == 2 else None
        dx, rw, rb = ops.linear_backward(dy, ins[l], ws[l], ref[l], a, s, bs[l] is not None, True, acc_w, acc_b)
        np.testing.assert_array_equal(gws[l], rw)
        if bs[l] is None:
            assert gbs[l] is None
        else:
            np.testing.assert_array_equal(gbs[l], rb)
        dy = dx
    np.testing.assert_array_equal(gx, dy)
    assert gws[1] is grads_w[1]  # accumulated in place, as linear_backward does


def test_last_output_may_be_omitted_when_its_activation_is_none():
    ws, bs = chain(np.float32)
    x = np.ones((3, 6), np.float32)
    ys = ops.linear_chain(x, ws, bs, ["relu", "relu", "none"], [0.0] * 3)
    g = np.ones((3, 4), np.float32)
    full = ops.linear_chain_backward(g, x, ys, ws, ["relu", "relu", "none"], [0.0] * 3, [None] * 3,
                                     [None, False, None], input_grad=False)
    short = ops.linear_chain_backward(g, x, ys[:-1] + [None], ws, ["relu", "relu", "none"], [0.0] * 3, [None] * 3,
                                      [None, False, None], input_grad=False)
    assert full[0] is None and short[0] is None
    for a, b in zip(full[1] + full[2], short[1] + short[2]):
        assert (a is None and b is None) or np.array_equal(a, b)
    with pytest.raises(TypeError, match=r"outs\[2\].*None"):
        ops.linear_chain_backward(g, x, ys[:-1] + [None], ws, ["relu", "relu", "tanh"], [0.0] * 3, [None] * 3,
                                  [None, False, None])


def test_bad_chains_are_named():
    ws, bs = chain(np.float32)
    x = np.ones((3, 6), np.float32)
    acts, slopes = ["relu"] * 3, [0.0] * 3
    with pytest.raises(ValueError, match=r"weights\[1\]: expected shape \(9,9\), got \(9,7\)"):
        ops.linear_chain(x, [ws[0], ws[1].T.copy(), ws[2]], bs, acts, slopes)
    with pytest.raises(TypeError, match=r"weights\[2\]: expected dtype float32"):
        ops.linear_chain(x, ws[:2] + [ws[2].astype(np.float64)], bs, acts, slopes)
    with pytest.raises(ValueError, match=r"input: expected shape \(3,6\)"):
        ops.linear_chain(np.ones((3, 5), np.float32), ws, bs, acts, slopes)
    with pytest.raises(ValueError, match=r"activations\[1\]: its derivative"):
        ops.linear_chain(x, ws, bs, ["relu", "gelu", "relu"], slopes)
    with pytest.raises(ValueError, match=r"activations, negative_slopes: expected one per layer"):
        ops.linear_chain(x, ws, bs, acts[:2], slopes)
    with pytest.raises(ValueError, match=r"must not share memory"):  # one parameter in two layers
        ops.linear_chain(np.ones((3, 4), np.float32), [ws[2][:, :4].copy()] * 2, [None, None], acts[:2], slopes[:2])
