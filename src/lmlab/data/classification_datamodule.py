"""LightningDataModule for sentence and sentence-pair classification/regression (GLUE and your own tables)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from lmlab.data.loaders import train_loader
from lmlab.data.sources import ClassificationSpec, Example
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError

log = logging.getLogger(__name__)


class ClassificationDataModule(LightningDataModule):
    """Tokenizes examples (truncating to ``max_length`` and counting how many were cut) and pads each batch
    to its longest sequence (dynamic padding).

    Args:
        source: ``GlueSource`` or ``TableSource``.
        max_train_samples / max_eval_samples / max_predict_samples: keep only the first N examples of each
            set (quick runs, as in the Hugging Face recipes); null = all.
    """

    length_field = "data.max_length"

    def __init__(
        self,
        source: Any,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        max_predict_samples: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if max_length < 8:
            raise ConfigError(f"data.max_length={max_length} is too short; use at least 8")
        self.source, self.tokenizer_spec, self.cache_dir = source, tokenizer, cache_dir
        self.max_length, self.batch_size = max_length, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.caps = {"train": max_train_samples, "eval": max_eval_samples, "predict": max_predict_samples}
        self.num_workers, self.seed = num_workers, seed
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.sets: dict[str, list[list[dict[str, Any]]]] = {}
        self.truncated: dict[str, int] = {}

    @property
    def sequence_length(self) -> int:
        return self.max_length

    @property
    def spec(self) -> ClassificationSpec:
        return self.source.spec

    def check(self, need_train: bool = True) -> None:
        self.source.check(need_train=need_train)

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            tokenizer = self.tokenizer_spec.load(self.source, "train", self.cache_dir)
            if tokenizer.pad_token_id is None:
                if tokenizer.eos_token_id is None:
                    raise ConfigError(
                        f"tokenizer {tokenizer.name_or_path!r} has no pad or EOS token to pad batches with"
                    )
                log.warning(
                    "Tokenizer %s has no pad token: padding with its EOS token on purpose",
                    tokenizer.name_or_path,
                )
                tokenizer.pad_token = tokenizer.eos_token
            self.tokenizer = tokenizer
        return self.tokenizer

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
        return bool(
            self.sets.get({"validate": "eval", "validation": "eval", "fit": "train"}.get(stage, stage))
        )

    def prepare_data(self) -> None:
        self.prepare_tokenizer()

    def setup(
        self, stage: str | None = None, splits: tuple[str, ...] = ("train", "eval", "test", "predict")
    ) -> None:
        tokenizer = self.prepare_tokenizer()
        readers = {
            "train": lambda: [("", self.source.train())],
            "eval": self.source.eval_sets,
            "test": self.source.test_sets,
            "predict": self.source.predict_sets,
        }
        for kind in splits:
            if kind in self.sets:
                continue
            cap = self.caps["eval" if kind == "test" else kind]
            named = [(name, rows[:cap] if cap else rows) for name, rows in readers[kind]()]
            self.sets[kind] = [
                self._encode(rows, tokenizer, f"{kind}{name and ' ' + name}") for name, rows in named
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

    # ------------------------------------------------------------------------------------------- loaders
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

    def _loader(self, data: list[dict[str, Any]]) -> DataLoader:
        return DataLoader(
            data, batch_size=self.eval_batch_size, collate_fn=self._collate, num_workers=self.num_workers
        )

    def train_dataloader(self):
        # drop_last=False: every training example is used each epoch, as in the reference recipe
        train = self.sets["train"][0]
        return train_loader(
            train, self.batch_size, self.seed, self.trainer, self._collate, self.num_workers, False
        )

    def val_dataloader(self):
        return [self._loader(s) for s in self.sets["eval"]]

    def test_dataloader(self):
        return [self._loader(s) for s in self.sets["test"]]

    def predict_dataloader(self):
        return [self._loader(s) for s in self.sets["predict"]]


def _needs_separator(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True for tokenizers that add no special tokens to a pair (GPT-2 style) but have an EOS token."""
    try:
        adds = tokenizer.num_special_tokens_to_add(pair=True)
    except Exception:  # noqa: BLE001
        adds = 0
    return adds == 0 and tokenizer.eos_token is not None
