"""LightningDataModule for sentence and sentence-pair classification/regression (GLUE and your own tables)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from lmlab.data.base import BaseDataModule, stage_name
from lmlab.data.sources import ClassificationSpec, Example
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

# names of the sets in log lines and in ``truncated`` (the keys users see in metrics.json)
_SET_NAMES = {"train": "train", "validation": "eval", "test": "test", "predict": "predict"}


class ClassificationDataModule(BaseDataModule):
    """Tokenizes examples (truncating to ``max_length`` and counting how many were cut) and pads each batch
    to its longest sequence (dynamic padding). The source names its sets (GLUE: MNLI has two dev sets).

    Args (beyond ``BaseDataModule``'s):
        source: ``GlueSource`` or ``TableSource``.
        max_train_samples / max_eval_samples / max_predict_samples: keep only the first N examples of each
            set (quick runs, as in the Hugging Face recipes); null = all.
    """

    KIND = "labeled examples (e.g. data=glue or data=table)"
    DEFAULT_SPLITS = {}  # the source decides which sets exist
    DROP_LAST = False  # every training example is used each epoch, as in the reference recipe
    STAGES = ("train", "validation", "test", "predict")

    def __init__(
        self,
        source: Any,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        max_length: int = 128,
        batch_size: int = 32,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        max_predict_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, tokenizer, cache_dir, batch_size=batch_size, **kwargs)
        if max_length < 8:
            raise ConfigError(f"data.max_length={max_length} is too short; use at least 8")
        self.max_length = max_length
        self.caps = {
            "train": max_train_samples,
            "validation": max_eval_samples,
            "test": max_eval_samples,
            "predict": max_predict_samples,
        }
        self.stages: tuple[str, ...] = self.STAGES
        self.sets: dict[str, list[list[dict[str, Any]]]] = {}
        self.truncated: dict[str, int] = {}

    @property
    def sequence_length(self) -> int:
        return self.max_length

    @property
    def length_field(self) -> str:
        return "data.max_length"

    @property
    def spec(self) -> ClassificationSpec:
        return self.source.spec

    def check(self, need_train: bool = True) -> None:
        self.source.check(need_train=need_train)

    def describe_data(self) -> dict[str, str]:
        return {"all": self.source.describe()}

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:  # trained on the training set when no pretrained tokenizer is given
            self.tokenizer = self.adapt_tokenizer(
                self.tokenizer_spec.load(self.source, "train", self.cache_dir)
            )
        return self.tokenizer

    def adapt_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ConfigError(
                    f"tokenizer {tokenizer.name_or_path!r} has no pad or EOS token to pad batches with"
                )
            log.warning(
                "Tokenizer %s has no pad token: padding with its EOS token on purpose", tokenizer.name_or_path
            )
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def head_config(self) -> dict[str, Any]:
        """Fields of the model config for this task: number of labels, regression or not, label names."""
        spec = self.spec
        config: dict[str, Any] = {"num_labels": spec.num_labels}
        if spec.is_regression:
            config["problem_type"] = "regression"
        else:
            config["problem_type"] = "single_label_classification"
            names = spec.label_names or spec.labels
            config["id2label"] = dict(enumerate(names))
            config["label2id"] = {name: i for i, name in enumerate(names)}
        return config

    def module_kwargs(self) -> dict[str, Any]:
        return {"spec": self.spec}

    def has_stage(self, stage: str) -> bool:
        """Whether there is data for a stage: GLUE has predictions (private test labels), no labeled test."""
        self.setup()
        return bool(self.sets.get(stage_name(stage)))

    def check_stage(self, stage: str, option: str = "split") -> None:
        if not self.has_stage(stage):
            raise ConfigError(f"{option}={stage!r}: {self.source.describe()} has no {stage} set")

    def select(self, *stages: str, max_samples: int | None = None) -> None:
        """Read only these stages; ``max_samples`` (if given) replaces every ``max_*_samples`` cap."""
        self.stages = tuple(stage_name(s) for s in stages)
        if max_samples is not None:
            self.caps = dict.fromkeys(self.caps, max_samples)

    def prepare_data(self) -> None:
        self.prepare_tokenizer()

    def setup(self, stage: str | None = None) -> None:
        tokenizer = self.prepare_tokenizer()
        readers = {
            "train": lambda: [("", self.source.train())],
            "validation": self.source.eval_sets,
            "test": self.source.test_sets,
            "predict": self.source.predict_sets,
        }
        for kind in self.stages:
            if kind in self.sets:
                continue
            cap = self.caps[kind]
            named = [(name, rows[:cap] if cap else rows) for name, rows in readers[kind]()]
            self.sets[kind] = [
                self._encode(rows, tokenizer, f"{_SET_NAMES[kind]}{name and ' ' + name}")
                for name, rows in named
            ]

    def _encode(
        self, rows: list[Example], tokenizer: PreTrainedTokenizerBase, what: str
    ) -> list[dict[str, Any]]:
        pairs = rows and rows[0].text_b is not None
        a = [r.text_a for r in rows]
        b = [r.text_b or "" for r in rows] if pairs else None
        separator = _needs_separator(tokenizer)
        if separator:  # e.g. GPT-2 style: no template joins the pair, so put EOS between and after
            a = [t + tokenizer.eos_token for t in a]
            b = [t + tokenizer.eos_token for t in b] if b is not None else None
        full = tokenizer(a, b, truncation=False)["input_ids"]
        n_long = sum(len(ids) > self.max_length for ids in full)
        enc = tokenizer(a, b, truncation=True, max_length=self.max_length)
        if n_long:
            log.warning(
                "%s: %d of %d examples (%.2f%%) were longer than data.max_length=%d tokens and were truncated",
                what, n_long, len(rows), 100 * n_long / max(len(rows), 1), self.max_length,
            )  # fmt: skip
        self.truncated[what] = n_long
        keys = [k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")]
        out = []
        for i, row in enumerate(rows):
            item = {k: enc[k][i] for k in keys}
            item["idx"] = row.idx
            if row.label is not None:
                item["labels"] = row.label
            out.append(item)
        return out

    @property
    def collate_fn(self):
        return self._collate

    def _collate(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = [dict(x) for x in batch]
        idx = torch.tensor([x.pop("idx") for x in batch])
        labels = [x.pop("labels") for x in batch] if "labels" in batch[0] else None
        out = DataCollatorWithPadding(self.tokenizer, return_tensors="pt")(batch)
        out["idx"] = idx
        if labels is not None:
            dtype = torch.float32 if self.spec.is_regression else torch.long
            out["labels"] = torch.tensor(labels, dtype=dtype)
        return dict(out)

    def train_dataset(self) -> list[dict[str, Any]]:
        return self.sets["train"][0]

    def eval_datasets(self, stage: str) -> list[list[dict[str, Any]]]:
        return self.sets[stage]


def _needs_separator(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True for tokenizers that add no special tokens to a pair (GPT-2 style) but have an EOS token."""
    try:
        adds = tokenizer.num_special_tokens_to_add(pair=True)
    except Exception:  # noqa: BLE001
        adds = 0
    return adds == 0 and tokenizer.eos_token is not None
