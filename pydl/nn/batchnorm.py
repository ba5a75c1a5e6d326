"""nn.BatchNorm1d on (N, C) (C++ kernels in csrc/ops/batchnorm.cpp)."""
import numpy as np

from .. import ops
from .._validate import check_batch_stats, check_features, check_float_dtype, check_input, check_int, check_real
from .module import Module, _grad_enabled
from .parameter import Parameter


class BatchNorm1d(Module):
    """Batch normalization (Ioffe & Szegedy 2015) over (N, C), PyTorch semantics.

    Training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the biased batch
    variance; running_mean/var <- (1 - momentum) running + momentum * batch stat, where the
    running variance takes the unbiased batch variance (N / (N - 1)); num_batches_tracked += 1.
    ``momentum=None`` gives the cumulative average (factor 1 / num_batches_tracked).
    Eval: normalizes with the running statistics. ``weight`` (ones) and ``bias`` (zeros) exist
    when ``affine``; running stats when ``track_running_stats`` (otherwise batch stats always).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
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

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def forward(self, x):
        check_input(x, self.dtype)
        C = self.num_features
        if x.ndim != 2 or x.shape[1] != C:
            check_features(x, C, f"BatchNorm1d({C})", ndim=2)
        x = np.ascontiguousarray(x)
        w = self.weight.data if self.affine else None
        b = self.bias.data if self.affine else None
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            if self.training:
                check_batch_stats(x)
            rm = rv = None
            factor = 0.0
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                rm, rv = self.running_mean, self.running_var
            y, mean, invstd = ops.batch_norm_train(x, w, b, self.eps, rm, rv, factor)
        else:
            y = ops.batch_norm_eval(x, w, b, self.running_mean, self.running_var, self.eps)
            if not _grad_enabled():
                return y
            mean = self.running_mean.copy()
            invstd = (1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)).astype(x.dtype)
        return self._save_for_backward(y, x, mean, invstd, use_batch)

    def backward(self, grad_out):
        x, mean, invstd, use_batch = self._saved_for_backward(grad_out)
        if not self.affine:
            return ops.batch_norm_backward(grad_out, x, mean, invstd, None, use_batch)[0]
        w, b = self.weight, self.bias
        both = w._grad is not None and b._grad is not None
        gx, gw, gb = ops.batch_norm_backward(grad_out, x, mean, invstd, w.data, use_batch,
                                             w._grad if both else None, b._grad if both else None)
        if not both:  # write, or add into the one that exists
            for p, g in ((w, gw), (b, gb)):
                if p._grad is None:
                    p._grad = g
                else:
                    p._grad += g
        return gx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
