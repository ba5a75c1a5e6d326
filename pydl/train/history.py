"""History: the per-epoch logs of ``Trainer.fit`` (as Keras's ``History``), and a plot of them."""
from __future__ import annotations

import os
from typing import Any

from .callbacks import Callback, Logs


class History(Callback):
    """Records the epoch logs.

    Attributes
    ----------
    history : dict of str -> list of float
        One list per key, one value per epoch: "loss", the metrics ("accuracy", ...), and with
        validation data "val_loss", "val_<metric>" and "gap" (= val_loss - loss, the
        generalization gap of that epoch), plus keys added by callbacks ("learning_rate").
    epoch : list of int
        The epochs run (from 0).
    params : dict
        ``epochs``, ``steps`` (optimizer steps per epoch), ``samples``, ``batch_size``.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}
        self._initial: tuple[list[int], dict[str, list[Any]]] | None = None

    def _carry_over(self, previous: History, initial_epoch: int) -> None:
        """Start (at ``on_train_begin``) with the records of ``previous`` (a History) for its
        epochs before ``initial_epoch``: ``fit(..., initial_epoch=k)`` continues the history."""
        keep = sum(1 for e in previous.epoch if e < initial_epoch)
        self._initial = (list(previous.epoch[:keep]),
                         {k: list(v[:keep]) for k, v in previous.history.items() if v[:keep]})

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._initial is not None:
            self.epoch, self.history = self._initial
            self._initial = None
        else:
            self.history = {}
            self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"

    def plot(self, path: str | os.PathLike[str], dpi: int = 100) -> str | os.PathLike[str]:
        """Write a PNG with the loss curves (train and validation) and one panel per metric.

        Needs matplotlib (``pip install matplotlib`` or ``pip install pydl[plot]``).
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("History.plot needs matplotlib: pip install matplotlib "
                              "(or pip install pydl[plot])") from e
        if not self.epoch:
            raise ValueError("History.plot: no epochs recorded (fit has not run an epoch)")
        skip = {"gap", "learning_rate"}
        panels = ["loss"] + [k for k in self.history
                             if not k.startswith("val_") and k not in skip and k != "loss"]
        fig = Figure(figsize=(4.5 * len(panels), 3.5))
        FigureCanvasAgg(fig)
        x = [e + 1 for e in self.epoch]
        for i, key in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            if key in self.history:
                ax.plot(x, self.history[key], label=f"train {key}")
            if "val_" + key in self.history:
                ax.plot(x, self.history["val_" + key], label=f"validation {key}")
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
        return path
