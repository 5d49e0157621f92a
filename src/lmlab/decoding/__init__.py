"""Text generation shared by training, evaluation and callbacks: validated settings, decoding, records."""

from lmlab.decoding.settings import GenerationSettings

__all__ = ["GenerationSettings"]
