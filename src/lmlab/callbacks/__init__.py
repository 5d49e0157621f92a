"""Lightning callbacks of lmlab."""

from lmlab.callbacks.continuation import ContinuationEval
from lmlab.callbacks.curves import LearningCurves
from lmlab.callbacks.early_stopping import EarlyStopping
from lmlab.callbacks.throughput import Throughput
from lmlab.checkpoints import RunMetadata
from lmlab.checkpoints.periodic import PeriodicCheckpoint

__all__ = [
    "ContinuationEval",
    "EarlyStopping",
    "LearningCurves",
    "PeriodicCheckpoint",
    "RunMetadata",
    "Throughput",
]
