"""Lightning callbacks of lmlab."""

from lmlab.callbacks.run_metadata import RunMetadata
from lmlab.callbacks.throughput import Throughput

__all__ = ["RunMetadata", "Throughput"]
