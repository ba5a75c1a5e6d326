"""load_checkpoint: restore a model (and an optimizer) from a ModelCheckpoint file; SavedModel /
load_model: the self-describing model file of ``python -m pydl train`` (architecture,
preprocessing, class names) that ``python -m pydl predict`` uses alone."""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from .. import _io
from .._typing import Array


def load_checkpoint(path: str | os.PathLike[str], model: Any, optimizer: Any = None) -> dict[str, Any]:
    """Load a checkpoint written by ``ModelCheckpoint`` (or ``pydl.save``) into ``model`` and,
    when given, ``optimizer``.

    Parameters
    ----------
    path : str or os.PathLike
        A file of ``ModelCheckpoint(..., save_optimizer=True)`` (``{"model": ..., "optimizer":
        ...}``), or of ``ModelCheckpoint`` / ``pydl.save(model, path)`` (the model's state only).
    model : nn.Module
        Receives the saved ``state_dict`` (``model.load_state_dict``).
    optimizer : optim.Optimizer, optional
        Receives the saved optimizer state (``optimizer.load_state_dict``); the file must hold
        one.

    Returns
    -------
    dict
        What was loaded (as ``pydl.load`` returns it).

    Raises
    ------
    ValueError, TypeError
        If ``optimizer`` is given and the file holds no optimizer state, or a state does not
        fit its object (the errors of ``load_state_dict``, naming the key). Neither the model
        nor the optimizer has changed then.

    Examples
    --------
    >>> cb = ModelCheckpoint("ckpt.npz", save_optimizer=True)          # doctest: +SKIP
    >>> trainer.fit(x, y, epochs=5, callbacks=[cb])                     # doctest: +SKIP
    >>> load_checkpoint("ckpt.npz", model, optimizer)                   # doctest: +SKIP
    >>> trainer.fit(x, y, epochs=10, initial_epoch=5)                   # doctest: +SKIP
    """
    ckpt = _io.load(path)
    nested = isinstance(ckpt.get("model"), dict)
    model_state = ckpt["model"] if nested else ckpt
    if optimizer is not None:
        if not nested or "optimizer" not in ckpt:
            raise ValueError(f"optimizer: {path!r} holds no optimizer state (save it with "
                             "ModelCheckpoint(..., save_optimizer=True))")
        previous = optimizer.state_dict()
        optimizer.load_state_dict(ckpt["optimizer"])      # validated before anything changes
        try:
            model.load_state_dict(model_state)
        except BaseException:
            optimizer.load_state_dict(previous)
            raise
    else:
        model.load_state_dict(model_state)
    return ckpt


# ---------------------------------------------------------------- self-describing model files
#: ``format`` and ``version`` of the "pydl_model" record of a :class:`SavedModel` file.
MODEL_FORMAT = "pydl-model"
MODEL_FORMAT_VERSION = 1
TASKS = ("classification", "regression")


class SavedModel:
    """A trained network with everything predicting from raw features needs: the checkpoint of
    ``python -m pydl train``, which ``python -m pydl predict`` uses alone.

    Predicting applies ``x -> (x - x_mean) / x_std`` (per feature, in float32, as in training),
    reshapes each sample to ``input_shape`` and runs the model in eval mode; a classifier's
    answer is ``classes[argmax(logits)]``, a regressor's ``output * y_std + y_mean``.

    Parameters
    ----------
    model : nn.Module
        The trained network, as ``build_from_architecture(architecture)`` builds it.
    architecture : dict
        ``{"builder": "build_mlp" | "build_cnn", "arguments": {...}}`` (JSON values).
    task : {"classification", "regression"}
    x_mean, x_std : ndarray
        Standardisation of the features, of the shape of one sample as read (e.g. (F,) or
        (H, W)); ``x_std`` > 0.
    input_shape : sequence of int
        Shape of one sample as the model takes it (e.g. (1, H, W) for a CNN); same size.
    classes : sequence of str, optional
        Class names by class index (classification; sorted, as scikit-learn's LabelEncoder).
    y_mean, y_std : float
        Target scaling (regression): the model learns ``(y - y_mean) / y_std``.
    feature_names : sequence of str, optional
        The training file's header (features only).
    target_name : str, optional
        The training file's header name of the label / target column.

    File layout (:meth:`save`, a nested ``pydl.save`` checkpoint: arrays as ``.npy`` members and
    a JSON manifest, no pickle)::

        {"model": model.state_dict(),
         "pydl_model": {"format": "pydl-model", "version": 1, "pydl_version": "...",
                        "task": ..., "architecture": {...}, "input_shape": [...],
                        "preprocessing": {"x_mean": array, "x_std": array,
                                          "y_mean": float, "y_std": float},
                        "classes": str array or None, "feature_names": [...] or None,
                        "target_name": str or None}}

    ``load_checkpoint(path, model)`` also loads the weights of such a file into a model.
    """

    def __init__(self, model: Any, architecture: dict[str, Any], task: str, x_mean: Any, x_std: Any,
                 input_shape: tuple[int, ...], classes: Sequence[str] | None = None, y_mean: float = 0.0,
                 y_std: float = 1.0, feature_names: Sequence[str] | None = None, target_name: str | None = None,
                 pydl_version: str | None = None) -> None:
        from .. import __version__
        if task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
        self.model, self.architecture, self.task = model, architecture, task
        self.x_mean = np.asarray(x_mean, dtype=np.float32)
        self.x_std = np.asarray(x_std, dtype=np.float32)
        self.input_shape = tuple(int(s) for s in input_shape)
        if self.x_std.shape != self.x_mean.shape or not np.all(self.x_std > 0):
            raise ValueError(f"x_std: expected positive values of x_mean's shape {self.x_mean.shape}, "
                             f"got shape {self.x_std.shape}")
        if math.prod(self.input_shape) != self.x_mean.size:
            raise ValueError(f"input_shape: {self.input_shape} does not hold the {self.x_mean.size} "
                             "features of x_mean")
        self.classes = None if classes is None else np.asarray(classes, dtype=str)
        if (task == "classification") != (self.classes is not None):
            raise ValueError("classes: expected class names for classification and None for regression")
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        if not (math.isfinite(self.y_mean) and math.isfinite(self.y_std) and self.y_std > 0):
            raise ValueError(f"y_mean, y_std: expected finite numbers with y_std > 0, got {y_mean!r}, {y_std!r}")
        self.feature_names = None if feature_names is None else [str(n) for n in feature_names]
        self.target_name = None if target_name is None else str(target_name)
        self.pydl_version = __version__ if pydl_version is None else str(pydl_version)

    @property
    def n_features(self) -> int:
        """Features per sample (the size of ``x_mean``)."""
        return self.x_mean.size

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model file (atomically, as ``pydl.save``)."""
        record = {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION, "pydl_version": self.pydl_version,
                  "task": self.task, "architecture": self.architecture, "input_shape": list(self.input_shape),
                  "preprocessing": {"x_mean": self.x_mean, "x_std": self.x_std, "y_mean": self.y_mean,
                                    "y_std": self.y_std},
                  "classes": self.classes, "feature_names": self.feature_names, "target_name": self.target_name}
        _io.save({"model": self.model.state_dict(), "pydl_model": record}, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SavedModel:
        """Read a file written by :meth:`save`: rebuild the network and load its weights.

        Raises
        ------
        ValueError
            Naming ``path``: not a model file (a weights-only checkpoint of ``pydl.save(model)``
            or of an older ``python -m pydl train``: load those with ``load_checkpoint(path,
            model)`` into a network built as in training), a newer format, or a malformed record.
        """
        ckpt = _io.load(path)
        record = ckpt.get("pydl_model") if isinstance(ckpt, dict) else None
        if not isinstance(record, dict) or not isinstance(ckpt.get("model"), dict):
            raise ValueError(f"{path!r} holds weights only, not a pydl model file (no architecture, "
                             "preprocessing or labels): train again with `python -m pydl train` to get one, or "
                             "load the weights with pydl.train.load_checkpoint(path, model) into a network built "
                             "as it was trained")
        if record.get("format") != MODEL_FORMAT or not isinstance(record.get("version"), int):
            raise ValueError(f"{path!r}: its 'pydl_model' record is malformed (format {record.get('format')!r})")
        if record["version"] > MODEL_FORMAT_VERSION:
            raise ValueError(f"{path!r} was written by a newer pydl ({record.get('pydl_version')}, model format "
                             f"{record['version']}; this pydl reads up to {MODEL_FORMAT_VERSION})")
        try:
            from ._mlp import build_from_architecture
            pre = record["preprocessing"]
            model = build_from_architecture(record["architecture"])
            model.load_state_dict(ckpt["model"])
            return cls(model, record["architecture"], record["task"], pre["x_mean"], pre["x_std"],
                       record["input_shape"], record["classes"], pre["y_mean"], pre["y_std"],
                       record["feature_names"], record["target_name"], record["pydl_version"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path!r}: malformed pydl model file: {type(e).__name__}: {e}") from None

    def prepare(self, x: Array) -> Array:
        """Raw samples (N, n_features) or (N, *x_mean.shape) -> the standardised float32 model
        input (N, *input_shape)."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"x: expected numbers, got dtype {x.dtype}")
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.n_features:
            raise ValueError(f"x: expected {self.n_features} features per sample (shape (N, {self.n_features}) "
                             f"or (N, *{self.x_mean.shape})), got shape {x.shape}")
        n = int(x.shape[0])
        x = x.astype(np.float32, copy=False).reshape((n,) + self.x_mean.shape)
        return ((x - self.x_mean) / self.x_std).reshape((n,) + self.input_shape)

    def outputs(self, x: Array, batch_size: int = 256) -> Array:
        """The model's raw outputs on raw samples: logits (N, C), or the standardised target (N, 1)."""
        from .trainer import _inference
        x = self.prepare(x)
        with _inference(self.model):
            outs = [np.array(self.model(x[s:s + batch_size]), copy=True) for s in range(0, len(x), batch_size)]
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, self._n_out()), np.float32)

    def _n_out(self) -> int:
        return 1 if self.classes is None else len(self.classes)

    def decode(self, out: Array) -> Array:
        """Model outputs -> predictions: ``classes[argmax(out)]`` (str (N,)), or
        ``out * y_std + y_mean`` (float64 (N,))."""
        out = np.asarray(out)
        if self.classes is not None:            # classification (checked in __init__)
            return self.classes[np.argmax(out, axis=1)]
        return out.reshape(len(out)).astype(np.float64) * self.y_std + self.y_mean

    def predict(self, x: Array, batch_size: int = 256) -> Array:
        """Class names (str array (N,)) or target values (float64 (N,)) for raw samples ``x``."""
        return self.decode(self.outputs(x, batch_size))

    def predict_proba(self, x: Array, batch_size: int = 256) -> Array:
        """Class probabilities (N, C) in the order of ``classes`` (softmax of the logits, float64)."""
        from ..ops import softmax
        if self.task != "classification":
            raise ValueError("predict_proba: the model is a regressor (task 'regression')")
        return softmax(self.outputs(x, batch_size).astype(np.float64))


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Load a self-describing model file (``python -m pydl train``'s checkpoint): a
    :class:`SavedModel` (``.predict(x)``, ``.predict_proba(x)``, ``.model``, ...)."""
    return SavedModel.load(path)
