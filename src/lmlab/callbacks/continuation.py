"""Optional during pretraining: continuation scores (BLEU/ROUGE against the true text, diversity) of
validation passages every N validation runs (``callbacks=continuation``; see evaluation/continuation.py)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.tokenizer import document_separator_id
from lmlab.decoding.records import RecordCollector, log_examples_table, score_records
from lmlab.errors import ConfigError
from lmlab.evaluation.continuation import continuation_records, continuation_settings, continuation_starts
from lmlab.metrics.generated_text import TextMetricOptions


class ContinuationEval(Callback):
    """Logs ``val/cont_<metric>`` (bleu, rouge*, gen_len, distinct_1/2, rep_ngram) every N validations.

    The passages are shared out over the ranks and the results gathered, so each is counted once.
    """

    def __init__(
        self,
        every_n_validations: int = 4,
        prompt_tokens: int = 32,
        new_tokens: int = 32,
        samples: int = 64,
        batch_size: int = 16,
        log_examples: int = 10,
        generation: dict[str, Any] | None = None,
    ) -> None:
        if every_n_validations < 1 or prompt_tokens < 1 or samples < 1:
            raise ConfigError(
                "callbacks.continuation: every_n_validations, prompt_tokens and samples must be at least 1"
            )
        self.every, self.prompt_tokens, self.samples = every_n_validations, prompt_tokens, samples
        self.batch_size, self.log_examples = batch_size, log_examples
        self.settings = continuation_settings(new_tokens, generation, "callbacks.continuation.generation")
        self.validations = 0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if getattr(pl_module, "HEAD", None) != "causal_lm" or not isinstance(
            trainer.datamodule, LMDataModule
        ):
            raise ConfigError("callbacks=continuation works with causal-LM pretraining (task=clm) only")

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.validations += 1
        if self.validations % self.every:
            return
        tokenizer = pl_module.tokenizer
        tokens = trainer.datamodule.tokens("validation")
        span = self.prompt_tokens + self.settings.max_new_tokens
        starts = list(
            enumerate(continuation_starts(tokens, span, self.samples, document_separator_id(tokenizer)))
        )
        collector = RecordCollector()
        collector.add(
            continuation_records(
                pl_module.model,
                tokenizer,
                tokens,
                starts[trainer.global_rank :: trainer.world_size],
                self.prompt_tokens,
                self.settings,
                self.batch_size,
                pl_module.device,
            )  # fmt: skip
        )
        records = collector.gather()
        scores, _ = score_records(records, TextMetricOptions())
        pl_module.log_dict({f"val/cont_{k}": v for k, v in scores.items()}, sync_dist=True)
        if trainer.is_global_zero:
            log_examples_table(
                pl_module.loggers, "val/continuations", records, self.log_examples, trainer.global_step
            )
