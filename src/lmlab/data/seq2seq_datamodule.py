"""LightningDataModule for generation tasks (translation, summarization): pairs -> token ids -> batches.

Pairs are read and tokenized in memory when the run starts (the batched Rust tokenizer: about a second
for Multi30k's 29,000 pairs), with ``max_*_samples`` caps applied while reading. Batches are padded to
their longest example (dynamic padding).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import PreTrainedTokenizerBase

from lmlab.data.seq2seq_batches import PairCollator, PairEncoder, ensure_pad_and_eos
from lmlab.data.sources import PairSource
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

STAGES = ("train", "validation", "test")
HEAD_LAYOUTS = {"seq2seq_lm": False, "causal_lm": True}  # head -> decoder-only


class Seq2SeqDataModule(LightningDataModule):
    """Source/target pairs for encoder-decoder or decoder-only models (the model head decides, ``set_head``).

    Args:
        source: where the pairs come from (``lmlab.data.PairSource``).
        tokenizer: how to get the tokenizer (pretrained, or trained on both sides of the training split).
        max_source_length: source tokens kept (decoder-only: the whole prompt, separator included).
        max_target_length: target tokens kept, the final EOS included.
        source_prefix: text put before every source (T5 style: ``"translate English to German: "``).
        prompt_separator: decoder-only models: text between the source and the target.
        max_train_samples, max_eval_samples, max_test_samples: use only the first N pairs of a split.
        holdout_fraction: without ``splits.validation``, validate on every round(1/x)-th training pair.
        splits: the source split each stage reads (``null`` skips the stage).
    """

    def __init__(
        self,
        source: PairSource,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        max_source_length: int = 256,
        max_target_length: int = 128,
        source_prefix: str = "",
        prompt_separator: str = "\n",
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        max_test_samples: int | None = None,
        holdout_fraction: float = 0.0,
        num_workers: int = 0,
        pin_memory: bool = True,
        splits: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__()
        splits = dict(splits or {"train": "train", "validation": "validation", "test": "test"})
        unknown = set(splits) - set(STAGES)
        if unknown:
            raise ConfigError(f"data.splits has unknown keys {sorted(unknown)}; use {STAGES}")
        for name, value in (
            ("max_source_length", max_source_length),
            ("max_target_length", max_target_length),
        ):
            if value < 2:
                raise ConfigError(f"data.{name}={value} must be at least 2")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be at least 1")
        if not 0.0 <= holdout_fraction < 0.5:
            raise ConfigError(f"data.holdout_fraction={holdout_fraction} must be in [0, 0.5)")
        self.source, self.tokenizer_spec, self.cache_dir = source, tokenizer, cache_dir
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.source_prefix, self.prompt_separator = source_prefix, prompt_separator
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_test_samples}
        self.holdout_every = round(1 / holdout_fraction) if holdout_fraction > 0 else 0
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.splits = {stage: split for stage, split in splits.items() if split}
        self.decoder_only = False
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.features: dict[str, list[dict[str, Any]]] = {}

    def set_head(self, head: str) -> None:
        """The model head decides the layout: ``seq2seq_lm`` (encoder-decoder) or ``causal_lm`` (decoder-only)."""
        if head not in HEAD_LAYOUTS:
            raise ConfigError(
                f"this data (source/target pairs) is for generation tasks with a seq2seq_lm or causal_lm model, "
                f"not {head}; use task=seq2seq or task=causal_seq2seq"
            )
        self.decoder_only = HEAD_LAYOUTS[head]

    # What the model must accept: checked against its maximum positions before any data preparation.
    @property
    def sequence_length(self) -> int:
        if self.decoder_only:
            return self.max_source_length + self.max_target_length
        return max(self.max_source_length, self.max_target_length)

    @property
    def length_field(self) -> str:
        if self.decoder_only:
            return "data.max_source_length + data.max_target_length"
        return (
            "data.max_source_length"
            if self.max_source_length >= self.max_target_length
            else "data.max_target_length"
        )

    def module_kwargs(self) -> dict[str, Any]:
        """What the task module needs to know about the data: the longest prompt it will generate from."""
        return {"max_prompt_length": self.max_source_length}

    def has_stage(self, stage: str) -> bool:
        stage = {"validate": "validation"}.get(stage, stage)
        return stage in self.splits or (stage == "validation" and self._holds_out())

    def _holds_out(self) -> bool:
        return self.holdout_every > 0 and "validation" not in self.splits and "train" in self.splits

    def check(self) -> None:
        """Find every split and check its columns (or line counts) before any expensive work."""
        self.source.check(list(dict.fromkeys(self.splits.values())))
        values = list(self.splits.values())
        for split in {s for s in values if values.count(s) > 1}:
            stages = [stage for stage, s in self.splits.items() if s == split]
            log.warning("Stages %s all read the %r split; their metrics are not independent", stages, split)

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            self.tokenizer = self.tokenizer_spec.load(self.source, self.splits.get("train"), self.cache_dir)
            ensure_pad_and_eos(self.tokenizer)
        return self.tokenizer

    def prepare_data(self) -> None:
        """Read and tokenize every split (in memory; empty or malformed pairs fail here, before the model)."""
        if self.features:
            return
        encoder = PairEncoder(
            self.prepare_tokenizer(), self.decoder_only, self.max_source_length, self.max_target_length,
            self.source_prefix, self.prompt_separator,
        )  # fmt: skip
        pairs = {}
        for stage, split in self.splits.items():
            limit = None if stage == "train" and self._holds_out() else self.limits[stage]
            pairs[stage] = self.source.pairs(split, limit)
        if self._holds_out():
            every, train = self.holdout_every, pairs["train"]
            pairs["validation"] = [p for i, p in enumerate(train) if i % every == every - 1][
                : self.limits["validation"]
            ]
            pairs["train"] = [p for i, p in enumerate(train) if i % every != every - 1][
                : self.limits["train"]
            ]
        for stage, stage_pairs in pairs.items():
            what = f"{stage} ({self.source.describe(self.splits['train' if stage not in self.splits else stage])})"
            self.features[stage] = encoder.encode(stage_pairs, what)
            log.info("%s: %d pairs", what, len(stage_pairs))

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a no-op when done; needed on ranks whose prepare_data Lightning skipped

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "collate_fn": PairCollator(self.prepare_tokenizer()),
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory and torch.cuda.is_available(),
        }

    def train_dataloader(self) -> StatefulDataLoader:
        # Stateful: a mid-epoch resume continues with the very batch that came next.
        return StatefulDataLoader(
            self.features["train"], batch_size=self.batch_size, shuffle=True, drop_last=False,
            persistent_workers=self.num_workers > 0, **self._loader_kwargs(),
        )  # fmt: skip

    def eval_dataloader(self, stage: str) -> DataLoader:
        if stage not in self.features:
            raise ConfigError(f"no {stage} split is configured: set data.splits.{stage}")
        # In index order: the first examples are the ones generation runs on during validation.
        return DataLoader(
            self.features[stage], batch_size=self.eval_batch_size, shuffle=False, **self._loader_kwargs()
        )

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")
