"""nn.BatchNorm1d on (N, C) or (N, C, L) and nn.BatchNorm2d on (N, C, H, W).

Kernels: csrc/ops/batchnorm.cpp for (N, C) (pydl.ops.batch_norm_*), csrc/ops/batchnorm2d.cpp for
inputs with spatial axes, on the NC* layout itself (pydl.ops.batch_norm2d_*).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from .._typing import Array, DTypeLike
from .._validate import check_float_dtype, check_input, check_int, check_real, shape_str
from .module import Module, _grad_enabled
from .parameter import Parameter

_KERNELS_NC = (ops.batch_norm_train, ops.batch_norm_eval, ops.batch_norm_backward)
_KERNELS_NCS = (ops.batch_norm2d_train, ops.batch_norm2d_eval, ops.batch_norm2d_backward)


class _BatchNorm(Module):
    """Batch normalization (Ioffe & Szegedy 2015) over the channel axis 1, PyTorch semantics.

    Training: per channel c, over the M = N * prod(spatial) values of the batch,
    y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the biased batch variance;
    running_mean/var <- (1 - momentum) running + momentum * batch stat, where the running
    variance takes the unbiased batch variance (var_B M / (M - 1)); num_batches_tracked += 1.
    ``momentum=None`` gives the cumulative average (factor 1 / num_batches_tracked).
    Eval: normalizes with the running statistics. ``weight`` (ones) and ``bias`` (zeros) exist
    when ``affine``; ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``
    (int64 0) buffers when ``track_running_stats`` (otherwise batch statistics always).

    Backward with batch statistics: dbias = sum dy, dweight = sum dy xhat,
    dx = weight invstd (dy - mean(dy) - xhat mean(dy xhat)); with running statistics dx = weight invstd dy.
    """

    weight: Parameter | None
    bias: Parameter | None
    running_mean: Array | None
    running_var: Array | None
    num_batches_tracked: Array | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "num_features", 1)
        self.eps = check_real(eps, "eps", 0.0, low_open=True)
        self.momentum = None if momentum is None else check_real(momentum, "momentum", 0.0, 1.0)
        dtype = check_float_dtype(dtype)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.dtype = dtype
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, dtype))
            self.bias = Parameter(np.zeros(C, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, dtype))
            self.register_buffer("running_var", np.ones(C, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        for buf, value in ((self.running_mean, 0), (self.running_var, 1), (self.num_batches_tracked, 0)):
            if buf is not None:
                buf.fill(value)

    def _kernels(self, x):
        """Check ``x`` (already an ndarray of the layer's dtype); return the (train, eval, backward) ops."""
        raise NotImplementedError

    def forward(self, x: Array) -> Array:
        check_input(x, self.dtype)
        train_op, eval_op, _ = self._kernels(x)
        x = np.ascontiguousarray(x)
        w = None if self.weight is None else self.weight.data      # (None unless affine)
        b = None if self.bias is None else self.bias.data
        running_mean, running_var, count = self.running_mean, self.running_var, self.num_batches_tracked
        use_batch = self.training or running_mean is None or running_var is None   # (not track_running_stats)
        if not self.training and running_mean is not None and running_var is not None:
            y = eval_op(x, w, b, running_mean, running_var, self.eps)
            if not _grad_enabled():
                return y
            mean = running_mean.copy()
            invstd = (1.0 / np.sqrt(running_var.astype(np.float64) + self.eps)).astype(x.dtype)
        else:
            if self.training and x.size < 2 * x.shape[1]:
                raise ValueError("input: expected more than 1 value per channel when training, got shape "
                                 f"{shape_str(x.shape)}")
            rm = rv = None
            factor = 0.0
            if self.training and count is not None:                   # (track_running_stats)
                count += 1
                factor = (1.0 / float(count) if self.momentum is None else self.momentum)
                rm, rv = running_mean, running_var
            y, mean, invstd = train_op(x, w, b, self.eps, rm, rv, factor)
        return self._save_for_backward(y, x, mean, invstd, use_batch)

    def backward(self, grad_out: Array) -> Array:
        return self._backward(grad_out, *self._saved_for_backward(grad_out))

    def _backward(self, grad_out: Array, x: Array, mean: Array, invstd: Array, use_batch: bool) -> Array:
        """The backward of a forward that saved ``(x, mean, invstd, use_batch)``."""
        backward_op = self._kernels(x)[2]
        w, b = self.weight, self.bias
        if w is None or b is None:                                      # (not affine)
            return backward_op(grad_out, x, mean, invstd, None, use_batch)[0]
        both = w._grad is not None and b._grad is not None
        gx, gw, gb = backward_op(grad_out, x, mean, invstd, w.data, use_batch,
                                 w._grad if both else None, b._grad if both else None)
        if not both:  # write, or add into the one that exists
            for p, g in ((w, gw), (b, gb)):
                if p._grad is None:
                    p._grad = g
                else:
                    p._grad += g
        return gx

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


def _check_channels(x, ndims, C, layer, layout):
    """``x`` has one of the ranks ``ndims`` and C channels on axis 1; ``layout`` names the axes, C as "{C}"."""
    if x.ndim not in ndims or x.shape[1] != C:
        raise ValueError(f"input: expected shape {layout.format(C=C)} for {layer}, got {shape_str(x.shape)}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) (statistics per channel over N, or N*L), as
    ``torch.nn.BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True)``; ``dtype`` float32 (default) or float64. See the math in
    :class:`_BatchNorm`."""

    def _kernels(self, x):
        _check_channels(x, (2, 3), self.num_features, f"BatchNorm1d({self.num_features})", "(N, {C}) or (N, {C}, L)")
        return _KERNELS_NC if x.ndim == 2 else _KERNELS_NCS


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W), statistics per channel over the N*H*W values, as
    ``torch.nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)``;
    ``dtype`` float32 (default) or float64.

    Parameters ``weight`` (C,) ones and ``bias`` (C,) zeros when ``affine``; buffers
    ``running_mean`` (C,), ``running_var`` (C,), ``num_batches_tracked`` () when
    ``track_running_stats`` (state_dict keys as PyTorch). Math as :class:`BatchNorm1d` with
    M = N*H*W values per channel: the running variance takes var_B * M / (M - 1).
    """

    def _kernels(self, x):
        _check_channels(x, (4,), self.num_features, f"BatchNorm2d({self.num_features})", "(N, {C}, H, W)")
        return _KERNELS_NCS
