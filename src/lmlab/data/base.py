"""The contract between a DataModule and the stages that use it (training, evaluation), written once.

Every lmlab DataModule subclasses ``BaseDataModule``. The training stage (``lmlab.stages.train``) and the
evaluators (``lmlab.evaluation``) use only what is declared here, in this order:

1. ``set_head(head)``: the model head may decide the layout (generation: encoder-decoder or decoder-only).
2. ``check(need_train)``: find every configured split before any expensive work;
   ``check_loader_settings()``: the loader settings (workers, batch sizes) torch would refuse.
3. ``sequence_length``, ``fixed_length``, ``length_field``: what the model must accept, and whether every
   sequence has exactly that length (packed LM blocks) or at most that length (padded batches).
4. ``prepare_tokenizer()``, then ``prepare_data()``/``setup()`` (Lightning's hooks).
5. ``head_config()``: task fields of the model config (``num_labels``); ``module_kwargs()``: what the task
   module must know about the data.
6. ``has_stage(stage)``: whether there is data for ``validation``, ``test`` or ``predict``.
7. Loaders: ``train_dataloader()`` is the one sharded, seeded, resumable loader (``lmlab.data.loaders``);
   ``eval_loader(stage, batch_size, max_samples)`` is the one way to read a split in order, which
   Lightning's ``val/test/predict_dataloader`` and the evaluators all use. ``select(*stages, max_samples)``
   restricts what is read to the stages an evaluator needs, instead of editing the data config.

Subclasses provide the data (``train_dataset``, ``eval_datasets``) and say what differs (``collate_fn``,
their own checks); the split bookkeeping, batch sizes and loaders live here. Loaders are made inside
``lmlab.errors.config_stage``: loader settings torch rejects (``data.num_workers=-1``) are a ConfigError,
found by ``check_loader_settings()`` already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Subset
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import PreTrainedTokenizerBase

from lmlab.data.loaders import train_loader
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError, config_stage

log = logging.getLogger(__name__)

STAGES = ("train", "validation", "test")
# Lightning's stage names -> ours
_STAGE_ALIASES = {"validate": "validation", "fit": "train"}


def stage_name(stage: str) -> str:
    """``validate`` -> ``validation``, ``fit`` -> ``train``; other names unchanged."""
    return _STAGE_ALIASES.get(stage, stage)


class BaseDataModule(LightningDataModule):
    """A source of examples, a tokenizer, and the batches every stage reads (see the module docstring).

    Args:
        source: where the examples come from (``lmlab.data.sources``).
        tokenizer: how to get the tokenizer (pretrained, or trained on the training split).
        cache_dir: where tokenizers and token caches are kept.
        batch_size: examples per device per training step; ``eval_batch_size`` for the other stages.
        splits: the source split each stage reads (``null`` skips the stage); ``DEFAULT_SPLITS`` if not given.
        seed: the seed of the training order (epoch e uses seed + e; see ``lmlab.data.loaders``).
    """

    KIND: ClassVar[str] = "data"  # what it holds, for messages (e.g. "language-model data")
    DEFAULT_SPLITS: ClassVar[dict[str, str | None]] = {
        "train": "train",
        "validation": "valid",
        "test": "test",
    }
    # Training drops an incomplete last batch (fixed-shape steps) unless the recipe uses every example.
    DROP_LAST: ClassVar[bool] = True

    def __init__(
        self,
        source: Any,
        tokenizer: TokenizerSpec,
        cache_dir: str,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = True,
        seed: int = 0,
        splits: dict[str, str | None] | None = None,
    ) -> None:
        super().__init__()
        splits = dict(self.DEFAULT_SPLITS if splits is None else splits)
        unknown = set(splits) - set(STAGES)
        if unknown:
            raise ConfigError(f"data.splits has unknown keys {sorted(unknown)}; use {STAGES}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be at least 1")
        self.source, self.tokenizer_spec, self.cache_dir = source, tokenizer, cache_dir
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.pin_memory, self.seed = num_workers, pin_memory, seed
        self.splits: dict[str, str] = {stage: split for stage, split in splits.items() if split}
        self.configured_splits = dict(self.splits)  # as configured, before select(): for messages
        self.tokenizer: PreTrainedTokenizerBase | None = None

    # ------------------------------------------------------------------ what the model must accept
    @property
    def sequence_length(self) -> int:
        """The longest sequence a batch can hold (checked against the model's maximum positions)."""
        raise NotImplementedError

    @property
    def length_field(self) -> str:
        """The config field(s) that set ``sequence_length``, for messages."""
        raise NotImplementedError

    @property
    def fixed_length(self) -> bool:
        """True when every sequence is exactly ``sequence_length`` tokens (a global token budget then fixes
        the gradient accumulation); False for padded batches of at most that length."""
        return False

    def set_head(self, head: str) -> None:
        """Called with the model head before anything else; refuse heads this data cannot serve."""

    # ------------------------------------------------------------------ checks and preparation
    def check(self, need_train: bool = True) -> None:
        """Find every configured split (local files or hub) before any expensive work."""
        if need_train and "train" not in self.splits:
            raise ConfigError("data.splits.train is not set: name the source split to train on")
        self.source.check(list(dict.fromkeys(self.splits.values())))
        values = list(self.splits.values())
        for split in sorted({s for s in values if values.count(s) > 1}):
            stages = [stage for stage, s in self.splits.items() if s == split]
            log.warning("Stages %s all read the %r split; their metrics are not independent", stages, split)

    def check_loader_settings(self) -> None:
        """Make a loader with the configured settings over no data (cheap): values torch rejects fail now."""
        with config_stage("data loader", "data"):
            DataLoader(
                [], batch_size=self.eval_batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory
            )

    def describe_data(self) -> dict[str, str]:
        """Where each stage's data is read from (recorded in ``metrics.json`` and the export)."""
        return {stage: self.source.describe(split) for stage, split in self.splits.items()}

    def check_stage(self, stage: str, option: str = "split") -> None:
        """Raise a ConfigError naming ``data.splits.<stage>`` when there is no data for ``stage``."""
        if not self.has_stage(stage):
            raise ConfigError(
                f"{option}={stage!r}: data.splits.{stage} is not set (data.splits = {self.configured_splits})"
            )

    def prepare_tokenizer(self) -> PreTrainedTokenizerBase:
        """The run's tokenizer, loaded or trained on the training split once (``adapt_tokenizer`` after)."""
        if self.tokenizer is None:
            tokenizer = self.tokenizer_spec.load(self.source, self.splits.get("train"), self.cache_dir)
            self.tokenizer = self.adapt_tokenizer(tokenizer)
        return self.tokenizer

    def adapt_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
        """What this data needs of the tokenizer beyond loading it (e.g. a pad token)."""
        return tokenizer

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()  # a no-op when done; needed on ranks whose prepare_data Lightning skipped

    def head_config(self) -> dict[str, Any] | None:
        """Task fields of the model config (``num_labels``, ``id2label``, ...), known once the data is read."""
        return None

    def module_kwargs(self) -> dict[str, Any]:
        """What the task module must know about the data (e.g. the labels and metrics of a GLUE task)."""
        return {}

    def has_stage(self, stage: str) -> bool:
        """Whether there is data for ``stage`` (``train``, ``validation``/``validate``, ``test``, ``predict``)."""
        return stage_name(stage) in self.splits

    def select(self, *stages: str, max_samples: int | None = None) -> None:
        """Read only these stages: what an evaluator needs. DataModules of examples read at most
        ``max_samples`` of each (None: all; a token stream has no examples to count).

        Call before ``prepare_data``; stages that are not configured are simply absent afterwards.
        """
        wanted = {stage_name(s) for s in stages}
        self.splits = {stage: split for stage, split in self.splits.items() if stage in wanted}

    # ------------------------------------------------------------------ data and loaders
    def train_dataset(self) -> Dataset:
        raise NotImplementedError

    def eval_datasets(self, stage: str) -> list[Dataset]:
        """The datasets of an evaluation stage, in order (several where a task has several sets: MNLI)."""
        raise NotImplementedError

    @property
    def collate_fn(self) -> Callable | None:
        """How examples become a batch (None: default collation of equal-length tensors)."""
        return None

    def train_dataloader(self) -> StatefulDataLoader:
        dataset = self.train_dataset()
        with config_stage("data loader", "data"):
            return train_loader(
                dataset, self.batch_size, self.seed, self.trainer, self.collate_fn, self.num_workers,
                self.DROP_LAST,
            )  # fmt: skip

    def eval_loader(
        self, stage: str, batch_size: int | None = None, max_samples: int | None = None
    ) -> DataLoader | list[DataLoader]:
        """The examples of ``stage`` in order, in batches of ``batch_size`` (``eval_batch_size`` if None), at
        most ``max_samples`` of them per set; a list of loaders where the stage has several sets."""
        stage = stage_name(stage)
        self.check_stage(stage)
        self.setup()
        loaders = []
        for dataset in self.eval_datasets(stage):
            if max_samples is not None and max_samples < len(dataset):
                dataset = Subset(dataset, range(max_samples))
            with config_stage("data loader", "data"):
                loaders.append(
                    DataLoader(
                        dataset,
                        batch_size=batch_size or self.eval_batch_size,
                        shuffle=False,
                        collate_fn=self.collate_fn,
                        num_workers=self.num_workers,
                        pin_memory=self.pin_memory and torch.cuda.is_available(),
                    )
                )
        return loaders[0] if len(loaders) == 1 else loaders

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        return self.eval_loader("validation")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        return self.eval_loader("test")

    def predict_dataloader(self) -> DataLoader | list[DataLoader]:
        return self.eval_loader("predict")


class BlockLength:
    """A mixin for DataModules whose sequences are packed blocks of exactly ``data.block_size`` tokens (the
    language-model DataModules): the length a model must hold, the field that sets it, fixed length."""

    block_size: int

    @property
    def sequence_length(self) -> int:
        return self.block_size

    @property
    def length_field(self) -> str:
        return "data.block_size"

    @property
    def fixed_length(self) -> bool:
        return True
