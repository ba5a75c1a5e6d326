"""pydl.optim: optimizers with PyTorch's semantics, each step one multi-tensor C++ call per
parameter group (pydl._C.<name>_step), and learning-rate schedulers (pydl.optim.lr_scheduler)."""
from .optimizer import Optimizer
from .sgd import SGD
from .adagrad import Adagrad
from .adadelta import Adadelta
from .rmsprop import RMSprop
from .adam import Adam, AdamW
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "lr_scheduler"]
