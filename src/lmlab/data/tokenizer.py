"""Tokenizers: a pretrained one by name or path, or a subword tokenizer trained on the training split.

Trained tokenizers are byte-level BPE (GPT-2 style, for causal LMs: every byte sequence is representable,
so no word is ever lost to an unknown token) or WordPiece (BERT style, for masked LMs: unseen words are
split into known pieces, ``##``-continued). They are cached by corpus and settings, and saved with every
run and export; a cached tokenizer that cannot be read is a DataError naming the file and the folder to
delete.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from lmlab.errors import ConfigError, DataError
from lmlab.utils.io import atomic_write_dir

if TYPE_CHECKING:
    from lmlab.data.sources import TextSource

log = logging.getLogger(__name__)


class TokenizerSpec(ABC):
    """How to obtain the tokenizer of a run."""

    @abstractmethod
    def load(
        self, source: TextSource, train_split: str | None, cache_dir: str | Path
    ) -> PreTrainedTokenizerBase: ...


class GivenTokenizer(TokenizerSpec):
    """A tokenizer object that is already loaded (evaluation: the one saved with the checkpoint)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def load(
        self, source: TextSource, train_split: str | None, cache_dir: str | Path
    ) -> PreTrainedTokenizerBase:
        return self.tokenizer


class PretrainedTokenizer(TokenizerSpec):
    """``AutoTokenizer.from_pretrained(name_or_path)``: a hub name or a local folder (e.g. an lmlab export)."""

    def __init__(
        self, name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
    ) -> None:
        if not name_or_path:
            raise ConfigError(
                "tokenizer.name_or_path is empty: set it to a hub name or a local tokenizer folder"
            )
        self.name_or_path, self.revision, self.trust_remote_code = (
            str(name_or_path),
            revision,
            trust_remote_code,
        )

    def load(
        self, source: TextSource, train_split: str | None, cache_dir: str | Path
    ) -> PreTrainedTokenizerBase:
        from lmlab.models import load_pretrained_or_explain

        return load_pretrained_or_explain(
            AutoTokenizer.from_pretrained,
            self.name_or_path,
            "tokenizer.name_or_path",
            revision=self.revision,
            trust_remote_code=self.trust_remote_code,
        )


class TrainedTokenizer(TokenizerSpec):
    """Train a byte-level BPE or WordPiece tokenizer on the training split (once; cached)."""

    def __init__(
        self,
        kind: str = "bpe",
        vocab_size: int = 8192,
        min_frequency: int = 2,
        lowercase: bool = False,
        max_lines: int | None = None,
        atomic_tokens: list[str] | None = None,
    ) -> None:
        if kind not in ("bpe", "wordpiece"):
            raise ConfigError(
                f"tokenizer.kind={kind!r} must be 'bpe' (causal LMs) or 'wordpiece' (masked LMs)"
            )
        if vocab_size < 300:
            raise ConfigError(
                f"tokenizer.vocab_size={vocab_size} is too small; use at least 300 (256 bytes + merges)"
            )
        if min_frequency < 0:
            raise ConfigError(f"tokenizer.min_frequency={min_frequency} must be 0 or more")
        if max_lines is not None and max_lines < 1:
            raise ConfigError(f"tokenizer.max_lines={max_lines} must be at least 1 (or null: every line)")
        self.kind, self.vocab_size, self.min_frequency = kind, vocab_size, min_frequency
        self.lowercase, self.max_lines = lowercase, max_lines
        # strings kept as one token, never split (e.g. WikiText's placeholder for rare words, "<unk>")
        self.atomic_tokens = list(atomic_tokens or [])

    def cache_key(self, source: TextSource, train_split: str) -> str:
        settings = f"{self.kind}:{self.vocab_size}:{self.min_frequency}:{self.lowercase}:{self.max_lines}"
        settings += f":{self.atomic_tokens}" if self.atomic_tokens else ""
        digest = hashlib.sha256(f"{settings}|{source.fingerprint(train_split)}".encode()).hexdigest()[:16]
        return f"{self.kind}-{self.vocab_size}-{digest}"

    def load(
        self, source: TextSource, train_split: str | None, cache_dir: str | Path
    ) -> PreTrainedTokenizerBase:
        if not train_split:
            raise ConfigError(
                "a tokenizer trained on the corpus needs a training split: set data.splits.train"
            )
        folder = Path(cache_dir) / "tokenizers" / self.cache_key(source, train_split)
        folder.parent.mkdir(parents=True, exist_ok=True)
        # One process trains, the others (DDP ranks, parallel sweep jobs) wait and reuse its result.
        with FileLock(str(folder) + ".lock"):
            if not (folder / "tokenizer.json").is_file():
                log.info(
                    "Training a %s tokenizer (vocab %d) on %s",
                    self.kind,
                    self.vocab_size,
                    source.describe(train_split),
                )
                with rust_tokenizer_threads():
                    tokenizer = self.train(source.iter_lines(train_split))
                atomic_write_dir(folder, tokenizer.save_pretrained)
                log.info("Saved the tokenizer to %s", folder)
        return _load_cached(folder)

    def train(self, lines) -> PreTrainedTokenizerFast:
        """Train on an iterator of ``(line, ends_document)`` pairs and wrap the result for transformers."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

        texts = (line for line, _ in (islice(lines, self.max_lines) if self.max_lines else lines))
        if self.kind == "bpe":
            special = ["<|endoftext|>", "<|pad|>", *self.atomic_tokens]
            tok = Tokenizer(models.BPE())
            if self.lowercase:
                tok.normalizer = normalizers.Lowercase()
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=self.vocab_size,
                min_frequency=self.min_frequency,
                special_tokens=special,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            )
            tok.train_from_iterator(_batches(texts), trainer=trainer)
            return PreTrainedTokenizerFast(
                tokenizer_object=tok,
                bos_token="<|endoftext|>",
                eos_token="<|endoftext|>",
                unk_token="<|endoftext|>",
                pad_token="<|pad|>",
                model_input_names=["input_ids", "attention_mask"],
            )
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *self.atomic_tokens]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=self.lowercase)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=self.vocab_size, min_frequency=self.min_frequency, special_tokens=special
        )
        tok.train_from_iterator(_batches(texts), trainer=trainer)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )


def _load_cached(folder: Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - whatever the damaged files make the tokenizer library raise
        from lmlab.models.hub import damaged_json

        why = damaged_json(folder) or f"{type(e).__name__}: {str(e).strip()[:200]}"
        raise DataError(
            f"the cached tokenizer in {folder} cannot be read: {why}. Fix: delete the folder {folder} "
            "(the next run trains the tokenizer again)"
        ) from None


@contextmanager
def rust_tokenizer_threads():
    """Let the Rust tokenizer use all cores while preparing data (1.6x faster on 2 cores).

    Outside it, TOKENIZERS_PARALLELISM stays "false" (set by the entry points), so forked DataLoader workers
    neither warn nor deadlock: the Rust thread pool is disabled in children of a process that used it.
    """
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def _batches(texts, size: int = 1000):
    while batch := list(islice(texts, size)):
        yield batch


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Changes whenever the tokenizer would produce different ids (used to key token caches)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    extra = f"{type(tokenizer).__name__}|{tokenizer.eos_token_id}|{tokenizer.sep_token_id}|{len(tokenizer)}"
    return hashlib.sha256(f"{body}|{extra}".encode()).hexdigest()[:16]


def document_separator_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token put between documents: EOS for causal LMs, SEP for BERT-style tokenizers."""
    for token_id in (tokenizer.eos_token_id, tokenizer.sep_token_id):
        if token_id is not None:
            return int(token_id)
    raise ConfigError(
        f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has neither an EOS nor a SEP token, so documents "
        "cannot be separated; use a tokenizer that defines one"
    )
