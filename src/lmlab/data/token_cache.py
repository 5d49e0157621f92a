"""Tokenize a split once and keep it as a flat, memory-mapped array of token ids on disk.

The cache is keyed by the source's fingerprint and the tokenizer's, not by block size: blocks are views
cut at load time, so changing ``data.block_size`` reuses the cache. A file lock makes one process build
it while the others (DDP ranks, parallel sweep jobs) wait and then reuse it; ``meta.json`` is written
last, so an interrupted build is never mistaken for a finished one. A cache damaged afterwards (an
unreadable ``meta.json``, a ``tokens.bin`` of the wrong size) is a DataError naming the folder to delete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path

import numpy as np
from filelock import FileLock
from transformers import PreTrainedTokenizerBase

from lmlab.data.sources import Lines, TextSource
from lmlab.data.tokenizer import document_separator_id, rust_tokenizer_threads, tokenizer_fingerprint
from lmlab.errors import DataError
from lmlab.utils.io import atomic_write_json

log = logging.getLogger(__name__)

CACHE_VERSION = 1
BATCH_LINES = 4096


def token_cache_dir(
    cache_dir: str | Path, source: TextSource, split: str, tokenizer: PreTrainedTokenizerBase
) -> Path:
    key = f"{CACHE_VERSION}|{source.fingerprint(split)}|{tokenizer_fingerprint(tokenizer)}|{document_separator_id(tokenizer)}"
    return Path(cache_dir) / "tokens" / hashlib.sha256(key.encode()).hexdigest()[:20]


def build_token_cache(
    source: TextSource,
    split: str,
    tokenizer: PreTrainedTokenizerBase,
    cache_dir: str | Path,
    num_proc: int = 1,
) -> Path:
    """Return the folder holding ``tokens.bin`` + ``meta.json`` for this split, building it if needed."""
    folder = token_cache_dir(cache_dir, source, split, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if (folder / "meta.json").is_file():
            read_meta(folder)  # a damaged cache fails here, before training starts
            return folder
        start = time.perf_counter()
        log.info("Tokenizing %s (%s) into %s", split, source.describe(split), folder)
        dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
        separator = document_separator_id(tokenizer)
        tmp = folder / f"tokens.bin.tmp-{os.getpid()}"
        n_tokens = n_docs = n_lines = 0
        try:
            with rust_tokenizer_threads(), open(tmp, "wb") as f:
                for ids, ends in _encode_batches(source.iter_lines(split), tokenizer, num_proc):
                    chunk = join_lines(ids, ends, separator, dtype)
                    chunk.tofile(f)
                    n_tokens += len(chunk)
                    n_docs += sum(ends)
                    n_lines += len(ids)
            if n_tokens == 0:
                raise DataError(
                    f"the {split} split ({source.describe(split)}) holds no text; give it text, or check "
                    "data.splits and the source settings (e.g. data.source.doc_boundary, data.source.val_fraction)"
                )
            os.replace(tmp, folder / "tokens.bin")
        finally:
            tmp.unlink(missing_ok=True)
        seconds = time.perf_counter() - start
        meta = {
            "n_tokens": n_tokens,
            "n_documents": n_docs,
            "n_lines": n_lines,
            "dtype": np.dtype(dtype).name,
            "separator_id": separator,
            "source": source.describe(split),
            "tokenizer": getattr(tokenizer, "name_or_path", ""),
            "seconds": round(seconds, 3),
        }
        atomic_write_json(folder / "meta.json", meta)
        log.info("Tokenized %s: %d tokens, %d documents in %.1f s", split, n_tokens, n_docs, seconds)
    return folder


def load_tokens(folder: str | Path) -> np.memmap:
    """The cached token ids as a read-only memory map (nothing is loaded into RAM up front)."""
    folder = Path(folder)
    meta = read_meta(folder)
    return np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["n_tokens"],))


def read_meta(folder: Path) -> dict:
    """``meta.json`` of a finished cache, checked against ``tokens.bin``; a DataError if they do not fit."""
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text())
        n_tokens, dtype = int(meta["n_tokens"]), np.dtype(meta["dtype"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _damaged(folder, f"{path} cannot be read ({type(e).__name__}: {e})") from None
    tokens = folder / "tokens.bin"
    size = tokens.stat().st_size if tokens.is_file() else None
    if size != n_tokens * dtype.itemsize:
        found = "is missing" if size is None else f"has {size} bytes"
        raise _damaged(
            folder,
            f"{tokens} {found}, but {path} says {n_tokens} tokens of {dtype} ({n_tokens * dtype.itemsize} bytes)",
        )
    return meta


def _damaged(folder: Path, what: str) -> DataError:
    return DataError(
        f"damaged token cache: {what}. Fix: delete the folder {folder} (the next run tokenizes the split again)"
    )


def join_lines(ids: list[list[int]], ends: list[bool], separator: int, dtype) -> np.ndarray:
    """Concatenate the lines' ids, with the separator after each line that ends a document."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=dtype, count=int(lengths.sum()))
    doc_ends = np.cumsum(lengths)[np.asarray(ends, dtype=bool)]
    return np.insert(flat, doc_ends, separator)


def _line_batches(lines: Lines) -> Iterator[tuple[list[str], list[bool]]]:
    while batch := list(islice(lines, BATCH_LINES)):
        texts, ends = zip(*batch, strict=True)
        yield list(texts), list(ends)


_worker_tokenizer: PreTrainedTokenizerBase | None = None


def _init_worker(tokenizer: PreTrainedTokenizerBase) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def encode_lines(texts: list[str], tokenizer: PreTrainedTokenizerBase | None = None) -> list[list[int]]:
    tokenizer = tokenizer or _worker_tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast path: the Rust tokenizer, batched and multi-threaded, no offsets
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _encode_batches(lines: Lines, tokenizer: PreTrainedTokenizerBase, num_proc: int):
    batches = _line_batches(lines)
    if num_proc <= 1:
        for texts, ends in batches:
            yield encode_lines(texts, tokenizer), ends
        return
    # Separate processes (spawned: forking after the Rust thread pool has started can deadlock).
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_proc, initializer=_init_worker, initargs=(tokenizer,)) as pool:
        pending: list = []
        for texts, ends in batches:
            pending.append((pool.apply_async(encode_lines, (texts,)), ends))
            if len(pending) > 2 * num_proc:  # bounded: memory stays flat however large the corpus
                result, e = pending.pop(0)
                yield result.get(), e
        for result, e in pending:
            yield result.get(), e
