"""Evaluation of a trained model, one module per kind (dispatched by ``lmlab.stages.evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch import Trainer
from omegaconf import DictConfig

from lmlab.data.base import BaseDataModule
from lmlab.data.tokenizer import GivenTokenizer
from lmlab.decoding.records import GenerationRecord, log_examples_table
from lmlab.errors import ConfigError, config_stage


@dataclass
class EvalContext:
    """What every evaluator gets: the evaluation config, the data config (given, or the training one), the
    loaded model (None for tokenizer reports) and tokenizer, its head, the training config, the device, and
    the configured experiment loggers (for what is logged besides the metrics, such as examples tables)."""

    cfg: DictConfig
    data_cfg: DictConfig
    model: Any
    tokenizer: Any
    head: str
    train_config: dict[str, Any]
    device: str
    evaluation: str = ""  # the kind of evaluation (a key of lmlab.stages.evaluate.EVALUATORS)
    loggers: list = field(default_factory=list)

    def datamodule(
        self, *stages: str, max_samples: int | None = None, kind: type[BaseDataModule] = BaseDataModule
    ) -> Any:
        """The data to evaluate on, reading only ``stages`` (at most ``max_samples`` examples of each) with the
        model's tokenizer; the first stage must have data. ``kind``: the DataModule class this evaluation
        reads (anything else is an error naming the data config), checked before any data is read."""
        with config_stage("data", "data"):
            datamodule = instantiate(self.data_cfg, _partial_=True)(tokenizer=GivenTokenizer(self.tokenizer))
        if not isinstance(datamodule, kind):
            raise ConfigError(
                f"evaluation={self.evaluation} reads {kind.KIND}, but the data config builds "
                f"{type(datamodule).__name__} ({self.data_cfg.get('_target_')}): choose such data on the command line"
            )
        if self.model is not None:
            datamodule.set_head(self.head)
        datamodule.select(*stages, max_samples=max_samples)
        datamodule.check(need_train=False)
        datamodule.check_loader_settings()
        datamodule.check_stage(stages[0])
        return datamodule

    def trainer(self) -> Trainer:
        """A Lightning Trainer on the evaluation device, for evaluators that run a task module's own
        validation, test or predict loop (its metrics, exactly as during training)."""
        return Trainer(
            accelerator="gpu" if self.device == "cuda" else self.device,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            default_root_dir=self.cfg.paths.output_dir,
        )

    def log_examples(
        self, key: str, records: list[GenerationRecord], trained: int | None, default: int
    ) -> None:
        """The W&B table of the first examples, as training logs it: ``log_examples`` rows if the evaluation
        config sets it, else as many as the training run logged (``trained``), else ``default``."""
        rows = next(r for r in (self.cfg.get("log_examples"), trained, default) if r is not None)
        log_examples_table(self.loggers, key, records, int(rows))
