"""Sequence-to-sequence fine-tuning (translation, summarization): teacher-forced loss, and scored generations.

``Seq2SeqModule`` is the shared loop; its two tasks differ only in how the teacher-forced logits line up
with the targets and what generation starts from: ``Seq2SeqLMModule`` for encoder-decoder models (T5, BART,
Marian), ``DecoderOnlySeq2SeqModule`` for decoder-only (GPT-style) models.

Validation computes the loss on the whole validation split and, every ``generate_every_n_val``
validations, generates for its first ``val_generate_samples`` examples (generation is far slower than a
forward pass); test generates for the whole test split. Scores are BLEU, ROUGE, length and diversity
(``lmlab.metrics.generated_text``), computed once over the examples of all ranks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

from lmlab.decoding.decode import generate_texts
from lmlab.decoding.records import (
    GenerationRecord,
    RecordCollector,
    log_examples_table,
    score_records,
    write_predictions,
)
from lmlab.decoding.settings import GenerationSettings
from lmlab.errors import ConfigError
from lmlab.metrics.generated_text import GENERATION_METRICS, TextMetricOptions
from lmlab.models import max_positions
from lmlab.tasks.token_loss import EVAL_STAGES, TokenLossModule, token_cross_entropy

log = logging.getLogger(__name__)


class Seq2SeqModule(TokenLossModule):
    """Shared loop of the encoder-decoder and decoder-only sequence-to-sequence tasks.

    Args:
        generation: decoding settings (``lmlab.decoding.GenerationSettings``), validated at once.
        val_generate_samples: how many validation examples (the first ones) are generated for.
        generate_every_n_val: generate at every N-th validation run (sanity checks excluded).
        log_examples: rows of the W&B table (source, reference, prediction) per evaluation.
        metrics: scoring options (``lmlab.metrics.generated_text.TextMetricOptions``).
        predictions_dir: where ``<stage>...jsonl`` predictions and their metrics are written.
        max_prompt_length: the longest prompt (from the data), to check that generation fits the model.
    """

    EVALUATION = "generation"

    def __init__(
        self,
        *args: Any,
        generation: dict[str, Any] | None = None,
        val_generate_samples: int = 200,
        generate_every_n_val: int = 1,
        log_examples: int = 20,
        metrics: dict[str, Any] | None = None,
        predictions_dir: str | None = None,
        max_prompt_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.settings = GenerationSettings.from_config(generation)
        if val_generate_samples < 0 or generate_every_n_val < 1:
            raise ConfigError(
                f"task.val_generate_samples={val_generate_samples} must be >= 0 and "
                f"task.generate_every_n_val={generate_every_n_val} >= 1"
            )
        self.val_generate_samples, self.generate_every_n_val = val_generate_samples, generate_every_n_val
        self.log_examples = log_examples
        self.metric_options = TextMetricOptions(**(metrics or {}))
        self.predictions_dir = Path(predictions_dir) if predictions_dir else None
        self.check_positions(max_prompt_length)
        self.check_tokenizer(self.tokenizer)
        self.collectors = {s: RecordCollector() for s in EVAL_STAGES}
        self._validations = 0
        self._generating = False

    @classmethod
    def check_config(cls, task_cfg: Any) -> None:
        """Validate the generation settings and metric options of the task config before any data work."""
        values = OmegaConf.to_container(task_cfg, resolve=True) if OmegaConf.is_config(task_cfg) else task_cfg
        GenerationSettings.from_config(values.get("generation"))
        TextMetricOptions(**(values.get("metrics") or {}))

    def check_positions(self, max_prompt_length: int | None) -> None:
        """Decoder-only models hold prompt and generated tokens in one sequence: it must fit the model."""

    @classmethod
    def check_tokenizer(cls, tokenizer) -> None:
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ConfigError(
                f"generation needs a tokenizer with EOS and pad tokens; {getattr(tokenizer, 'name_or_path', '')!r} "
                "lacks one (the generation data modules set them; use one of them)"
            )

    def logged_metrics(self) -> list[str]:
        return self.eval_metric_names(*GENERATION_METRICS) + ["train/loss"]

    # ------------------------------------------------------------------ per-layout parts
    def logits_and_targets(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits and the targets aligned with them (-100 = not scored)."""
        raise NotImplementedError

    def generation_inputs(
        self, batch: dict[str, Any], rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` to generate from, for the selected rows."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loss
    def _loss(self, batch: dict[str, Any], smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        logits, targets = self.logits_and_targets(batch)
        return token_cross_entropy(logits, targets, smoothing), (targets != -100).sum()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss, _ = self._loss(batch, self.label_smoothing)  # evaluation losses are unsmoothed
        self.log_train("train/loss", loss, prog_bar=True, batch_size=len(batch["index"]))
        return self.checked_loss(loss, {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})

    # ------------------------------------------------------------------ evaluation
    def eval_step(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        loss, n = self._loss(batch)
        self.eval_loss[stage].update(loss, weight=n)
        if not self._generating:
            return
        limit = self.val_generate_samples if stage == "val" else None  # test generates for every example
        rows = torch.ones_like(batch["index"], dtype=torch.bool) if limit is None else batch["index"] < limit
        if not rows.any():
            return
        input_ids, attention_mask = self.generation_inputs(batch, rows)
        texts, lengths = generate_texts(self.model, self.tokenizer, input_ids, attention_mask, self.settings)
        picked = rows.nonzero().flatten().tolist()
        self.collectors[stage].add(
            [
                GenerationRecord(
                    int(batch["index"][i]), batch["sources"][i], list(batch["references"][i]), text, length
                )
                for i, text, length in zip(picked, texts, lengths, strict=True)
            ]
        )

    def eval_epoch_end(self, stage: str) -> None:
        super().eval_epoch_end(stage)
        if not self._generating:
            return
        records = self.collectors[stage].gather()
        self.collectors[stage].reset()
        self._generating = False
        if not records:
            return
        scores, signature = score_records(records, self.metric_options)
        self.log_dict({f"{stage}/{k}": v for k, v in scores.items()}, sync_dist=True, prog_bar=stage == "val")
        self._report(stage, records, scores, signature)

    @rank_zero_only
    def _report(
        self, stage: str, records: list[GenerationRecord], scores: dict[str, float], signature: str
    ) -> None:
        log.info(
            "%s generation on %d examples (%s): %s", stage, len(records), self.settings.describe(),
            ", ".join(f"{k}={v:.4g}" for k, v in scores.items()),
        )  # fmt: skip
        name = "test" if stage == "test" else f"{stage}_step{self.global_step:06d}"
        if self.predictions_dir is not None:
            info = {
                "stage": stage, "step": self.global_step, "generation": self.settings.to_dict(),
                "metric_options": self.metric_options.to_dict(), "bleu_signature": signature,
            }  # fmt: skip
            path = write_predictions(self.predictions_dir / name, records, scores, info)
            log.info("Wrote %s predictions to %s", stage, path)
        log_examples_table(self.loggers, f"{stage}/generations", records, self.log_examples, self.global_step)

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self._validations += 1
        self._generating = (
            not self.trainer.sanity_checking
            and self.val_generate_samples > 0
            and self._validations % self.generate_every_n_val == 0
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["generation_validations"] = self._validations  # a resumed run keeps the cadence

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._validations = int(checkpoint.get("generation_validations", 0))

    def on_test_epoch_start(self) -> None:
        self._generating = True


class Seq2SeqLMModule(Seq2SeqModule):
    """Encoder-decoder models (T5, BART, Marian): the source is encoded, the decoder learns the target."""

    HEAD = "seq2seq_lm"

    def logits_and_targets(self, batch):
        labels = batch["labels"]
        decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(labels=labels)
        out = self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=decoder_input_ids,
        )
        return out.logits, labels

    def generation_inputs(self, batch, rows):
        return batch["input_ids"][rows], batch["attention_mask"][rows]


class DecoderOnlySeq2SeqModule(Seq2SeqModule):
    """Decoder-only models (GPT-style): one sequence ``prompt + target + EOS``, loss on the target only."""

    HEAD = "causal_lm"

    def check_positions(self, max_prompt_length):
        limit = max_positions(self.model.config)
        if max_prompt_length and limit and max_prompt_length + self.settings.max_new_tokens > limit:
            raise ConfigError(
                f"data.max_source_length={max_prompt_length} prompt tokens + task.generation.max_new_tokens="
                f"{self.settings.max_new_tokens} exceed the model's {limit} positions; lower one of them"
            )

    def logits_and_targets(self, batch):
        mask = batch["attention_mask"]
        # Positions count real tokens only, so left- and right-padded rows see the positions generation uses.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(
            input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids
        ).logits
        # Token t is predicted at position t-1: shift the labels, not the logits (no copy of the logits).
        targets = F.pad(batch["labels"][:, 1:], (0, 1), value=-100)
        return logits, targets

    def generation_inputs(self, batch, rows):
        ids, mask = batch["prompt_ids"][rows], batch["prompt_attention_mask"][rows]
        keep = mask.any(0).nonzero().flatten()  # drop columns that are padding in every selected row
        return ids[:, keep[0] :], mask[:, keep[0] :]
