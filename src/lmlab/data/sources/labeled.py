"""Labeled examples, shared by every classification source (the GLUE tasks in ``glue.py``, users' tables in
``table.py``).

Every source yields ``Example``s with integer label ids (float scores for regression), and describes
itself with a ``ClassificationSpec`` (labels, metrics, evaluation and prediction sets) that the model and
the LightningModule are built from. Bad rows (a label outside the task's labels, a wrong field count) are
handled the same way by every source: stop at the first, or skip and count them (``data.bad_rows``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from lmlab.data.sources.text import Lines
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)
BAD_ROWS = ("error", "skip")


def check_bad_rows(mode: str) -> str:
    """The ``data.bad_rows`` setting, checked when a source is built (not when its first bad row appears)."""
    if mode not in BAD_ROWS:
        raise ConfigError(f"data.bad_rows={mode!r} must be one of {BAD_ROWS}")
    return mode


class LabelSet:
    """Output count and kind from a ``labels`` tuple: None means regression (one output)."""

    labels: tuple[str, ...] | None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_regression(self) -> bool:
        return self.labels is None


@dataclass
class Example:
    idx: int
    text_a: str
    text_b: str | None
    label: int | float | None


@dataclass(frozen=True)
class ClassificationSpec(LabelSet):
    """What the model and the metrics need to know about a labeled dataset."""

    name: str
    labels: tuple[str, ...] | None  # label values as in the data; None = regression
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    main_metric: str
    eval_suffixes: tuple[str, ...] = ("",)
    predict_files: tuple[str, ...] = ()
    test_suffixes: tuple[str, ...] = ()


@dataclass
class RowErrors:
    """Bad rows of one file: stop at the first, or skip and count them (``data.bad_rows``)."""

    mode: str
    path: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def bad(self, line: int, why: str) -> None:
        if self.mode == "error":
            raise DataError(
                f"{self.path}:{line}: {why}. Fix the file, or set data.bad_rows=skip to skip such rows"
            )
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(f"line {line}: {why}")

    def report(self) -> None:
        if self.count:
            log.warning("%s: skipped %d bad row(s), e.g. %s", self.path, self.count, "; ".join(self.examples))


def label_id(value: str, labels: tuple[str, ...] | None, errors: RowErrors, line: int) -> int | float | None:
    """The id of a label value (its position in ``labels``), or the float score when ``labels`` is None;
    None for a bad value (reported to ``errors``)."""
    if labels is None:
        try:
            return float(value)
        except ValueError:
            errors.bad(line, f"score {value!r} is not a number")
            return None
    if value not in labels:
        errors.bad(line, f"label {value!r} is not one of the task's labels {list(labels)}")
        return None
    return labels.index(value)


def example_lines(examples: Iterable[Example]) -> Lines:
    """The text of labeled examples for training a tokenizer: each non-empty text is one document."""
    for ex in examples:
        for text in (ex.text_a, ex.text_b):
            if text:
                yield text + "\n", True
