"""load_checkpoint: restore a model (and an optimizer) from a ModelCheckpoint file."""
from __future__ import annotations

import os
from typing import Any

from .. import _io


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
