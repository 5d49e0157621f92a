"""Users' own labeled data as a classification source: CSV, TSV or JSONL files with named columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmlab.data.sources.labeled import (
    ClassificationSpec,
    Example,
    RowErrors,
    check_bad_rows,
    example_lines,
    label_id,
)
from lmlab.data.sources.locate import file_fingerprint
from lmlab.data.sources.text import Lines
from lmlab.data.tables import read_delimited, read_jsonl
from lmlab.data.text_io import check_file
from lmlab.errors import ConfigError, DataError


class TableSource:
    """Your own labeled data: CSV, TSV or JSONL files with named text and label columns.

    ``labels``: the label values (in order); null = the sorted distinct values of the training labels.
    ``regression: true`` for numeric targets (one output, MSE). A test file with labels is scored
    (``test/...`` metrics); without a label column, predictions are written instead.
    """

    def __init__(
        self,
        files: dict[str, str | None],
        text_columns: list[str],
        label_column: str = "label",
        labels: list[str] | None = None,
        regression: bool = False,
        metrics: list[str] | None = None,
        main_metric: str | None = None,
        index_column: str | None = None,
        bad_rows: str = "error",
        name: str = "custom",
    ) -> None:
        if not files or not files.get("train"):
            raise ConfigError("data.source.files.train is not set: give a CSV/TSV/JSONL file")
        if not 1 <= len(text_columns) <= 2:
            raise ConfigError(f"data.source.text_columns={list(text_columns)} must name one or two columns")
        self.bad_rows = check_bad_rows(bad_rows)
        self.files = {k: v for k, v in files.items() if v}
        self.text_columns, self.label_column, self.index_column = (
            list(text_columns),
            label_column,
            index_column,
        )
        self.regression, self.name = regression, name
        self._labels = tuple(str(x) for x in labels) if labels else None
        default_metrics = ("pearson", "spearmanr") if regression else ("accuracy", "f1_macro")
        self.metrics = tuple(metrics or default_metrics)
        self.main_metric = main_metric or (self.metrics[0] if len(self.metrics) == 1 else "combined_score")
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def describe(self, split: str = "train") -> str:
        return f"{self.name} ({self.files.get(split)})"

    def _records(self, split: str) -> list[dict[str, Any]]:
        if split not in self._cache:
            path = check_file(self.files[split], f"data.source.files.{split}")
            if ".jsonl" in path.suffixes or path.suffix == ".json":
                records = [record for _, record in read_jsonl(path)]
            else:
                # Not tables.read_records: any other suffix is read as CSV here, and a row with more
                # fields than the header is kept (its extra fields are ignored), not refused.
                fmt = "tsv" if ".tsv" in path.suffixes else "csv"
                records = [
                    {k: v for k, v in row.items() if k is not None} for _, row in read_delimited(path, fmt)
                ]
            if records:
                missing = [c for c in self.text_columns if c not in records[0]]
                if missing:
                    raise DataError(
                        f"{path}: no column(s) {missing} (found {sorted(records[0])}); set data.source.text_columns"
                    )
            self._cache[split] = records
        return self._cache[split]

    @property
    def labels(self) -> tuple[str, ...] | None:
        if self.regression:
            return None
        if self._labels is None:
            values = {str(r.get(self.label_column)) for r in self._records("train")}
            self._labels = tuple(sorted(values))
        return self._labels

    @property
    def spec(self) -> ClassificationSpec:
        has_test_labels = "test" in self.files and self._has_labels("test")
        return ClassificationSpec(
            self.name, self.labels, self.labels, self.metrics, self.main_metric,
            predict_files=(f"{self.name}_test.tsv",) if "test" in self.files and not has_test_labels else (),
            test_suffixes=("",) if has_test_labels else (),
        )  # fmt: skip

    def _has_labels(self, split: str) -> bool:
        records = self._records(split)
        return bool(records) and self.label_column in records[0]

    def _examples(self, split: str, with_labels: bool) -> list[Example]:
        errors = RowErrors(self.bad_rows, self.files[split])
        out = []
        for n, r in enumerate(self._records(split)):
            line = n + 2  # header line, 1-based
            if with_labels and self.label_column not in r:
                raise DataError(
                    f"{self.files[split]}: no label column {self.label_column!r} (found {sorted(r)}); set data.source.label_column"
                )
            label = label_id(str(r[self.label_column]), self.labels, errors, line) if with_labels else None
            if with_labels and label is None:
                continue
            b = r[self.text_columns[1]] if len(self.text_columns) > 1 else None
            idx = int(r[self.index_column]) if self.index_column else n
            out.append(Example(idx, str(r[self.text_columns[0]]), None if b is None else str(b), label))
        errors.report()
        return out

    def check(self, need_train: bool = True) -> None:
        for split in self.files:
            if need_train or split != "train":
                self._records(split)

    def train(self) -> list[Example]:
        return self._examples("train", True)

    def eval_sets(self) -> list[tuple[str, list[Example]]]:
        if "validation" not in self.files:
            raise DataError("data.source.files.validation is not set: give a labeled validation file")
        return [("", self._examples("validation", True))]

    def test_sets(self) -> list[tuple[str, list[Example]]]:
        return [("", self._examples("test", True))] if self.spec.test_suffixes else []

    def predict_sets(self) -> list[tuple[str, list[Example]]]:
        return (
            [(self.spec.predict_files[0], self._examples("test", False))] if self.spec.predict_files else []
        )

    # ------------------------------------------------------------------ TextSource (tokenizer training)
    def fingerprint(self, split: str) -> str:
        return f"table-{file_fingerprint([Path(self.files['train'])])}"

    def iter_lines(self, split: str) -> Lines:
        yield from example_lines(self.train())
