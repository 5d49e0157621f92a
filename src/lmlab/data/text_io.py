"""Read text files line by line (plain or gzipped), with UTF-8 errors reported by file, line and byte offset."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ENCODING_ERRORS = ("strict", "replace")


def open_binary(path: str | Path):
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_lines(path: str | Path, encoding_errors: str = "strict") -> Iterator[str]:
    """Yield the lines of a UTF-8 text file, each ending in "\\n" (CRLF is normalised to LF).

    With ``encoding_errors="strict"`` (the default) invalid bytes raise a DataError naming the file, the
    line and the byte offset; with ``"replace"`` they become U+FFFD and one warning counts them.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise ConfigError(f"data.encoding_errors={encoding_errors!r} is not one of {ENCODING_ERRORS}")
    offset, n_bad = 0, 0
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if encoding_errors == "strict":
                    raise DataError(
                        f"{path}: invalid UTF-8 at line {lineno}, byte offset {offset + e.start} "
                        f"(byte 0x{raw[e.start]:02x}). Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) "
                        "or set data.encoding_errors=replace to decode it with U+FFFD replacement characters."
                    ) from None
                line = raw.decode("utf-8", errors="replace")
                n_bad += 1
            offset += len(raw)
            if line.endswith("\r\n"):
                line = line[:-2] + "\n"
            elif not line.endswith("\n"):
                line += "\n"
            yield line.removeprefix("\ufeff") if lineno == 1 else line
    if n_bad:
        log.warning(
            "%s: %d line(s) had invalid UTF-8, decoded with U+FFFD replacement characters", path, n_bad
        )


def check_file(path: str | Path, what: str) -> Path:
    """Fail early, with the path and the fix, when a data file is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{what}: file {path} is empty; give a file that holds text")
    return path
