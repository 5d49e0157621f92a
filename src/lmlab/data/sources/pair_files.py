"""Find the local files of a split of pairs: one table, or two parallel text files (``.gz`` tried too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmlab.data.sources.locate import first_file
from lmlab.data.tables import table_format
from lmlab.data.text_io import read_raw_lines
from lmlab.errors import ConfigError


def local_pair_files(
    entry: Any, split: str, langs: tuple[str | None, str | None], tried: list[str]
) -> tuple[str, tuple[Path, ...]] | None:
    """``("table", (path,))`` or ``("parallel", (source, target))`` for a ``data.source.files`` entry: a
    table path, a path with ``{lang}``, or a ``[source, target]`` pair; None (and lines in ``tried``) if a
    file is missing."""
    if not isinstance(entry, str):  # [source file, target file]: parallel text
        if len(entry) != 2:
            raise ConfigError(
                f"data.source.files.{split}={list(entry)}: give one table file, or two parallel text files "
                "[source, target]"
            )
        paths = [existing(str(p), tried) for p in entry]
    elif "{lang}" in entry:
        if not all(langs):
            raise ConfigError(
                f"data.source.files={entry!r} is parallel text ({{lang}}): set data.source.source_lang and "
                "data.source.target_lang (e.g. en and de)"
            )
        paths = [existing(entry.replace("{lang}", str(lang)), tried) for lang in langs]
    elif table_format(entry) is None:
        raise ConfigError(
            f"data.source.files: {entry!r} is neither a table (.jsonl/.csv/.tsv, optionally .gz) nor "
            "parallel text (a path with {lang}, or a [source, target] pair)"
        )
    else:
        path = existing(entry, tried)
        return None if path is None else ("table", (path,))
    if any(p is None for p in paths):
        return None
    return "parallel", tuple(p for p in paths if p is not None)


def existing(path: str, tried: list[str]) -> Path | None:
    """The file, or the same with ``.gz`` appended; None (and a line in ``tried``) if neither exists."""
    found = first_file((Path(path).expanduser(), Path(path + ".gz").expanduser()), "data.source.files")
    if found is None:
        tried.append(f"local file {path} (or {Path(path).name}.gz): not found")
    return found


def count_lines(path: Path) -> int:
    return sum(1 for _ in read_raw_lines(path))
