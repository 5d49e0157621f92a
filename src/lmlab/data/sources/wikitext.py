"""WikiText-2/103: local files (release or pytorch/examples layout), then the hub, then (optionally) the
embedded Tiny Shakespeare corpus, so that the default command runs on a fresh offline machine."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lmlab.data.sources.embedded import stand_in
from lmlab.data.sources.locate import file_fingerprint, first_file, hub_fingerprint, load_hub_split
from lmlab.data.sources.text import Lines, TextSource
from lmlab.data.text_io import read_lines
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $")
_WIKITEXT_NAMES = ("wikitext-2", "wikitext-103")


def wikitext_documents(lines: Iterable[str]) -> Lines:
    """Mark article ends in WikiText: an article ends right before the next top-level ' = Title = ' line
    (blank lines before the first title belong to the first article)."""
    prev: str | None = None
    has_text = False
    for line in lines:
        if prev is not None:
            has_text = has_text or bool(prev.strip())
            end = has_text and bool(_WIKITEXT_TITLE.match(line.rstrip("\n")))
            yield prev, end
            has_text = has_text and not end
        prev = line
    if prev is not None:
        yield prev, True


class WikiTextSource(TextSource):
    """WikiText-2/103, tokenized (``wiki.*.tokens``) or raw (``wiki.*.raw``).

    Looked for under ``data_dir`` in the official release layout (``wikitext-2/wiki.train.tokens``,
    ``wikitext-2-raw/wiki.train.raw``) or the pytorch/examples layout (``wikitext-2/train.txt``), then on
    the hub (``Salesforce/wikitext``). Split names: train, valid (alias validation), test.

    With ``fallback="embedded"``, when no file of the corpus is on disk and the hub cannot give a split
    (offline, ``HF_HUB_OFFLINE=1``, or any hub error), every split is read from the corpus shipped with
    lmlab instead (``embedded.EmbeddedShakespeare``), with one warning. All or nothing: when some of the
    corpus's files are on disk (or a split came from the hub), a missing split stays an error, so one run
    never mixes two corpora. ``fallback=None`` makes every missing split an error.
    """

    def __init__(
        self,
        data_dir: str,
        name: str = "wikitext-2",
        variant: str = "tokenized",
        hub_path: str = "Salesforce/wikitext",
        encoding_errors: str = "strict",
        fallback: str | None = None,
    ) -> None:
        if name not in _WIKITEXT_NAMES:
            raise ConfigError(f"data.source.name={name!r} is not one of {_WIKITEXT_NAMES}")
        if variant not in ("tokenized", "raw"):
            raise ConfigError(f"data.source.variant={variant!r} must be 'tokenized' or 'raw'")
        if fallback not in (None, "embedded"):
            raise ConfigError(f"data.source.fallback={fallback!r} must be 'embedded' or null")
        self.data_dir = Path(data_dir)
        self.name, self.variant, self.hub_path = name, variant, hub_path
        self.encoding_errors, self.fallback = encoding_errors, fallback
        self._resolved: dict[str, Path | Any] = {}
        self._embedded: TextSource | None = None  # set once the embedded corpus replaces every split

    @staticmethod
    def _split(split: str) -> str:
        split = {"validation": "valid"}.get(split, split)
        if split not in ("train", "valid", "test"):
            raise ConfigError(f"WikiText has splits train, valid and test, not {split!r} (see data.splits)")
        return split

    def _candidates(self, split: str) -> list[Path]:
        if self.variant == "raw":
            folder = self.data_dir / f"{self.name}-raw"
            return [folder / f"wiki.{split}.raw", folder / f"{split}.txt"]
        folder = self.data_dir / self.name
        return [folder / f"wiki.{split}.tokens", folder / f"{split}.txt"]

    def _resolve(self, split: str) -> Path | Any:
        """The split's local file or hub dataset, or the embedded corpus (a ``TextSource``) standing in."""
        split = self._split(split)
        if self._embedded is not None:
            return self._embedded
        if split not in self._resolved:
            candidates = self._candidates(split)
            found: Path | Any = first_file(candidates, f"{self.name} {split} split")
            if found is None:
                config = f"{self.name}-raw-v1" if self.variant == "raw" else f"{self.name}-v1"
                hub_split = {"valid": "validation"}.get(split, split)
                tried = [f"local file {p}: not found" for p in candidates]
                what = f"{self.name} ({self.variant}) {split} split"
                try:
                    found = load_hub_split(self.hub_path, config, hub_split, what, tried)
                except DataError as missing:
                    self._embedded = self._fall_back(missing)
                    return self._embedded
            self._resolved[split] = found
        return self._resolved[split]

    def _fall_back(self, missing: DataError) -> TextSource:
        """The embedded corpus in place of every split, or ``missing`` (with why no fallback) re-raised."""
        if self.fallback is None:
            raise DataError(
                f"{missing} Or set data.source.fallback=embedded to train on the small corpus shipped with "
                "lmlab (Tiny Shakespeare; not comparable to WikiText benchmarks)."
            ) from missing
        present = [str(p) for s in ("train", "valid", "test") for p in self._candidates(s) if p.is_file()]
        present += [
            f"hub {self.hub_path} ({s} split)" for s, f in self._resolved.items() if not isinstance(f, Path)
        ]
        if present:
            raise DataError(
                f"{missing}\nThe embedded corpus does not stand in for this split: other splits of "
                f"{self.name} were found ({', '.join(present)}), and one run never mixes two corpora. "
                "Add the missing file, or point data.splits at the splits that exist "
                "(e.g. data.splits.train=valid)."
            ) from missing
        return stand_in(f"{self.name} ({self.variant}) is not under {self.data_dir}", missing)

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            self._resolve(split)

    def fingerprint(self, split: str) -> str:
        found = self._resolve(split)
        if isinstance(found, TextSource):
            return found.fingerprint(split)
        if isinstance(found, Path):
            return f"wikitext-file-{file_fingerprint([found])}"
        return f"wikitext-hub-{hub_fingerprint(found)}"

    def describe(self, split: str) -> str:
        found = self._resolve(split)
        if isinstance(found, TextSource):
            return found.describe(split)
        return str(found) if isinstance(found, Path) else f"hub {self.hub_path} ({self.name}, {self.variant})"

    def iter_lines(self, split: str) -> Lines:
        found = self._resolve(split)
        if isinstance(found, TextSource):
            yield from found.iter_lines(split)
            return
        if isinstance(found, Path):
            lines: Iterable[str] = read_lines(found, self.encoding_errors)
        else:
            lines = (row["text"] if row["text"].endswith("\n") else row["text"] + "\n" for row in found)
        yield from wikitext_documents(lines)
