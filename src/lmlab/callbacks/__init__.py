"""Lightning callbacks of lmlab."""

from lmlab.callbacks.continuation import ContinuationEval
from lmlab.callbacks.curves import LearningCurves
from lmlab.callbacks.run_metadata import RunMetadata
from lmlab.callbacks.throughput import Throughput

__all__ = ["ContinuationEval", "LearningCurves", "RunMetadata", "Throughput"]
