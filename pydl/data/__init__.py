"""pydl.data: mini-batch loading and data augmentation.

- :class:`DataLoader`: (x, y) mini-batches of in-memory arrays, optional shuffling and transform.
- :mod:`pydl.data.transforms`: image augmentations on batches (rotation, flips, crop, noise,
  Cutout) and batch mixers (Mixup, CutMix). Every transform is a callable ``t(x, y=None)``
  returning ``x`` when ``y`` is None and ``(x, y)`` otherwise.
"""
from . import transforms
from .loader import DataLoader
from .transforms import (Compose, CutMix, Cutout, GaussianNoise, Mixup, RandomCrop,
                         RandomHorizontalFlip, RandomRotation, RandomVerticalFlip)

__all__ = ["DataLoader", "transforms", "Compose", "RandomRotation", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomCrop", "GaussianNoise", "Cutout", "Mixup", "CutMix"]
