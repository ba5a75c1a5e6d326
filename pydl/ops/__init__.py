"""Kernels as functions: numpy in, numpy out (float32 and float64), inputs validated."""
from .matmul import matmul
from .activation import gelu, leaky_relu, relu, sigmoid, tanh
from .softmax import log_softmax, softmax

__all__ = ["matmul", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]
