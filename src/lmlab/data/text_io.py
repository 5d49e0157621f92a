"""Read text files line by line (plain or gzipped), with UTF-8 errors reported by file, line and byte offset.

A damaged file (a gzip stream cut short, data that is not gzip under a ``.gz`` name, a read error) is a
DataError naming the file and the line where reading stopped, never a traceback from ``gzip``/``zlib``.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ENCODING_ERRORS = ("strict", "replace")


GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: str | Path):
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_raw_lines(path: str | Path) -> Iterator[bytes]:
    """Yield the lines of a file as bytes (gunzipped if it ends in ``.gz``); damage is a DataError saying
    where it broke: the line (1-based) and the byte offset in the uncompressed text."""
    lineno, offset = 0, 0
    try:
        f = open_binary(path)
    except OSError as e:
        raise DataError(f"{path}: cannot be opened ({e.strerror or e})") from None
    with f:
        while True:
            try:
                raw = f.readline()
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(_damage(path, e, lineno + 1, offset)) from None
            if not raw:
                return
            lineno += 1
            offset += len(raw)
            yield raw


def _damage(path: str | Path, error: BaseException, lineno: int, offset: int) -> str:
    where = (
        f"at line {lineno} (byte {offset} of the {'uncompressed ' if Path(path).suffix == '.gz' else ''}text)"
    )
    if isinstance(error, gzip.BadGzipFile) and str(error).startswith("Not a gzipped file"):
        what = f"not gzip data ({error}), although the name ends in .gz"
        fix = "compress it again with gzip, or drop the .gz suffix if it is plain text"
    elif isinstance(error, EOFError):
        what = "the gzip stream ends early: the file is truncated"
        fix = "download or compress it again"
    elif isinstance(error, (zlib.error, gzip.BadGzipFile)):
        what = f"corrupt compressed data ({error})"
        fix = "download or compress it again"
    else:
        what = f"read error ({getattr(error, 'strerror', None) or error})"
        fix = "check the disk or copy the file again"
    return f"{path}: damaged file, {what}; reading stopped {where}. Fix: {fix}"


def read_lines(path: str | Path, encoding_errors: str = "strict") -> Iterator[str]:
    """Yield the lines of a UTF-8 text file, each ending in "\\n" (CRLF is normalised to LF).

    With ``encoding_errors="strict"`` (the default) invalid bytes raise a DataError naming the file, the
    line and the byte offset; with ``"replace"`` they become U+FFFD and one warning counts them.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise ConfigError(f"data.encoding_errors={encoding_errors!r} is not one of {ENCODING_ERRORS}")
    offset, n_bad = 0, 0
    for lineno, raw in enumerate(read_raw_lines(path), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if lineno == 1 and raw.startswith(GZIP_MAGIC) and Path(path).suffix != ".gz":
                raise DataError(
                    f"{path}: gzip-compressed data in a file without the .gz suffix; rename it to "
                    f"{Path(path).name}.gz (and the setting that names it) so that it is decompressed"
                ) from None
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
    """Fail early, with the path and the fix, when a data file is missing or empty, or a ``.gz`` file does not
    start like gzip data (a truncated one is found when it is read)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{what}: file {path} is empty; give a file that holds text")
    if path.suffix == ".gz":
        with open(path, "rb") as f:
            head = f.read(2)
        if head != GZIP_MAGIC:
            raise DataError(
                f"{what}: {path} is not gzip data (it starts with {head!r}), although the name ends in .gz; "
                "drop the .gz suffix if it is plain text, or compress it again"
            )
    return path
