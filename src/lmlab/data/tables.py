"""Read records from JSONL, CSV or TSV files (gzipped or not), with errors that name the file and line."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmlab.data.text_io import read_lines
from lmlab.errors import DataError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
TABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")


def table_format(path: str | Path) -> str | None:
    """``jsonl``, ``csv`` or ``tsv`` from the file name (``.gz`` allowed after it); None if none of them."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(last)


def read_records(path: str | Path, encoding_errors: str = "strict") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)``: one JSON object per line, or CSV/TSV rows keyed by the header.

    CSV and TSV follow the usual quoting rules (a quoted field may hold delimiters and newlines).
    """
    fmt = table_format(path)
    if fmt == "jsonl":
        yield from read_jsonl(path, encoding_errors)
    elif fmt in ("csv", "tsv"):
        reader = csv.DictReader(
            read_lines(path, encoding_errors), dialect="excel" if fmt == "csv" else "excel-tab"
        )
        for row in reader:
            if None in row:
                raise DataError(
                    f"{path}:{reader.line_num}: more fields than the header has columns ({reader.fieldnames})"
                )
            yield reader.line_num, row
    else:
        raise DataError(f"{path}: unknown table format; use .jsonl, .csv or .tsv (optionally .gz)")


def read_jsonl(path: str | Path, encoding_errors: str = "strict") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` for each JSON object line of a JSONL file; blank lines are skipped."""
    for lineno, line in enumerate(read_lines(path, encoding_errors), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: not valid JSON ({e.msg}); each line must be one JSON object"
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: a JSON {type(record).__name__}, not an object")
        yield lineno, record


def get_field(record: dict[str, Any], name: str) -> Any:
    """``record[name]``, where ``a.b`` reads a nested field (``translation.en``); KeyError if absent."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(name)
        value = value[part]
    return value


def has_field(record: dict[str, Any], name: str) -> bool:
    try:
        get_field(record, name)
    except KeyError:
        return False
    return True


def field_names(record: dict[str, Any], prefix: str = "") -> list[str]:
    """All field names of a record, nested ones dotted (for "found ..." in error messages)."""
    names = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        names.extend(field_names(value, name + ".") if isinstance(value, dict) else [name])
    return names
