"""Lightning callbacks of lmlab."""

from lmlab.callbacks.continuation import ContinuationEval
from lmlab.callbacks.curves import LearningCurves
from lmlab.callbacks.throughput import Throughput
from lmlab.checkpoints import RunMetadata

__all__ = ["ContinuationEval", "LearningCurves", "RunMetadata", "Throughput"]
