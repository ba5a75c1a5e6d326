"""pydl.nn: modules with explicit backward, losses, initializers."""
from . import init, utils
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv1d, Conv2d
from .container import ModuleDict, ModuleList, Residual, Sequential
from .dropout import Dropout, GaussianNoise
from .linear import Flatten, Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, RemovableHandle, StateDictError
from .parameter import Parameter
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
                      MaxPool2d)
from .summary import summary

__all__ = [
    "Parameter", "Module", "StateDictError", "RemovableHandle", "Linear", "Identity", "Flatten", "ReLU",
    "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout", "GaussianNoise", "BatchNorm1d", "BatchNorm2d",
    "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "Sequential",
    "Residual", "ModuleList", "ModuleDict", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
    "BCEWithLogitsLoss", "init", "summary", "utils",
]
