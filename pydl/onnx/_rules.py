"""One export rule per pydl.nn layer type, found through the ``RULES`` table (the converter
layout of onnx/sklearn-onnx).

A leaf rule ``rule(g, m, x, xv, yv, p)`` appends the nodes computing ``m``'s eval-mode output from
the value named ``x`` (example input ``xv``, example output ``yv``) and returns the output's name;
``p`` is the module's path, which names its initializers as its ``state_dict`` keys do. A container
rule ``rule(g, m, x, xv, p)`` converts its children through ``g.convert`` and returns
``(name, example)``. Layers are looked up along the class's MRO, so a subclass that keeps its
base's passes exports with its base's rule.
"""
import math

import numpy as np

from .. import nn
from .._validate import flatten_dims, shape_str

RULES: dict = {}  # layer class -> (rule, is_container)


def rule(*classes, container=False):
    def register(fn):
        for cls in classes:
            RULES[cls] = (fn, container)
        return fn

    return register


def _join(path, name):
    return f"{path}.{name}" if path else name


def _need_batch(xv, m, op):
    """ONNX Conv and pools take (N, C, *spatial): pydl's unbatched (C, *spatial) form has no ONNX op."""
    if xv.ndim != m._nd + 2:
        raise ValueError(f"example_input: ONNX {op} needs a batch axis; {type(m).__name__} got an unbatched input "
                         f"of shape {shape_str(xv.shape)} (export with a batch, e.g. shape {shape_str((1,) + xv.shape)})")


# ----------------------------------------------------------------- containers
@rule(nn.Sequential, container=True)
def _sequential(g, m, x, xv, p):
    """The children in order (a fused Linear/Conv + activation step computes what the two modules do)."""
    for name, child in m.named_children():
        x, xv = g.convert(child, x, xv, _join(p, name))
    return x, xv


@rule(nn.Residual, container=True)
def _residual(g, m, x, xv, p):
    """y = module(x) + (x or shortcut(x))."""
    y, yv = g.convert(m.module, x, xv, _join(p, "module"))
    s, sv = (x, xv) if m.shortcut is None else g.convert(m.shortcut, x, xv, _join(p, "shortcut"))
    return g.node("Add", [s, y], p), sv + yv


# ----------------------------------------------------------------- elementwise
@rule(nn.Identity, nn.Dropout, nn.GaussianNoise)
def _identity(g, m, x, xv, yv, p):
    """Identity, and Dropout / GaussianNoise, which are the identity in eval mode."""
    return x


_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def activation(g, name, slope, x, p):
    """The nodes of pydl's kernel activation ``name`` (pydl.ops.ACTIVATIONS) on ``x``.

    GELU has no ONNX op before opset 20, so it is written out:
    exact   0.5 x (1 + erf(x / sqrt(2)));
    "tanh"  0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))   (Hendrycks & Gimpel 2016).
    """
    if name == "none":
        return x
    if name in _SIMPLE:
        return g.node(_SIMPLE[name], [x], p)
    if name == "leaky_relu":
        return g.node("LeakyRelu", [x], p, alpha=float(slope))
    if name == "gelu":
        inner = g.node_f32("Erf", [g.node("Mul", [x, g.scalar(1.0 / math.sqrt(2.0))], p)], p)
    elif name == "gelu_tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x], p), x], p)
        z = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715)], p)], p)
        inner = g.node("Tanh", [g.node("Mul", [z, g.scalar(math.sqrt(2.0 / math.pi))], p)], p)
    else:
        raise TypeError(f"pydl.onnx.export: no export rule for the activation {name!r} at '{p}'")
    half_x = g.node("Mul", [x, g.scalar(0.5)], p)
    return g.node("Mul", [half_x, g.node("Add", [inner, g.scalar(1.0)], p)], p)


@rule(nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.GELU)
def _activation(g, m, x, xv, yv, p):
    return activation(g, m.activation, m.negative_slope, x, p)


@rule(nn.Softmax)
def _softmax(g, m, x, xv, yv, p):
    return g.node("Softmax", [x], p, axis=-1)


# ----------------------------------------------------------------- layers with weights
@rule(nn.Linear)
def _linear(g, m, x, xv, yv, p):
    """y = act(x W^T + b): MatMul with W^T (any rank of x, as pydl), Add, then the fused activation."""
    y = g.node("MatMul", [x, g.const(_join(p, "weight.T"), m.weight.data.T)], p)
    if m.bias is not None:
        y = g.node("Add", [y, g.const(_join(p, "bias"), m.bias.data)], p)
    return activation(g, m.activation or "none", m.negative_slope, y, p)


@rule(nn.BatchNorm1d, nn.BatchNorm2d)
def _batchnorm(g, m, x, xv, yv, p):
    """Eval mode: BatchNormalization with the running statistics; with track_running_stats=False
    the batch's own (biased) statistics, as pydl and PyTorch do in eval mode."""
    C, dt = m.num_features, xv.dtype
    w = m.weight.data if m.affine else np.ones(C, dt)
    b = m.bias.data if m.affine else np.zeros(C, dt)
    if m.track_running_stats:
        inputs = [x] + [g.const(_join(p, k), v) for k, v in (("weight", w), ("bias", b), ("running_mean",
                                                              m.running_mean), ("running_var", m.running_var))]
        return g.node("BatchNormalization", inputs, p, epsilon=float(m.eps))
    axes = [0] + list(range(2, xv.ndim))
    per_channel = (C,) + (1,) * (xv.ndim - 2)
    d = g.node("Sub", [x, g.reduce_mean(x, axes, p)], p)
    var = g.reduce_mean(g.node("Mul", [d, d], p), axes, p)
    xhat = g.node("Div", [d, g.node("Sqrt", [g.node("Add", [var, g.scalar(m.eps)], p)], p)], p)
    y = g.node("Mul", [xhat, g.const(_join(p, "weight"), w.reshape(per_channel))], p)
    return g.node("Add", [y, g.const(_join(p, "bias"), b.reshape(per_channel))], p)


@rule(nn.Conv1d, nn.Conv2d)
def _conv(g, m, x, xv, yv, p):
    """Conv; the padding (int, pair, "valid" or "same") as explicit begin/end pads, the odd one of
    "same" at the end (PyTorch)."""
    _need_batch(xv, m, "Conv")
    begin = [t // 2 for t in m._pad_total]
    pads = begin + [t - b for t, b in zip(m._pad_total, begin)]
    inputs = [x, g.const(_join(p, "weight"), m.weight.data)]
    if m.bias is not None:
        inputs.append(g.const(_join(p, "bias"), m.bias.data))
    return g.node_f32("Conv", inputs, p, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                      dilations=list(m.dilation), group=m.groups, pads=pads)


# ----------------------------------------------------------------- pooling and reshaping
def _window(m):
    return {"kernel_shape": list(m._k), "strides": list(m._s), "pads": list(m._p) * 2}


@rule(nn.MaxPool1d, nn.MaxPool2d)
def _max_pool(g, m, x, xv, yv, p):
    _need_batch(xv, m, "MaxPool")
    return g.node("MaxPool", [x], p, **_window(m))


@rule(nn.AvgPool1d, nn.AvgPool2d)
def _avg_pool(g, m, x, xv, yv, p):
    """AveragePool with count_include_pad=1: pydl divides every window by prod(kernel_size)."""
    _need_batch(xv, m, "AveragePool")
    return g.node_f32("AveragePool", [x], p, count_include_pad=1, **_window(m))


def bin_matrix(n_in, n_out, dtype):
    """(n_in, n_out) matrix averaging PyTorch's adaptive bins: column i is 1 / len on rows
    [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    P = np.zeros((n_in, n_out))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        P[lo:hi, i] = 1.0 / (hi - lo)
    return P.astype(dtype)


@rule(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool(g, m, x, xv, yv, p):
    """Adaptive average pooling is linear and separable: y = x @ P_W along the last axis and
    P_H^T @ y along rows, with the bin matrices of :func:`bin_matrix` (any sizes, no cast for
    float64; an axis whose size is kept is skipped)."""
    y = x
    for axis in range(1, m._nd + 1):  # last axis, then (2-D) the row axis
        n_in, n_out = xv.shape[-axis], yv.shape[-axis]
        if n_in == n_out:
            continue
        P = bin_matrix(n_in, n_out, xv.dtype)
        if axis == 1:
            y = g.node("MatMul", [y, g.const(f"adaptive_bins_{n_in}_{n_out}", P)], p)
        else:
            y = g.node("MatMul", [g.const(f"adaptive_bins_{n_in}_{n_out}.T", P.T), y], p)
    return y


@rule(nn.Flatten)
def _flatten(g, m, x, xv, yv, p):
    """Reshape to the example output's shape, axis 0 copied from the input (0) when the batch is
    dynamic, or inferred (-1) when the batch axis is flattened with others."""
    shape = list(yv.shape)
    if g.dynamic_batch and g.batch_axis:
        merged = flatten_dims(xv.shape, m.start_dim, m.end_dim)[0] == 0
        shape[0] = -1 if merged else 0
        g.batch_axis = not merged
    name = "shape_" + "_".join(str(d) for d in shape)
    return g.node("Reshape", [x, g.const(name, np.array(shape, np.int64))], p)
