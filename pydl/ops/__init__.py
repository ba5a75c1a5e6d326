"""Kernels as functions: numpy in, numpy out (float32 and float64).

``pydl.ops`` is the one Python front end of the compiled kernels (``pydl._C``): the nn layers,
losses and the trainer call these functions, never ``_C`` directly. The user-facing functions
(matmul, the activations, softmax) validate their inputs in Python and accept any float array;
the layer kernels (linear, batch_norm_*, dropout, *_backward, softmax_cross_entropy) take the
arrays a layer hands them and leave the array checks (dtype, rank, shape, aliasing) to the
compiled argument layer, whose errors name the argument.
"""
from .matmul import matmul
from .activation import (ACTIVATIONS, activation_backward, activation_forward, derivative_from_output, gelu,
                         leaky_relu, relu, sigmoid, tanh)
from .softmax import log_softmax, softmax, softmax_backward, softmax_cross_entropy
from .linear import linear, linear_backward, linear_chain, linear_chain_backward
from .batchnorm import batch_norm_backward, batch_norm_eval, batch_norm_train
from .batchnorm2d import batch_norm2d_backward, batch_norm2d_eval, batch_norm2d_train
from .dropout import dropout, dropout_backward
from .conv import conv1d, conv1d_backward, conv2d, conv2d_backward
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool1d_backward, adaptive_avg_pool2d,
                      adaptive_avg_pool2d_backward, avg_pool1d, avg_pool1d_backward, avg_pool2d, avg_pool2d_backward,
                      max_pool1d, max_pool1d_backward, max_pool2d, max_pool2d_backward)

__all__ = [
    "matmul", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    "ACTIVATIONS", "activation_forward", "activation_backward", "derivative_from_output",
    "softmax_backward", "softmax_cross_entropy", "linear", "linear_backward", "linear_chain", "linear_chain_backward",
    "batch_norm_train", "batch_norm_eval", "batch_norm_backward", "dropout", "dropout_backward",
    "batch_norm2d_train", "batch_norm2d_eval", "batch_norm2d_backward",
    "conv1d", "conv2d", "conv1d_backward", "conv2d_backward",
    "max_pool1d", "max_pool2d", "max_pool1d_backward", "max_pool2d_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool1d_backward", "avg_pool2d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool1d_backward", "adaptive_avg_pool2d_backward",
]
