"""Language-model text sources: the ``TextSource`` protocol, local text/JSONL files, any hub text dataset
(WikiText: ``lmlab.data.sources.wikitext``).

A source yields ``(line, ends_document)`` pairs for a split, so that the token cache can put an
end-of-text token between documents without ever holding a whole corpus in memory. ``TextSource`` is
that protocol; the labeled and pair sources follow it too, so a tokenizer can be trained on their text.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lmlab.data.sources.locate import file_fingerprint, hub_fingerprint, load_hub_split
from lmlab.data.tables import read_records
from lmlab.data.text_io import check_file, read_lines
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Lines = Iterator[tuple[str, bool]]


class TextSource(ABC):
    """A corpus with named splits."""

    @abstractmethod
    def check(self, splits: Sequence[str]) -> None:
        """Resolve every split cheaply; raise DataError naming what was tried and how to fix it."""

    @abstractmethod
    def fingerprint(self, split: str) -> str:
        """A string that changes whenever the split's text may have changed (used as a cache key)."""

    @abstractmethod
    def iter_lines(self, split: str) -> Lines:
        """Yield ``(line, ends_document)`` for the split, lines ending in a newline."""

    @abstractmethod
    def describe(self, split: str) -> str:
        """Where the split is read from, for logs."""

    def named_splits(self) -> set[str]:
        """Splits the config names files for explicitly (a split named but read by no stage is a warning)."""
        return set()


# ------------------------------------------------------------------------------------------ local files
_DOC_BOUNDARIES = ("blank_line", "line", "file")


class TextFilesSource(TextSource):
    """Any local text: ``.txt`` or ``.jsonl`` files (gzipped or not), given per split as paths or globs.

    Documents (an end-of-text token goes between them): in text files, runs of lines separated by blank
    lines (``doc_boundary=blank_line``), every line (``line``) or the whole file (``file``); in JSONL
    files, each record's ``text_field``. Without a validation split, every ``round(1/val_fraction)``-th
    training document is held out for validation (deterministic, streaming).
    """

    def __init__(
        self,
        files: dict[str, Any],
        text_field: str = "text",
        doc_boundary: str = "blank_line",
        val_fraction: float = 0.0,
        encoding_errors: str = "strict",
    ) -> None:
        if doc_boundary not in _DOC_BOUNDARIES:
            raise ConfigError(f"data.source.doc_boundary={doc_boundary!r} is not one of {_DOC_BOUNDARIES}")
        if not files or not files.get("train"):
            raise ConfigError(
                "data.source.files has no 'train' entry: set it to a text/JSONL file or glob, e.g. "
                "data.source.files.train=/path/to/corpus/*.txt"
            )
        if not 0.0 <= val_fraction < 0.5:
            raise ConfigError(f"data.source.val_fraction={val_fraction} must be in [0, 0.5)")
        self.patterns = {k: ([v] if isinstance(v, str) else list(v)) for k, v in files.items() if v}
        self.text_field, self.doc_boundary = text_field, doc_boundary
        self.val_every = round(1 / val_fraction) if val_fraction > 0 else 0
        self.encoding_errors = encoding_errors
        self._resolved: dict[str, list[Path]] = {}

    def named_splits(self) -> set[str]:
        return set(self.patterns)

    def _holds_out(self) -> bool:
        """Validation documents are taken from the training files (no validation files were given)."""
        return self.val_every > 0 and "validation" not in self.patterns

    def _key(self, split: str) -> str:
        return "train" if split == "validation" and self._holds_out() else split

    def _files(self, split: str) -> list[Path]:
        key = self._key(split)
        if key not in self._resolved:
            if key not in self.patterns:
                raise DataError(
                    f"data.source.files has no {key!r} entry (it has {sorted(self.patterns)}); add "
                    f"data.source.files.{key}=<file or glob>"
                    + (
                        " or set data.source.val_fraction=0.05 to hold out training documents"
                        if key == "validation"
                        else ""
                    )
                )
            paths: list[Path] = []
            for pattern in self.patterns[key]:
                matches = sorted(glob.glob(str(Path(pattern).expanduser())))
                if not matches:
                    raise DataError(f"data.source.files.{key}: {pattern!r} matches no file")
                paths += [check_file(m, f"data.source.files.{key}") for m in matches]
            self._resolved[key] = paths
        return self._resolved[key]

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            self._files(split)

    def fingerprint(self, split: str) -> str:
        mode = f"{self.text_field}:{self.doc_boundary}:{self.val_every if self._holds_out() else 0}:{split}"
        return f"files-{file_fingerprint(self._files(split))}-{hashlib.sha256(mode.encode()).hexdigest()[:8]}"

    def describe(self, split: str) -> str:
        files = self._files(split)
        more = " ..." if len(files) > 3 else ""
        held = ""
        if self._holds_out() and split in ("train", "validation"):
            held = f" ({'only' if split == 'validation' else 'without'} every {self.val_every}th document)"
        return f"{len(files)} file(s): {', '.join(map(str, files[:3]))}{more}{held}"

    def iter_lines(self, split: str) -> Lines:
        holdout = self.val_every if self._holds_out() and split in ("train", "validation") else 0
        doc_index = 0
        for path in self._files(split):
            for doc in self._documents(path):
                held = holdout and doc_index % holdout == holdout - 1
                doc_index += 1
                if not holdout or held == (split == "validation"):
                    yield from doc

    def _documents(self, path: Path) -> Iterator[list[tuple[str, bool]]]:
        """Documents of one file, each a list of (line, ends_document) pairs."""
        if ".jsonl" in path.suffixes:
            yield from self._jsonl_documents(path)
            return
        doc: list[str] = []
        for line in read_lines(path, self.encoding_errors):
            if self.doc_boundary == "line":
                if line.strip():
                    yield [(line, True)]
            elif self.doc_boundary == "blank_line" and not line.strip():
                if doc:
                    yield _as_doc(doc)
                doc = []
            else:
                doc.append(line)
        if doc:
            yield _as_doc(doc)

    def _jsonl_documents(self, path: Path) -> Iterator[list[tuple[str, bool]]]:
        for lineno, record in read_records(path, self.encoding_errors):
            if self.text_field not in record:
                raise DataError(
                    f"{path}:{lineno}: no field {self.text_field!r} (found {sorted(record)}); "
                    "set data.source.text_field to the field that holds the text"
                )
            text = str(record[self.text_field])
            if text.strip():
                yield _as_doc(text.splitlines(keepends=True))


def _as_doc(lines: list[str]) -> list[tuple[str, bool]]:
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    return [(line, i == len(lines) - 1) for i, line in enumerate(lines)]


# ------------------------------------------------------------------------------------------------- hub
class HubTextSource(TextSource):
    """Any text dataset on the Hugging Face hub (``datasets.load_dataset(path, name)``); each row is a document."""

    def __init__(self, path: str, name: str | None = None, text_field: str = "text") -> None:
        self.path, self.name, self.text_field = path, name, text_field
        self._loaded: dict[str, Any] = {}

    def _load(self, split: str) -> Any:
        if split not in self._loaded:
            ds = load_hub_split(self.path, self.name, split, f"hub dataset {self.path} {split} split", [])
            if self.text_field not in ds.column_names:
                raise DataError(
                    f"hub dataset {self.path}: no column {self.text_field!r} (found {ds.column_names}); "
                    "set data.source.text_field"
                )
            self._loaded[split] = ds
        return self._loaded[split]

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            self._load(split)

    def fingerprint(self, split: str) -> str:
        return f"hub-{hub_fingerprint(self._load(split))}-{self.text_field}"

    def describe(self, split: str) -> str:
        return f"hub {self.path} ({self.name}) split {split}"

    def iter_lines(self, split: str) -> Lines:
        for row in self._load(split):
            text = row[self.text_field]
            if text and text.strip():
                yield from _as_doc(text.splitlines(keepends=True))
