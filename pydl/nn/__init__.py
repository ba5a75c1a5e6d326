"""pydl.nn: modules with explicit backward, and losses."""
from .parameter import Parameter

__all__ = ["Parameter"]
