"""Source/target text pairs (translation, summarization): local files first, then the Hugging Face hub.

Local files are a table (JSONL/CSV/TSV with named columns) or parallel text (``train.en`` + ``train.de``,
one example per line, gzipped or not), found from ``files``: one path per split, or one pattern with
``{split}`` (the split name of ``data.splits``) and, for parallel text, ``{lang}``. A file that is not
there falls back to the hub (``hub_path``), and if that fails too one error lists everything tried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.data.sources.locate import file_fingerprint, hub_fingerprint, load_hub_split, no_data_error
from lmlab.data.sources.pair_files import count_lines, local_pair_files
from lmlab.data.sources.text import Lines
from lmlab.data.tables import field_names, get_field, has_field, read_records
from lmlab.data.text_io import read_lines
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)
EMPTY_ROWS = ("error", "skip")


@dataclass
class Pair:
    source: str
    references: list[str]  # references[0] is the training target; more for multi-reference evaluation
    where: str  # file:line (or hub row) for messages


@dataclass
class _Found:
    kind: str  # table | parallel | hub
    paths: tuple[Path, ...] = ()
    dataset: Any = None


class PairSource:
    """Pairs per split. Columns may be nested (``translation.en``, the hub's WMT layout).

    Args:
        files: path per split (``{train: a.jsonl, validation: b.jsonl}``) or a pattern with ``{split}``;
            ``{lang}`` in it means parallel text, as does a ``[source file, target file]`` pair per split
            (``.gz`` is tried too).
        source_column, target_column: the columns of tables and hub datasets.
        reference_columns: per split, the columns holding several references (``{test: [summary1,
            summary2, summary3]}``); the first one is also the target of the loss. A split whose data has
            none of them (e.g. from the hub) uses ``target_column``.
        source_lang, target_lang: the ``{lang}`` values of parallel files.
        hub_path, hub_name: ``datasets.load_dataset(hub_path, hub_name)``; ``hub_splits`` renames splits.
        empty_rows: ``error`` (default) stops at a pair with an empty source or target; ``skip`` drops them.
    """

    def __init__(
        self,
        files: str | dict[str, str | None] | None = None,
        source_column: str = "source",
        target_column: str = "target",
        reference_columns: dict[str, list[str]] | None = None,
        source_lang: str | None = None,
        target_lang: str | None = None,
        hub_path: str | None = None,
        hub_name: str | None = None,
        hub_splits: dict[str, str] | None = None,
        name: str = "custom",
        empty_rows: str = "error",
        encoding_errors: str = "strict",
    ) -> None:
        if not files and not hub_path:
            raise ConfigError("data.source needs files (local tables or parallel text) or a hub_path")
        if empty_rows not in EMPTY_ROWS:
            raise ConfigError(f"data.source.empty_rows={empty_rows!r} is not one of {EMPTY_ROWS}")
        self.files = (
            files if isinstance(files, str) or not files else {k: v for k, v in dict(files).items() if v}
        )
        self.source_column, self.target_column = source_column, target_column
        self.reference_columns = {k: list(v) for k, v in (reference_columns or {}).items() if v}
        self.langs = (source_lang, target_lang)
        self.hub_path, self.hub_name, self.hub_splits = hub_path, hub_name, dict(hub_splits or {})
        self.name, self.empty_rows, self.encoding_errors = name, empty_rows, encoding_errors
        self._found: dict[str, _Found] = {}

    # ------------------------------------------------------------------------------------ locating
    def _pattern(self, split: str) -> Any:
        if isinstance(self.files, str):
            return self.files.replace("{split}", split)
        if isinstance(self.files, dict):
            return self.files.get(split)
        return None

    def _local(self, split: str, tried: list[str]) -> _Found | None:
        entry = self._pattern(split)
        if entry is None:
            if isinstance(self.files, dict):
                tried.append(f"data.source.files has no {split!r} entry (it has {sorted(self.files)})")
            return None
        found = local_pair_files(entry, split, self.langs, tried)
        return None if found is None else _Found(*found)

    def _locate(self, split: str) -> _Found:
        if split not in self._found:
            tried: list[str] = []
            found = self._local(split, tried)
            if found is None:
                what = f"{self.name} {split} split"
                if not self.hub_path:
                    raise no_data_error(
                        what,
                        tried,
                        "set data.source.files to existing files, or paths.data_dir to the folder that holds them",
                    )
                hub_split = self.hub_splits.get(split, split)
                found = _Found(
                    "hub", dataset=load_hub_split(self.hub_path, self.hub_name, hub_split, what, tried)
                )
            self._found[split] = found
        return self._found[split]

    def check(self, splits: Sequence[str]) -> None:
        """Find every split and check its columns (parallel text: equal line counts), before any real work."""
        for split in splits:
            found = self._locate(split)
            if found.kind == "parallel":
                counts = [count_lines(p) for p in found.paths]
                if counts[0] != counts[1]:
                    raise DataError(
                        f"parallel files differ in length: {found.paths[0]} has {counts[0]} lines but "
                        f"{found.paths[1]} has {counts[1]}; line i of one must translate line i of the other"
                    )
            else:
                first = next(iter(self._records(split, found)), None)
                if first is None:
                    raise DataError(f"{self.describe(split)}: no records")
                self._columns(split, first[1], first[0])

    # ------------------------------------------------------------------------------------ reading
    def _records(self, split: str, found: _Found) -> Iterator[tuple[str, dict[str, Any]]]:
        if found.kind == "table":
            path = found.paths[0]
            for lineno, record in read_records(path, self.encoding_errors):
                yield f"{path}:{lineno}", record
        else:
            for i, row in enumerate(found.dataset):
                yield f"hub {self.hub_path} {split} row {i}", row

    def _columns(self, split: str, record: dict[str, Any], where: str) -> list[str]:
        """The target columns of this split: its reference columns if the data has them, else the target."""
        needed = [self.source_column]
        refs = self.reference_columns.get(split, [])
        present = [c for c in refs if has_field(record, c)]
        if refs and present and len(present) < len(refs):
            missing = [c for c in refs if c not in present]
            raise DataError(
                f"{where}: reference column(s) {missing} missing (found {field_names(record)}); fix "
                f"data.source.reference_columns.{split}"
            )
        targets = present if present else [self.target_column]
        missing = [c for c in needed + targets if not has_field(record, c)]
        if missing:
            raise DataError(
                f"{where}: no column(s) {missing} (found {field_names(record)}); set data.source.source_column "
                f"and data.source.target_column{' (or reference_columns)' if refs else ''} to the right names"
            )
        return targets

    def pairs(self, split: str, limit: int | None = None) -> list[Pair]:
        """The first ``limit`` pairs of a split (all if None); empty sources or targets per ``empty_rows``."""
        found = self._locate(split)
        out: list[Pair] = []
        skipped = 0
        if found.kind == "parallel":
            src, tgt = found.paths
            lines = zip(
                read_lines(src, self.encoding_errors), read_lines(tgt, self.encoding_errors), strict=True
            )
            rows: Iterator[tuple[str, str, list[str]]] = (
                (f"{src}:{n} / {tgt}:{n}", s.strip(), [t.strip()]) for n, (s, t) in enumerate(lines, start=1)
            )
        else:
            rows = self._table_rows(split, found)
        for where, source, refs in rows:
            if limit is not None and len(out) >= limit:
                break
            empty = "source" if not source else "target" if not all(refs) else None
            if empty:
                if self.empty_rows == "error":
                    raise DataError(
                        f"{where}: empty {empty}; remove the row, or set data.source.empty_rows=skip to drop such rows"
                    )
                skipped += 1
                continue
            out.append(Pair(source, refs, where))
        if skipped:
            log.warning(
                "%s: skipped %d pair(s) with an empty source or target", self.describe(split), skipped
            )
        if not out:
            raise DataError(f"{self.describe(split)}: no usable pairs")
        return out

    def _table_rows(self, split: str, found: _Found) -> Iterator[tuple[str, str, list[str]]]:
        targets: list[str] | None = None
        for where, record in self._records(split, found):
            if targets is None:
                targets = self._columns(split, record, where)
            try:
                source = get_field(record, self.source_column)
                refs = [get_field(record, c) for c in targets]
            except KeyError as e:
                raise DataError(f"{where}: no column {e.args[0]!r} (found {field_names(record)})") from None
            yield where, _text(source), [_text(r) for r in refs]

    # ------------------------------------------------------------------ TextSource (tokenizer training)
    def fingerprint(self, split: str) -> str:
        found = self._locate(split)
        columns = f"{self.source_column}|{self.target_column}|{self.langs}"
        if found.kind == "hub":
            return f"pairs-hub-{hub_fingerprint(found.dataset)}-{columns}"
        return f"pairs-{file_fingerprint(found.paths)}-{columns}"

    def iter_lines(self, split: str) -> Lines:
        """Sources and targets as documents: a tokenizer trained on them covers both languages."""
        for pair in self.pairs(split):
            for text in (pair.source, pair.references[0]):
                for line in text.splitlines():
                    yield line + "\n", True

    def describe(self, split: str) -> str:
        found = self._locate(split)
        if found.kind == "hub":
            return f"{self.name}: hub {self.hub_path} ({self.hub_name}) split {self.hub_splits.get(split, split)}"
        return f"{self.name}: " + " + ".join(str(p) for p in found.paths)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
