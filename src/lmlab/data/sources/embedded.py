"""The small corpus shipped inside the package, so that the main command runs on a machine with no data.

Tiny Shakespeare (``lmlab/data/embedded/tinyshakespeare.txt.gz``; 40,000 lines, 1.1 MB of text, public
domain; see the README beside it) is the language-model data of last resort: ``WikiTextSource`` reads it
when ``data.source.fallback=embedded`` and WikiText is neither on disk nor on the hub. It is not WikiText,
so its losses and perplexities are not comparable to WikiText benchmarks; every description of it says so.

Splits are cut by line, at line boundaries: train is the first 90% of the lines, valid the next 5%, test
the last 5% (36,000 / 2,000 / 2,000 lines). Each split is one document (one continuous text, as char-rnn
and nanoGPT read this file): blank lines between speeches are kept as text, and one end-of-text token
closes the split.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

from lmlab.data.sources.text import Lines, TextSource
from lmlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

log = logging.getLogger(__name__)

CORPUS_FILE = "tinyshakespeare.txt.gz"
CORPUS_NAME = "embedded Tiny Shakespeare"
NOT_COMPARABLE = "its losses and perplexities are not comparable to WikiText benchmarks"
# Each split's share of the lines, as [start, end) fractions of the file.
SPLITS = {"train": (0.0, 0.9), "valid": (0.9, 0.95), "test": (0.95, 1.0)}


def corpus_file() -> Traversable:
    """The shipped corpus file, inside the installed package."""
    return resources.files("lmlab.data") / "embedded" / CORPUS_FILE


@functools.cache
def _corpus() -> tuple[tuple[str, ...], str]:
    """The corpus lines (each ending in a newline) and the sha256 of its text, read once per process."""
    with corpus_file().open("rb") as f:
        data = gzip.decompress(f.read())
    text = data.decode("utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return tuple(lines), hashlib.sha256(data).hexdigest()


def split_name(split: str) -> str:
    """``validation`` -> ``valid``; refuse names the corpus does not have."""
    split = {"validation": "valid"}.get(split, split)
    if split not in SPLITS:
        raise ConfigError(
            f"the {CORPUS_NAME} corpus has splits train, valid and test, not {split!r} (see data.splits)"
        )
    return split


def split_range(split: str) -> tuple[int, int]:
    """The split's lines as a [start, end) range of line indices (cut at line boundaries)."""
    start, end = SPLITS[split_name(split)]
    n = len(_corpus()[0])
    return round(n * start), round(n * end)


class EmbeddedShakespeare(TextSource):
    """Tiny Shakespeare from inside the package, split 90/5/5 by line; each split is one document."""

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            split_range(split)

    def fingerprint(self, split: str) -> str:
        start, end = split_range(split)
        return f"embedded-tinyshakespeare-{_corpus()[1][:16]}-{start}-{end}"

    def describe(self, split: str) -> str:
        start, end = split_range(split)
        lines = f"{split_name(split)}: lines {start + 1}-{end} of {len(_corpus()[0])}"
        return f"{CORPUS_NAME} ({lines}; not WikiText: {NOT_COMPARABLE})"

    def iter_lines(self, split: str) -> Lines:
        start, end = split_range(split)
        lines = _corpus()[0]
        for i in range(start, end):
            yield lines[i], i == end - 1


def stand_in(why: str, missing: DataError) -> EmbeddedShakespeare:
    """The embedded corpus in place of a corpus that was found nowhere (``missing`` lists where it was
    looked for), announced by one warning line."""
    log.info("%s", str(missing).split("\nFix:")[0])  # where the corpus was looked for, without the fix
    log.warning(
        "Using the %s corpus (%s) for every split: %s and the hub cannot give it (see above). %s; put the "
        "real corpus under paths.data_dir for those, or set data.source.fallback=null to make a missing "
        "corpus an error.",
        CORPUS_NAME, corpus_file(), why, NOT_COMPARABLE[0].upper() + NOT_COMPARABLE[1:],
    )  # fmt: skip
    return EmbeddedShakespeare()
