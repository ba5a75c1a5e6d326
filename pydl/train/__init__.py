"""pydl.train: a Keras-like training loop over pydl modules.

``Trainer(model, loss_fn, optimizer, metrics=None, callbacks=())`` with ``fit``,
``evaluate`` and ``predict``; ``TrainStep`` (one training step, fused into one C++ call for plain
MLPs: what ``fit`` runs per batch); ``History``; ``callbacks`` (EarlyStopping, ModelCheckpoint,
LearningRateScheduler, TerminateOnNaN, CSVLogger, BackupAndRestore); ``load_checkpoint`` (a
ModelCheckpoint file back into a model and optimizer); ``SavedModel`` / ``load_model`` (the
self-describing model file of ``python -m pydl train``: architecture, standardization, class
names; ``.predict(x)`` on raw features); ``metrics``; ``regularizers`` (L1, L2);
``build_mlp`` and ``build_cnn`` (the networks of the command line and the examples).
"""
from . import callbacks, metrics, regularizers
from ._mlp import build_cnn, build_mlp
from .checkpoint import SavedModel, load_checkpoint, load_model
from .history import History
from .regularizers import L1, L2
from .step import TrainStep
from .trainer import Trainer

__all__ = ["Trainer", "TrainStep", "History", "build_mlp", "build_cnn", "load_checkpoint", "SavedModel", "load_model", "callbacks", "metrics", "regularizers", "L1", "L2"]
