"""The GLUE metrics as torchmetrics (synced across DDP ranks), named as the Hugging Face run_glue reports them."""

from __future__ import annotations

from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryMatthewsCorrCoef,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
)
from torchmetrics.regression import PearsonCorrCoef, SpearmanCorrCoef

from lmlab.errors import ConfigError

METRIC_NAMES = ("accuracy", "f1", "f1_macro", "matthews_correlation", "pearson", "spearmanr")


def make_metric(name: str, num_labels: int) -> Metric:
    """``f1`` is the F1 of the positive class (label 1), as GLUE scores MRPC and QQP."""
    binary = num_labels == 2
    if name == "accuracy":
        return BinaryAccuracy() if binary else MulticlassAccuracy(num_labels, average="micro")
    if name == "f1":
        if not binary:
            raise ConfigError("metric 'f1' (positive class) needs two labels; use 'f1_macro' for more")
        return BinaryF1Score()
    if name == "f1_macro":
        return MulticlassF1Score(num_labels, average="macro")
    if name == "matthews_correlation":
        return BinaryMatthewsCorrCoef() if binary else MulticlassMatthewsCorrCoef(num_labels)
    if name == "pearson":
        return PearsonCorrCoef()
    if name == "spearmanr":
        return SpearmanCorrCoef()
    raise ConfigError(f"unknown metric {name!r}; known: {METRIC_NAMES}")


def make_metrics(names: tuple[str, ...], num_labels: int) -> MetricCollection:
    regression = num_labels == 1
    for name in names:
        if regression != (name in ("pearson", "spearmanr")):
            kind = "regression" if regression else "classification"
            raise ConfigError(f"metric {name!r} does not fit a {kind} task")
    return MetricCollection({name: make_metric(name, num_labels) for name in names})
