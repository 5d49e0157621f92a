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
        for line, row in read_delimited(path, fmt, encoding_errors):
            if None in row:
                raise DataError(f"{path}:{line}: more fields than the header has columns ({list(row)[:-1]})")
            yield line, row
    else:
        raise DataError(f"{path}: unknown table format; use .jsonl, .csv or .tsv (optionally .gz)")


def read_delimited(
    path: str | Path, fmt: str, encoding_errors: str = "strict"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)`` of a CSV (``fmt="csv"``) or TSV file, keyed by its header line; extra
    fields of a row are under the key None. Broken quoting (a quoted field that never closes, as in a file cut
    short, or text after a closing quote) is a DataError naming the line."""
    reader = csv.DictReader(
        read_lines(path, encoding_errors), dialect="excel" if fmt == "csv" else "excel-tab", strict=True
    )
    start = 1  # the line the row being read starts on
    try:
        if reader.fieldnames is None:  # reads the header now: no header, no rows
            return
        start = reader.line_num + 1
        for row in reader:
            yield reader.line_num, row
            start = reader.line_num + 1
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise DataError(
                f"{path}:{start}: a quoted field opened on this line never closes (the file ends inside "
                "it; it may be truncated). Close the quote, or restore the complete file"
            ) from None
        raise DataError(
            f"{path}:{start}: not valid {fmt.upper()} in the row that starts on this line ({e}). A field that "
            "starts with a quote must end with one, and quotes inside it are doubled"
        ) from None


def read_jsonl(path: str | Path, encoding_errors: str = "strict") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` for each JSON object line of a JSONL file; blank lines are skipped."""
    for lineno, line in enumerate(read_lines(path, encoding_errors), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(
                line.rstrip("\n")
            )  # a line cut short: "unterminated", not "control character"
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: not valid JSON at column {e.colno} ({e.msg}); each line must be one JSON "
                "object (a line cut short means a truncated or damaged file)"
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
