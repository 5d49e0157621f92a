"""The GLUE tasks as a labeled source: the release layout on disk first, then the hub (``nyu-mll/glue``).

What each task is (columns, labels, metrics, file names) lives in ``glue_tasks.py``; this file finds and
reads its splits. Test labels are private, so test files are read for predictions (submission files).
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path
from typing import Any

from lmlab.data.sources.glue_tasks import Columns, GlueTask, PredictSet, glue_task
from lmlab.data.sources.labeled import (
    ClassificationSpec,
    Example,
    RowErrors,
    check_bad_rows,
    example_lines,
    label_id,
)
from lmlab.data.sources.locate import file_fingerprint, first_file, load_hub_split
from lmlab.data.sources.text import Lines
from lmlab.data.text_io import read_lines
from lmlab.errors import DataError

log = logging.getLogger(__name__)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_tsv(
    path: Path, columns: Columns, labels: tuple[str, ...] | None, bad_rows: str, quoting: int = csv.QUOTE_NONE
) -> list[Example]:
    """Read a GLUE-style TSV: tab-separated, quotes are literal text (MRPC, SST-2), UTF-8 with optional BOM.

    Text that is not UTF-8 or not TSV is a DataError naming the file and the line."""
    try:
        return _read_tsv(path, columns, labels, bad_rows, quoting)
    except UnicodeDecodeError:
        for _ in read_lines(path):  # raises the DataError that names the line and the byte
            pass
        raise
    except csv.Error as e:
        raise DataError(f"{path}: not valid TSV ({e}); fix or restore the file") from None


def _read_tsv(
    path: Path, columns: Columns, labels: tuple[str, ...] | None, bad_rows: str, quoting: int
) -> list[Example]:
    errors = RowErrors(bad_rows, str(path))
    out: list[Example] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=quoting)
        header = next(reader, None) if columns.header else None
        if columns.header and header is None:
            raise DataError(
                f"{path}: the file is empty; restore it (GLUE release layout) or remove the folder"
            )
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
            label = label_id(row[y], labels, errors, line) if y is not None else None
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
        self.bad_rows = check_bad_rows(bad_rows)
        self.task: GlueTask = glue_task(task)
        self.data_dir, self.hub_path = Path(data_dir), hub_path
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

    # ------------------------------------------------------------------------------------ locating
    def _local_file(
        self, file: str, what: str, required: bool = True, folder: str | None = None
    ) -> Path | None:
        """The file in the task's local folder; None when there is no local folder (the hub is used) or,
        unless ``required``, when the folder lacks it."""
        base = self._folder(folder or self.task.folder)
        if base is None:
            return None
        path = first_file([base / file], f"GLUE {self.task.name} {what}")
        if path is None and required:
            raise DataError(
                f"GLUE {self.task.name}: {base / file} not found ({what}); the folder {base} is missing this split. "
                f"Add the file (GLUE release layout) or point paths.data_dir elsewhere."
            )
        return path

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

    def _rows(
        self,
        path: Path | None,
        columns: Columns,
        labels: tuple[str, ...] | None,
        hub_split: str,
        hub_config: str | None = None,
    ) -> list[Example]:
        """The rows of the local file found (``path``), else of the hub split."""
        if path is None:
            return self._hub_rows(hub_split, hub_config)
        return read_tsv(path, columns, labels, self.bad_rows)

    def check(self, need_train: bool = True) -> None:
        """Find the files (cheap); from the hub, load a split (fails at once, and clearly, when offline)."""
        if self._folder(self.task.folder) is None:
            self._hub_rows("train" if need_train else self.task.eval_sets[0].hub_split)
            return
        if need_train:
            self._local_file("train.tsv", "training split")
        for s in self.task.eval_sets:
            self._local_file(s.file, "evaluation split")

    # ------------------------------------------------------------------------------------ reading
    def train(self) -> list[Example]:
        path = self._local_file("train.tsv", "training split")
        return self._rows(path, self.task.train_columns, self.task.labels, "train")

    def eval_sets(self) -> list[tuple[str, list[Example]]]:
        out = []
        for s in self.task.eval_sets:
            path = self._local_file(s.file, "evaluation split")
            out.append((s.suffix, self._rows(path, self.task.train_columns, self.task.labels, s.hub_split)))
        return out

    def available_predict_sets(self) -> list[PredictSet]:
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
            out.append(
                (p.submission, self._rows(path, self.task.test_columns, None, p.hub_split, p.hub_config))
            )
        return out

    def test_sets(self) -> list[tuple[str, list[Example]]]:
        return []  # GLUE test labels are private: predictions are written instead

    # ------------------------------------------------------------------ TextSource (tokenizer training)
    def fingerprint(self, split: str) -> str:
        path = self._local_file("train.tsv", "training split")
        return f"glue-{self.task.name}-" + (file_fingerprint([path]) if path else "hub")

    def iter_lines(self, split: str) -> Lines:
        yield from example_lines(self.train())
