"""Checkpoints: pydl.save / pydl.load (.npz, never pickle). Implemented with pydl.nn."""


def save(obj, path):
    raise NotImplementedError("pydl.save arrives with pydl.nn")


def load(path):
    raise NotImplementedError("pydl.load arrives with pydl.nn")
