"""SyncBatchNorm: batch normalization with statistics over the whole global batch (all ranks).

A BatchNorm layer in data-parallel training normalizes, by default, with the statistics of
its own rank's slice (PyTorch DDP's default, and pydl's). SyncBatchNorm, as
``torch.nn.SyncBatchNorm``, uses those of the global batch instead, so K ranks on slices of a
batch compute what one process computes on the whole batch.

Training forward, per channel c, rank r holding n_r values (N_r * prod(spatial)):
local mean m_r and M2_r = sum (x - m_r)^2 (two passes, float64); one Allgather of
(n_r, m_r, M2_r); every rank combines them in rank order (Chan, Golub and LeVeque 1979):

    M = sum_r n_r,  mean = sum_r n_r m_r / M,  var = (sum_r M2_r + n_r (m_r - mean)^2) / M,

then y = (x - mean) / sqrt(var + eps) * weight + bias; running statistics as BatchNorm with
the unbiased global variance var * M / (M - 1).

Backward (xhat = (x - mean) * invstd): one Allreduce of the per-channel sums
s1 = sum dy and s2 = sum dy * xhat over every rank's values, then

    dx = weight * invstd * (dy - s1 / M - xhat * s2 / M),

and the local sums of dy and dy * xhat go into bias.grad and weight.grad (DistributedOptimizer
averages them with the other gradients). Eval mode, or a single rank, is plain BatchNorm.
"""
import numpy as np

from .._validate import check_input, shape_str
from ..nn.batchnorm import _KERNELS_NC, _KERNELS_NCS, BatchNorm1d, BatchNorm2d, _BatchNorm
from ..nn.module import Module, _grad_enabled
from . import _comm


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, x):
    """(C,) as a shape broadcasting against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, ...) with the statistics of the global batch: every
    rank's slice of it (``torch.nn.SyncBatchNorm``; math in the module docstring).

    Same parameters, buffers and state_dict keys as BatchNorm1d / BatchNorm2d. Each training
    forward makes one Allgather and each backward one Allreduce, so every rank must run every
    forward and backward (as with any collective). :meth:`convert_sync_batchnorm` turns the
    BatchNorm layers of a model into SyncBatchNorm.
    """

    def _kernels(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"input: expected shape (N, {self.num_features}, ...) for "
                             f"SyncBatchNorm({self.num_features}), got {shape_str(x.shape)}")
        return _KERNELS_NC if x.ndim == 2 else _KERNELS_NCS

    @staticmethod
    def _synced():
        return _comm.is_initialized() and _comm.world_size() > 1

    def forward(self, x):
        if not (self.training and self._synced()):
            return super().forward(x)
        check_input(x, self.dtype)
        self._kernels(x)
        x = np.ascontiguousarray(x)
        axes = _axes(x)
        n = x.size // x.shape[1]
        local_mean = x.mean(axis=axes, dtype=np.float64)
        local_m2 = np.square(x - _per_channel(local_mean, x).astype(x.dtype), dtype=np.float64).sum(axis=axes)
        stats = _comm.allgather_object((n, local_mean, local_m2))
        total = sum(s[0] for s in stats)
        if total < 2:
            raise ValueError(f"input: expected more than 1 value per channel over the ranks when training, "
                             f"got {total}")
        mean = sum(s[0] * s[1] for s in stats) / total
        m2 = sum(s[2] + s[0] * np.square(s[1] - mean) for s in stats)
        var = m2 / total
        invstd = 1.0 / np.sqrt(var + self.eps)
        if self.track_running_stats:
            self.num_batches_tracked += 1
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - factor) * self.running_mean + factor * mean
            self.running_var[...] = (1 - factor) * self.running_var + factor * var * (total / (total - 1))
        mean_x, invstd_x = mean.astype(x.dtype), invstd.astype(x.dtype)
        y = (x - _per_channel(mean_x, x)) * _per_channel(invstd_x, x)
        if self.affine:
            y *= _per_channel(self.weight.data, x)
            y += _per_channel(self.bias.data, x)
        if not _grad_enabled():
            return y
        return self._save_for_backward(y, x, mean_x, invstd_x, total)

    def _backward(self, grad_out, x, mean, invstd, total):
        if type(total) is bool:                 # saved by BatchNorm's forward (eval, one rank)
            return super()._backward(grad_out, x, mean, invstd, total)
        dy = np.asarray(grad_out, dtype=x.dtype)
        axes = _axes(x)
        xhat = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
        sums = np.concatenate([dy.sum(axis=axes, dtype=np.float64),
                               (dy * xhat).sum(axis=axes, dtype=np.float64)])
        local = sums.copy()
        _comm.allreduce_sum_(sums)
        C = self.num_features
        s1 = (sums[:C] / total).astype(x.dtype)
        s2 = (sums[C:] / total).astype(x.dtype)
        scale = invstd if not self.affine else invstd * self.weight.data
        dx = (dy - _per_channel(s1, x) - xhat * _per_channel(s2, x)) * _per_channel(scale, x)
        if self.affine:
            for p, g in ((self.weight, local[C:]), (self.bias, local[:C])):
                g = g.astype(x.dtype)
                if p._grad is None:
                    p._grad = g
                else:
                    p._grad += g
        return dx

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every BatchNorm1d / BatchNorm2d of ``module`` (and ``module`` itself when it is
        one) by a SyncBatchNorm holding the same Parameter objects and buffers (so an optimizer
        built before still updates them), as ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``.
        Returns the module (the new layer when ``module`` is a BatchNorm)."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)) and not isinstance(module, cls):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, module.dtype)
            for name in ("weight", "bias"):
                if module._parameters.get(name) is not None:
                    setattr(new, name, module._parameters[name])
            for name, b in module._buffers.items():
                setattr(new, name, b)
            new.train(module.training)
            return new
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a pydl.nn.Module, got {type(module).__name__}")
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child)
                if converted is not child:
                    setattr(module, name, converted)
        return module


convert_sync_batchnorm = SyncBatchNorm.convert_sync_batchnorm
