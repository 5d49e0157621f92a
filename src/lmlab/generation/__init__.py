"""Text generation shared by training, evaluation and callbacks: validated settings, decoding, records."""

from lmlab.generation.settings import GenerationSettings

__all__ = ["GenerationSettings"]
