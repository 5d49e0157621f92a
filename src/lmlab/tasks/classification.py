"""Sentence (pair) classification and regression: GLUE fine-tuning and users' own labeled data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lmlab.data.sources import ClassificationSpec
from lmlab.errors import ConfigError
from lmlab.metrics.classification import make_metrics
from lmlab.tasks.augmentation import Augmentation
from lmlab.tasks.base import TaskModule
from lmlab.tasks.masking import mask_tokens
from lmlab.tasks.token_loss import token_cross_entropy
from lmlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class SequenceClassificationModule(TaskModule):
    """Fine-tunes ``AutoModelForSequenceClassification``: cross-entropy, or MSE for regression (STS-B).

    Logs ``val/<metric><suffix>`` for every evaluation set (MNLI: ``val/accuracy`` matched and
    ``val/accuracy_mm`` mismatched, both at every validation), plus ``val/combined_score`` (their mean) when
    a task has several metrics. Predictions on unlabeled sets go to ``<run>/predictions/<GLUE name>.tsv``.
    """

    HEAD = "sequence_classification"
    EVALUATION = "classification"

    def __init__(
        self,
        *args: Any,
        spec: ClassificationSpec,
        augmentation: dict[str, Any] | None = None,
        aux_lm_weight: float = 0.0,
        aux_lm: torch.nn.Module | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        """``label_smoothing``: of the training cross-entropy (classification only). ``augmentation``: token
        deletion/swap/replacement/span masking probabilities (``lmlab.tasks.augmentation``), training batches only.
        ``aux_lm_weight``: weight of a masked-LM (encoders) or causal-LM loss on the same batch, computed by
        ``aux_lm`` (an LM head sharing the model's body) — a guard against forgetting; 0 = off."""
        super().__init__(*args, **kwargs)
        self.spec = spec
        if self.label_smoothing and spec.is_regression:
            raise ConfigError("task.label_smoothing applies to classification, not to a regression task")
        self.augmentation = Augmentation(**(augmentation or {}))
        self.aux_lm_weight, self.aux_lm, self.seed = aux_lm_weight, aux_lm, seed
        if aux_lm_weight and aux_lm is None:
            raise ConfigError("task.aux_lm_weight > 0 needs an LM head (built by train from the model)")
        self.register_buffer("special_ids", torch.tensor(self.tokenizer.all_special_ids), persistent=False)
        self.val_metrics = torch.nn.ModuleList(
            make_metrics(spec.metrics, spec.num_labels) for _ in spec.eval_suffixes
        )
        self.test_metrics = torch.nn.ModuleList(
            make_metrics(spec.metrics, spec.num_labels) for _ in spec.test_suffixes
        )
        self._predictions: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def logged_metrics(self) -> list[str]:
        names = [*self.spec.metrics, "loss"] + (["combined_score"] if len(self.spec.metrics) > 1 else [])
        return [f"val/{n}{s}" for s in self.spec.eval_suffixes for n in names] + ["train/loss"]

    def forward(self, batch: dict[str, torch.Tensor]):
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        return self.model(**inputs, labels=batch.get("labels"))

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.squeeze(-1).float() if self.spec.is_regression else logits.argmax(-1)

    def _generator(self, salt: int, batch_idx: int) -> torch.Generator:
        """A generator seeded by the step: a resumed run augments and masks as an uninterrupted one did. The
        micro-batches of one step (gradient accumulation) and the ranks draw different numbers."""
        seed = self.seed * 1_000_003 + (self.global_step + 1) * 7919 + salt
        seed += 104_729 * batch_idx + 15_485_863 * self.global_rank
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed % (2**63 - 1))
        return gen

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        if self.augmentation.active:
            mask_id = self.tokenizer.mask_token_id
            mask_id = mask_id if mask_id is not None else self.tokenizer.unk_token_id
            batch = self.augmentation(
                batch, self.special_ids, mask_id, self.tokenizer.pad_token_id, self._generator(1, batch_idx)
            )
        out = self(batch)
        loss = out.loss
        if self.label_smoothing:
            loss = F.cross_entropy(out.logits.float(), batch["labels"], label_smoothing=self.label_smoothing)
        if self.aux_lm_weight:
            aux = self.auxiliary_lm_loss(batch, batch_idx)
            self.log_train("train/aux_lm_loss", aux)
            loss = loss + self.aux_lm_weight * aux
        if self.checked_loss(loss, batch) is None:
            return None
        self.log_train("train/loss", loss, prog_bar=True)
        return loss

    def auxiliary_lm_loss(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Masked-LM loss (15% of the tokens, 80/10/10) or next-token loss on the batch's own text."""
        ids, attention = batch["input_ids"], batch.get("attention_mask")
        extra = {k: batch[k] for k in ("attention_mask", "token_type_ids") if k in batch}
        if self.tokenizer.mask_token_id is not None:
            inputs, targets = mask_tokens(ids, self.tokenizer.mask_token_id, len(self.tokenizer), self.special_ids,
                                          generator=self._generator(2, batch_idx))  # fmt: skip
            logits = self.aux_lm(input_ids=inputs, **extra).logits
        else:
            targets = F.pad(ids[:, 1:], (0, 1), value=-100)
            if attention is not None:
                targets = targets.masked_fill(F.pad(attention[:, 1:], (0, 1)) == 0, -100)
            logits = self.aux_lm(input_ids=ids, **extra).logits
        return token_cross_entropy(logits, targets)

    def _eval_step(self, batch, metrics, suffix: str, stage: str) -> None:
        out = self(batch)
        metrics.update(self.predictions(out.logits), batch["labels"])
        self.log(f"{stage}/loss{suffix}", out.loss, batch_size=len(batch["labels"]), add_dataloader_idx=False)

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_step(
            batch, self.val_metrics[dataloader_idx], self.spec.eval_suffixes[dataloader_idx], "val"
        )

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(
            batch, self.test_metrics[dataloader_idx], self.spec.test_suffixes[dataloader_idx], "test"
        )

    def _log_metrics(self, collections, suffixes, stage: str) -> None:
        for metrics, suffix in zip(collections, suffixes, strict=True):
            values = {name: value.float() for name, value in metrics.compute().items()}
            if len(values) > 1:
                values["combined_score"] = torch.stack(list(values.values())).mean()
            self.log_dict({f"{stage}/{k}{suffix}": v for k, v in values.items()}, prog_bar=stage == "val")
            metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, self.spec.eval_suffixes, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, self.spec.test_suffixes, "test")

    # -------------------------------------------------------------------------------------- predictions
    def on_predict_epoch_start(self) -> None:
        self._predictions = {}

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        preds = self.predictions(self(batch).logits)
        self._predictions.setdefault(dataloader_idx, []).append((batch["idx"], preds))

    def on_predict_epoch_end(self) -> None:
        out_dir = Path(self.trainer.default_root_dir) / "predictions"
        for dataloader_idx, parts in sorted(self._predictions.items()):
            idx = torch.cat([p[0] for p in parts])
            preds = torch.cat([p[1] for p in parts])
            if self.trainer.world_size > 1:  # each rank predicted a shard (padded with repeats)
                idx, preds = self.all_gather(idx).flatten(0, 1), self.all_gather(preds).flatten(0, 1)
            if self.trainer.is_global_zero:
                path = out_dir / self.spec.predict_files[dataloader_idx]
                write_submission(path, idx.tolist(), preds.tolist(), self.spec)
                log.info("Wrote %d predictions to %s", len(set(idx.tolist())), path)


def write_submission(path: Path, idx: list[int], preds: list, spec: ClassificationSpec) -> None:
    """``index<TAB>prediction`` rows sorted by index, as the GLUE server expects: label strings where the task
    uses them (entailment, ...), numbers otherwise; STS-B scores with three decimals."""
    rows = {}
    for i, p in zip(idx, preds, strict=True):
        rows.setdefault(i, p)
    lines = ["index\tprediction"]
    for i in sorted(rows):
        p = rows[i]
        lines.append(f"{i}\t{p:.3f}" if spec.is_regression else f"{i}\t{spec.labels[int(p)]}")
    atomic_write_text(path, "\n".join(lines) + "\n")
