"""nn.BatchNorm1d on (N, C) (C++ kernels in csrc/ops/batchnorm.cpp)."""
import numpy as np

from .. import _C
from .._validate import shape_str
from .module import Module, check_grad, check_input, no_forward
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
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"num_features: expected a positive int, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"eps: expected a positive float, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a float in [0, 1] or None, got {momentum}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
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
        self._saved = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def forward(self, x):
        check_input(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"input: expected shape (N, {self.num_features}), got {shape_str(x.shape)}")
        x = np.ascontiguousarray(x)
        w = self.weight.data if self.affine else None
        b = self.bias.data if self.affine else None
        y = np.empty_like(x)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            if x.shape[0] < 2 and self.training:
                raise ValueError(f"input: expected more than 1 value per channel when training, got shape "
                                 f"{shape_str(x.shape)}")
            mean = np.empty(self.num_features, x.dtype)
            invstd = np.empty(self.num_features, x.dtype)
            rm = rv = None
            factor = 0.0
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                rm, rv = self.running_mean, self.running_var
            _C.batchnorm_forward_train(x, w, b, y, mean, invstd, rm, rv, self.eps, factor)
        else:
            _C.batchnorm_forward_eval(x, w, b, self.running_mean, self.running_var, y, self.eps)
            mean = self.running_mean.copy()
            invstd = (1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)).astype(x.dtype)
        self._saved = (x, mean, invstd, use_batch)
        return y

    def backward(self, grad_out):
        if self._saved is None:
            raise no_forward(self)
        x, mean, invstd, use_batch = self._saved
        check_grad(grad_out, x.shape, x.dtype)
        g = np.ascontiguousarray(grad_out)
        gx = np.empty_like(x)
        if self.affine:
            w, b = self.weight, self.bias
            acc = w._grad is not None and b._grad is not None
            gw = w._grad if acc else np.empty_like(w.data)
            gb = b._grad if acc else np.empty_like(b.data)
            _C.batchnorm_backward(g, x, mean, invstd, w.data, gx, gw, gb, use_batch, acc)
            if not acc:
                if w._grad is not None:
                    w._grad += gw
                else:
                    w._grad = gw
                if b._grad is not None:
                    b._grad += gb
                else:
                    b._grad = gb
        else:
            _C.batchnorm_backward(g, x, mean, invstd, None, gx, None, None, use_batch, False)
        return gx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
