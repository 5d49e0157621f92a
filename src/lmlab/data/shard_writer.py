"""Tokenize a text corpus into litdata token shards (``prepare_data.py``), in parallel and restartable.

Each split's lines are read once, in order, and cut into parts of about ``part_mb`` MB of text. A part is one
``litdata.optimize`` call: ``num_workers`` processes tokenize its batches of lines and append them to the split's
litdata dataset, in chunks of at most ``chunk_tokens`` tokens (``TokensLoader``: flat token ids). The tokens
are the token cache's (``lmlab.data.token_cache``): the same encoding of each line and the same separator
after each document, so shards and cache hold the same stream.

Restarts: after each part, ``lmlab_progress.json`` records how many parts of each split are done and how many
chunks the split's index then held. The same command run again after a kill reads the text up to the first
unfinished part without tokenizing it, removes what the killed part left behind, and goes on. A part's
chunks depend only on its text and the settings, so the shards equal those of an uninterrupted run; the
settings that decide them (tokenizer, chunk and part size, workers) are recorded, and a restart with other
settings is refused.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from lmlab.data.optimize_interrupt import interrupt_exits_130
from lmlab.data.sources import Lines, TextSource
from lmlab.data.sources.shards import FORMAT_VERSION, MANIFEST, PROGRESS, TOKENIZER_DIR, ShardLocation
from lmlab.data.token_cache import BATCH_LINES, encode_lines, join_lines
from lmlab.data.tokenizer import document_separator_id, tokenizer_fingerprint
from lmlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

START_METHODS = ("spawn", "fork", "forkserver")


@dataclass(frozen=True)
class TextBatch:
    """Lines for one worker call, with the document ends. A class, not a tuple: litdata looks for file
    paths in the strings of plain inputs, and a line of text could look like one."""

    texts: list[str]
    ends: list[bool]


class TokenizeBatch:
    """What each litdata worker does with a ``TextBatch``: its token ids, joined as the token cache joins them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, separator: int, dtype: str) -> None:
        self.tokenizer, self.separator, self.dtype = tokenizer, separator, np.dtype(dtype)

    def __call__(self, batch: TextBatch) -> np.ndarray | None:
        tokens = join_lines(encode_lines(batch.texts, self.tokenizer), batch.ends, self.separator, self.dtype)
        return tokens if len(tokens) else None  # litdata skips None


@dataclass(frozen=True)
class ShardSettings:
    """How shards are cut; ``num_workers`` too, since litdata names and fills chunks per worker."""

    chunk_tokens: int = 1 << 23
    part_mb: float = 256.0
    num_workers: int = 1
    start_method: str = "spawn"

    def check(self) -> None:
        if self.chunk_tokens < 2:
            raise ConfigError(f"chunk_tokens={self.chunk_tokens} must be at least 2 (tokens per chunk)")
        if self.part_mb <= 0:
            raise ConfigError(f"part_mb={self.part_mb} must be positive (MB of text per restartable part)")
        if self.num_workers < 1:
            raise ConfigError(
                f"num_workers={self.num_workers} must be at least 1 (or null: one per CPU core)"
            )
        if self.start_method not in START_METHODS:
            raise ConfigError(f"start_method={self.start_method!r} must be one of {START_METHODS}")


def write_shards(
    source: TextSource,
    splits: dict[str, str],
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_record: dict[str, Any],
    location: ShardLocation,
    settings: ShardSettings,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the shards of ``splits`` (stage -> source split) to ``location``; return the manifest."""
    settings.check()
    separator = document_separator_id(tokenizer)
    dtype = "uint16" if len(tokenizer) <= np.iinfo(np.uint16).max else "uint32"
    recorded = {
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "separator_id": separator,
        "dtype": dtype,
        "chunk_tokens": settings.chunk_tokens,
        "part_mb": settings.part_mb,
        "num_workers": settings.num_workers,
        "sources": {stage: source.fingerprint(split) for stage, split in splits.items()},
    }
    manifest, progress = location.read_json(MANIFEST), location.read_json(PROGRESS)
    taken = [
        name
        for name in (TOKENIZER_DIR, *splits)
        if not location.remote and Path(location.join(name)).exists()
    ]
    if manifest is None and progress is None and taken:
        raise ConfigError(
            f"location={location} already has {', '.join(taken)} but holds no shards made by prepare_data.py; "
            "choose a new or empty folder"
        )
    if manifest is not None and not overwrite:
        if manifest.get("settings") == recorded:
            log.info("%s already holds these shards: nothing to do", location)
            return manifest
        raise ConfigError(
            f"location={location} already holds shards made with other settings ({_differences(manifest, recorded)}"
            "). Choose another location, or add overwrite=true to replace them"
        )
    if progress is not None and not overwrite and progress.get("settings") != recorded:
        raise ConfigError(
            f"location={location} holds an unfinished preparation with other settings ("
            f"{_differences(progress, recorded)}). Run it again with its settings to finish it, choose another "
            "location, or add overwrite=true to start over"
        )
    if overwrite or progress is None:
        for name in (MANIFEST, PROGRESS, TOKENIZER_DIR, *splits, *(manifest or {}).get("splits", {})):
            location.delete(name)
        progress = {"settings": recorded, "splits": {}}
        location.write_json(PROGRESS, progress)  # first: the location now holds a preparation under way
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        files = sorted(p.name for p in Path(tmp).iterdir() if p.is_file())
        location.put_folder(Path(tmp), TOKENIZER_DIR)

    tokenize = TokenizeBatch(tokenizer, separator, dtype)
    logging.getLogger("litdata").setLevel(logging.WARNING)  # its per-call cache notices, not ours to show
    written = {}
    for stage, split in splits.items():
        start = time.perf_counter()
        written[stage] = _write_split(stage, source.iter_lines(split), location, progress, tokenize, settings)
        written[stage]["source"] = source.describe(split)
        log.info(
            "%s: %d tokens, %d documents in %d chunks (%.1f s)", stage, written[stage]["tokens"],
            written[stage]["documents"], len(written[stage]["chunks"]), time.perf_counter() - start,
        )  # fmt: skip
    manifest = {
        "format": FORMAT_VERSION,
        "settings": recorded,
        "tokenizer": {**tokenizer_record, "fingerprint": recorded["tokenizer"], "files": files},
        "dtype": dtype,
        "separator_id": separator,
        "splits": written,
    }
    location.write_json(MANIFEST, manifest)  # last: the shards are complete
    location.delete(PROGRESS)
    return manifest


def _write_split(
    stage: str,
    lines: Lines,
    location: ShardLocation,
    progress: dict[str, Any],
    tokenize: TokenizeBatch,
    settings: ShardSettings,
) -> dict[str, Any]:
    """Tokenize one split part by part, skipping the parts a previous run finished."""
    try:
        from litdata import TokensLoader, optimize
    except ModuleNotFoundError as e:  # installed apart from the project (README, Set-up)
        raise ConfigError(
            f'prepare_data.py needs litdata ({e}): pip install --no-deps "litdata>=0.2.76" (see the README, Set-up)'
        ) from None
    from tqdm import tqdm

    done = progress["splits"].setdefault(stage, {"parts": 0, "chunks": 0})
    index = location.read_json(f"{stage}/index.json")
    chunks = len(index["chunks"]) if index else 0
    if chunks > done["chunks"]:  # killed after litdata wrote a part's index, before our record of it
        done.update(parts=done["parts"] + 1, chunks=chunks)
    elif chunks < done["chunks"]:
        raise DataError(
            f"{location.join(stage, 'index.json')} lists {chunks} chunks, but {location.join(PROGRESS)} records "
            f"{done['chunks']}: the shards were changed by something else. Fix: prepare again with overwrite=true"
        )
    documents = 0
    with tqdm(desc=f"{stage} text", unit="B", unit_scale=True, disable=None) as bar:
        for number, (part, size) in enumerate(_parts(lines, int(settings.part_mb * 2**20))):
            documents += sum(sum(batch.ends) for batch in part)
            bar.update(size)
            if number >= done["parts"]:  # parts finished before a restart are read again, not tokenized again
                _remove_leftovers(location, stage, index)
                with interrupt_exits_130():
                    optimize(
                        fn=tokenize, inputs=part, output_dir=location.join(stage),
                        chunk_size=settings.chunk_tokens, num_workers=min(settings.num_workers, len(part)),
                        item_loader=TokensLoader(), mode="append" if number else "overwrite",
                        keep_data_ordered=True, verbose=False, start_method=settings.start_method,
                        storage_options=location.storage_options,
                    )  # fmt: skip
                index = location.read_json(f"{stage}/index.json")
                done.update(parts=number + 1, chunks=len(index["chunks"]) if index else 0)
                location.write_json(PROGRESS, progress)
                log.info("%s: part %d done (%d chunks so far)", stage, number + 1, done["chunks"])
            # Memory flat in corpus size: one part's text at a time. The loop keeps the list until the next part
            # is read, and litdata's workers (each holding its share) live in reference cycles: empty it, collect.
            part.clear()
            gc.collect()
    if not index:
        raise DataError(
            f"the {stage} split holds no text; give it text, or check data.splits and the source settings"
        )
    dims = [int(chunk["dim"]) for chunk in index["chunks"]]
    return {"tokens": sum(dims), "documents": documents, "chunks": dims}


def _parts(lines: Lines, part_chars: int) -> Iterator[tuple[list[TextBatch], int]]:
    """The split's lines in batches, cut into parts of at least ``part_chars`` characters (the last one: less).

    A batch holds at most ``BATCH_LINES`` lines and a 64th of a part, so that every part keeps all workers
    busy; batches are litdata's items, hence fixed by the settings alone (restarts cut them the same way).
    """
    batch_chars = max(part_chars // 64, 1)
    part: list[TextBatch] = []
    texts: list[str] = []
    ends: list[bool] = []
    size = batch_size = 0
    for text, end in lines:
        texts.append(text)
        ends.append(end)
        batch_size += len(text)
        if len(texts) >= BATCH_LINES or batch_size >= batch_chars:
            part.append(TextBatch(texts, ends))
            size, texts, ends, batch_size = size + batch_size, [], [], 0
            if size >= part_chars:
                yield part, size
                part, size = [], 0
    if texts:
        part.append(TextBatch(texts, ends))
        size += batch_size
    if part:
        yield part, size


def _remove_leftovers(location: ShardLocation, stage: str, index: dict[str, Any] | None) -> None:
    """Delete the chunks and worker index files a killed part left in a local split folder (litdata would
    merge a stale worker index). Remote prefixes keep them: the restarted part writes the same names over."""
    folder = Path(location.join(stage))
    if location.remote or not folder.is_dir():
        return
    keep = {"index.json", *(chunk["filename"] for chunk in (index or {}).get("chunks", []))}
    for path in folder.iterdir():
        if path.name not in keep and (path.suffix == ".bin" or path.name.endswith("index.json")):
            path.unlink()


def _differences(previous: dict[str, Any], current: dict[str, Any]) -> str:
    before = previous.get("settings", {})
    keys = sorted(k for k in set(before) | set(current) if before.get(k) != current.get(k))
    return "; ".join(f"{k}: {before.get(k)!r} there, {current.get(k)!r} now" for k in keys) or "unknown"


def default_workers() -> int:
    """One tokenizing process per CPU core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
