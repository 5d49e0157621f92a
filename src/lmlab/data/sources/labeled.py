"""Labeled sentence / sentence-pair data: the GLUE tasks (release layout or hub) and users' own tables.

Every source yields ``Example``s with integer label ids (float scores for regression), and describes
itself with a ``ClassificationSpec`` (labels, metrics, evaluation and prediction sets) that the model and
the LightningModule are built from.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmlab.data.sources.glue_tasks import Columns, GlueTask, glue_task
from lmlab.data.sources.text import file_fingerprint, load_hub_split
from lmlab.data.text_io import check_file, read_lines
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
BAD_ROWS = ("error", "skip")


@dataclass
class Example:
    idx: int
    text_a: str
    text_b: str | None
    label: int | float | None


@dataclass(frozen=True)
class ClassificationSpec:
    """What the model and the metrics need to know about a labeled dataset."""

    name: str
    labels: tuple[str, ...] | None  # label values as in the data; None = regression
    label_names: tuple[str, ...] | None
    metrics: tuple[str, ...]
    main_metric: str
    eval_suffixes: tuple[str, ...] = ("",)
    predict_files: tuple[str, ...] = ()
    test_suffixes: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_regression(self) -> bool:
        return self.labels is None


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


def _label_id(value: str, labels: tuple[str, ...] | None, errors: RowErrors, line: int) -> int | float | None:
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


def read_tsv(
    path: Path, columns: Columns, labels: tuple[str, ...] | None, bad_rows: str, quoting: int = csv.QUOTE_NONE
) -> list[Example]:
    """Read a GLUE-style TSV: tab-separated, quotes are literal text (MRPC, SST-2), UTF-8 with optional BOM."""
    errors = RowErrors(bad_rows, str(path))
    out: list[Example] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=quoting)
        header = next(reader) if columns.header else None
        width = len(header) if header else None

        def col(name: str | int | None) -> int | None:
            if name is None or isinstance(name, int):
                return name
            if name not in header:
                raise DataError(f"{path}: no column {name!r} in the header (found {header})")
            return header.index(name)

        a, b, y, i = col(columns.text_a), col(columns.text_b), col(columns.label), col(columns.index)
        needed = max(c for c in (a, b, y, i) if c is not None) + 1
        for row in reader:
            line = reader.line_num
            if not row or row == [""]:
                continue
            if (width is not None and len(row) != width) or len(row) < needed:
                errors.bad(line, f"{len(row)} fields, expected {width or needed}")
                continue
            label = _label_id(row[y], labels, errors, line) if y is not None else None
            if y is not None and label is None:
                continue
            idx = int(row[i]) if i is not None and row[i].strip().lstrip("-").isdigit() else len(out)
            out.append(Example(idx, row[a], row[b] if b is not None else None, label))
    errors.report()
    return out


class GlueSource:
    """One GLUE task from the release layout (``<data_dir>/glue_data/<TASK>/train.tsv``, ``dev.tsv``, ``test.tsv``;
    ``<data_dir>/glue/<TASK>`` and ``<data_dir>/<TASK>`` work too) or from the hub (``nyu-mll/glue``)."""

    def __init__(
        self, task: str, data_dir: str, bad_rows: str = "error", hub_path: str = "nyu-mll/glue"
    ) -> None:
        if bad_rows not in BAD_ROWS:
            raise ConfigError(f"data.bad_rows={bad_rows!r} must be one of {BAD_ROWS}")
        self.task: GlueTask = glue_task(task)
        self.data_dir, self.bad_rows, self.hub_path = Path(data_dir), bad_rows, hub_path
        self._hub: dict[tuple[str, str], Any] = {}

    def _folder(self, name: str) -> Path | None:
        for base in (self.data_dir / "glue_data", self.data_dir / "glue", self.data_dir):
            if (base / name).is_dir():
                return base / name
        return None

    def describe(self, split: str = "train") -> str:
        folder = self._folder(self.task.folder)
        return f"GLUE {self.task.name} ({folder or f'hub {self.hub_path}'})"

    @property
    def spec(self) -> ClassificationSpec:
        t = self.task
        return ClassificationSpec(
            t.name, t.labels, t.label_names, t.metrics, t.main_metric,
            eval_suffixes=tuple(s.suffix for s in t.eval_sets),
            predict_files=tuple(p.submission for p in self.available_predict_sets()),
        )  # fmt: skip

    def _local_file(
        self, file: str, what: str, required: bool = True, folder: str | None = None
    ) -> Path | None:
        base = self._folder(folder or self.task.folder)
        if base is None:
            return None
        path = base / file
        if not path.is_file():
            if required:
                raise DataError(
                    f"GLUE {self.task.name}: {path} not found ({what}); the folder {base} is missing this split. "
                    f"Add the file (GLUE release layout) or point paths.data_dir elsewhere."
                )
            return None
        return check_file(path, f"GLUE {self.task.name} {what}")

    def _hub_rows(self, split: str, config: str | None = None) -> list[Example]:
        config = config or self.task.hub_config
        key = (config, split)
        if key not in self._hub:
            tried = [
                f"local folder {self.data_dir}/glue_data/{self.task.folder} (or glue/, or {self.data_dir}/{self.task.folder}): not found"
            ]
            ds = load_hub_split(self.hub_path, config, split, f"GLUE {self.task.name} {split}", tried)
            a, b = self.task.hub_columns
            self._hub[key] = [
                Example(int(r.get("idx", n)), r[a], r[b] if b else None,
                        None if r["label"] == -1 else r["label"])
                for n, r in enumerate(ds)
            ]  # fmt: skip
        return self._hub[key]

    def check(self, need_train: bool = True) -> None:
        """Find the files (cheap); from the hub, load a split (fails at once, and clearly, when offline)."""
        if self._folder(self.task.folder) is None:
            self._hub_rows("train" if need_train else self.task.eval_sets[0].hub_split)
            return
        if need_train:
            self._local_file("train.tsv", "training split")
        for s in self.task.eval_sets:
            self._local_file(s.file, "evaluation split")

    def train(self) -> list[Example]:
        path = self._local_file("train.tsv", "training split")
        if path is None:
            return self._hub_rows("train")
        return read_tsv(path, self.task.train_columns, self.task.labels, self.bad_rows)

    def eval_sets(self) -> list[tuple[str, list[Example]]]:
        out = []
        for s in self.task.eval_sets:
            path = self._local_file(s.file, "evaluation split")
            rows = (
                self._hub_rows(s.hub_split)
                if path is None
                else read_tsv(path, self.task.train_columns, self.task.labels, self.bad_rows)
            )
            out.append((s.suffix, rows))
        return out

    def available_predict_sets(self) -> list:
        local = self._folder(self.task.folder) is not None
        sets = []
        for p in self.task.predict_sets:
            if (
                not local
                or self._local_file(p.file, "test split", required=False, folder=p.folder) is not None
            ):
                sets.append(p)
            else:
                log.warning("GLUE %s: no %s, so %s is not written", self.task.name, p.file, p.submission)
        return sets

    def predict_sets(self) -> list[tuple[str, list[Example]]]:
        out = []
        for p in self.available_predict_sets():
            path = self._local_file(p.file, "test split", required=False, folder=p.folder)
            rows = (
                self._hub_rows(p.hub_split, p.hub_config)
                if path is None
                else read_tsv(path, self.task.test_columns, None, self.bad_rows)
            )
            out.append((p.submission, rows))
        return out

    def test_sets(self) -> list[tuple[str, list[Example]]]:
        return []  # GLUE test labels are private: predictions are written instead

    # TextSource protocol, for training a tokenizer on the task's text
    def fingerprint(self, split: str) -> str:
        path = self._local_file("train.tsv", "training split")
        return f"glue-{self.task.name}-" + (file_fingerprint([path]) if path else "hub")

    def iter_lines(self, split: str):
        for ex in self.train():
            for text in (ex.text_a, ex.text_b):
                if text:
                    yield text + "\n", True


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
        if bad_rows not in BAD_ROWS:
            raise ConfigError(f"data.bad_rows={bad_rows!r} must be one of {BAD_ROWS}")
        self.files = {k: v for k, v in files.items() if v}
        self.text_columns, self.label_column, self.index_column = (
            list(text_columns),
            label_column,
            index_column,
        )
        self.regression, self.bad_rows, self.name = regression, bad_rows, name
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
                records = [json.loads(line) for line in read_lines(path) if line.strip()]
            else:
                delimiter = "\t" if ".tsv" in path.suffixes else ","
                with open(path, encoding="utf-8-sig", newline="") as f:
                    records = list(csv.DictReader(f, delimiter=delimiter))
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
            label = _label_id(str(r[self.label_column]), self.labels, errors, line) if with_labels else None
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

    def fingerprint(self, split: str) -> str:
        return f"table-{file_fingerprint([Path(self.files['train'])])}"

    def iter_lines(self, split: str):
        for ex in self.train():
            for text in (ex.text_a, ex.text_b):
                if text:
                    yield text + "\n", True
