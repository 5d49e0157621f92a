"""LightningDataModule for generation tasks (translation, summarization): pairs -> token ids -> batches.

Pairs are read and tokenized in memory when the run starts (the batched Rust tokenizer: about a second
for Multi30k's 29,000 pairs), with ``max_*_samples`` caps applied while reading. Batches are padded to
their longest example (dynamic padding).
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmlab.data.base import BaseDataModule, stage_name
from lmlab.data.seq2seq_batches import PairCollator, PairEncoder, ensure_pad_and_eos
from lmlab.data.sources import PairSource
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError

log = logging.getLogger(__name__)
HEAD_LAYOUTS = {"seq2seq_lm": False, "causal_lm": True}  # head -> decoder-only


class Seq2SeqDataModule(BaseDataModule):
    """Source/target pairs for encoder-decoder or decoder-only models (the model head decides, ``set_head``).

    Args (beyond ``BaseDataModule``'s):
        source: where the pairs come from (``lmlab.data.PairSource``).
        tokenizer: how to get the tokenizer (pretrained, or trained on both sides of the training split).
        max_source_length: source tokens kept (decoder-only: the whole prompt, separator included).
        max_target_length: target tokens kept, the final EOS included.
        source_prefix: text put before every source (T5 style: ``"translate English to German: "``).
        prompt_separator: decoder-only models: text between the source and the target.
        max_train_samples, max_eval_samples, max_test_samples: use only the first N pairs of a split.
        holdout_fraction: without ``splits.validation``, validate on every round(1/x)-th training pair.
    """

    KIND = "source/target pair data (e.g. data=multi30k or data=seq2seq_files)"
    DEFAULT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
    DROP_LAST = False  # every training pair is used each epoch

    def __init__(
        self,
        source: PairSource,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        max_source_length: int = 256,
        max_target_length: int = 128,
        source_prefix: str = "",
        prompt_separator: str = "\n",
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        max_test_samples: int | None = None,
        holdout_fraction: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, tokenizer, cache_dir, **kwargs)
        for name, value in (
            ("max_source_length", max_source_length),
            ("max_target_length", max_target_length),
        ):
            if value < 2:
                raise ConfigError(f"data.{name}={value} must be at least 2")
        if not 0.0 <= holdout_fraction < 0.5:
            raise ConfigError(f"data.holdout_fraction={holdout_fraction} must be in [0, 0.5)")
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.source_prefix, self.prompt_separator = source_prefix, prompt_separator
        self.limits = {"train": max_train_samples, "validation": max_eval_samples, "test": max_test_samples}
        self.holdout_every = round(1 / holdout_fraction) if holdout_fraction > 0 else 0
        self.decoder_only = False
        self.features: dict[str, list[dict[str, Any]]] = {}

    def set_head(self, head: str) -> None:
        """The model head decides the layout: ``seq2seq_lm`` (encoder-decoder) or ``causal_lm`` (decoder-only)."""
        if head not in HEAD_LAYOUTS:
            raise ConfigError(
                f"this data (source/target pairs) is for generation tasks with a seq2seq_lm or causal_lm model, "
                f"not {head}; use task=seq2seq or task=causal_seq2seq"
            )
        self.decoder_only = HEAD_LAYOUTS[head]

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
        stage = stage_name(stage)
        return stage in self.splits or (stage == "validation" and self._holds_out())

    def select(self, *stages: str, max_samples: int | None = None) -> None:
        """Evaluation reads the first ``max_samples`` pairs of each selected split (None: all of them,
        whatever ``max_*_samples`` the training run used)."""
        super().select(*stages)
        self.limits = dict.fromkeys(self.limits, max_samples)

    def _holds_out(self) -> bool:
        return self.holdout_every > 0 and "validation" not in self.splits and "train" in self.splits

    def adapt_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
        ensure_pad_and_eos(tokenizer)
        return tokenizer

    def prepare_data(self) -> None:
        """Read and tokenize every split (in memory; empty or malformed pairs fail here, before the model)."""
        if self.features:
            return
        encoder = self.pair_encoder()
        limits = self.limits
        pairs = {}
        for stage, split in self.splits.items():
            limit = None if stage == "train" and self._holds_out() else limits[stage]
            pairs[stage] = self.source.pairs(split, limit)
        if self._holds_out():
            every, train = self.holdout_every, pairs["train"]
            pairs["validation"] = [p for i, p in enumerate(train) if i % every == every - 1][
                : limits["validation"]
            ]
            pairs["train"] = [p for i, p in enumerate(train) if i % every != every - 1][: limits["train"]]
        for stage, stage_pairs in pairs.items():
            what = f"{stage} ({self.source.describe(self.splits['train' if stage not in self.splits else stage])})"
            self.features[stage] = encoder.encode(stage_pairs, what)
            log.info("%s: %d pairs", what, len(stage_pairs))

    def pair_encoder(self) -> PairEncoder:
        """What turns this data's pairs into features (``encode(pairs, what)``)."""
        return PairEncoder(
            self.prepare_tokenizer(), self.decoder_only, self.max_source_length, self.max_target_length,
            self.source_prefix, self.prompt_separator,
        )  # fmt: skip

    @property
    def collate_fn(self) -> PairCollator:
        return PairCollator(self.prepare_tokenizer())

    def train_dataset(self) -> list[dict[str, Any]]:
        return self.features["train"]

    def eval_datasets(self, stage: str) -> list[list[dict[str, Any]]]:
        # In index order: the first examples are the ones generation runs on during validation.
        return [self.features[stage]]
