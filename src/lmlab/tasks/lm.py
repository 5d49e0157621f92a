"""Pretraining objectives: causal LM (next-token) and masked LM (BERT-style)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from lmlab.errors import ConfigError
from lmlab.tasks.masking import mask_tokens
from lmlab.tasks.token_loss import EVAL_STAGES, TokenLossModule, token_cross_entropy


class LanguageModelModule(TokenLossModule):
    """Shared loop: token-level cross-entropy, token accuracy, and loss/ppl/accuracy per evaluation stage.

    ``label_smoothing`` smooths the training loss only; evaluation losses and perplexities are unsmoothed.
    """

    EVALUATION = "language_model"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Token-weighted, as the loss.
        self.eval_acc = torch.nn.ModuleDict({s: MeanMetric() for s in EVAL_STAGES})

    def logged_metrics(self) -> list[str]:
        return self.eval_metric_names("acc") + ["train/loss", "train/acc"]

    def inputs_and_targets(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int):
        """Return ``(model inputs, targets aligned with the logits, -100 = ignore)``."""
        raise NotImplementedError

    def _forward_loss(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int, with_accuracy: bool):
        input_ids, targets = self.inputs_and_targets(batch, stage, batch_idx)
        logits = self.model(input_ids=input_ids).logits
        loss = token_cross_entropy(logits, targets, self.label_smoothing if stage == "train" else 0.0)
        if not with_accuracy:
            return loss, None, None
        valid = targets != -100
        correct = ((logits.argmax(-1) == targets) & valid).sum()
        n = valid.sum()
        return loss, correct / n.clamp(min=1), n

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        with_acc = self.should_log_step()
        loss, acc, _ = self._forward_loss(batch, "train", batch_idx, with_acc)
        if self.checked_loss(loss, batch) is None:
            return None
        self.log_train("train/loss", loss, prog_bar=True)
        if acc is not None:
            self.log_train("train/acc", acc)
        return loss

    def eval_step(self, batch: dict[str, torch.Tensor], batch_idx: int, stage: str) -> None:
        loss, acc, n = self._forward_loss(batch, stage, batch_idx, with_accuracy=True)
        self.eval_loss[stage].update(loss, weight=n)
        self.eval_acc[stage].update(acc, weight=n)

    def eval_epoch_end(self, stage: str) -> None:
        super().eval_epoch_end(stage)
        self.log(f"{stage}/acc", self.eval_acc[stage].compute(), prog_bar=stage == "val")
        self.eval_acc[stage].reset()


class CausalLMModule(LanguageModelModule):
    """Next-token prediction: each position predicts the following token of the packed block."""

    HEAD = "causal_lm"

    def inputs_and_targets(self, batch, stage, batch_idx):
        input_ids = batch["input_ids"]
        # Shift the targets, not the logits: no copy of the (batch, length, vocab) logits is made.
        targets = F.pad(input_ids[:, 1:], (0, 1), value=-100)
        return input_ids, targets


class MaskedLMModule(LanguageModelModule):
    """BERT-style masked LM: dynamic masking of ``mlm_probability`` of the tokens with the 80/10/10 rule.

    Masks are drawn from a generator seeded by the step (training) or by the batch index (evaluation), so
    validation uses the same masks every time and a resumed run masks exactly as an uninterrupted one.
    """

    HEAD = "masked_lm"

    def __init__(
        self,
        *args: Any,
        mlm_probability: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
        mask_seed: int = 1234,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.check_tokenizer(self.tokenizer)
        if not 0 < mlm_probability < 1:
            raise ConfigError(f"task.mlm_probability={mlm_probability} must be in (0, 1)")
        if not (
            0 <= mask_replace_prob <= 1
            and 0 <= random_replace_prob <= 1
            and mask_replace_prob + random_replace_prob <= 1
        ):
            raise ConfigError(
                f"task.mask_replace_prob={mask_replace_prob} and task.random_replace_prob={random_replace_prob} "
                "must each be in [0, 1] and add up to at most 1 (BERT: 0.8 and 0.1)"
            )
        self.mlm_probability = mlm_probability
        self.mask_replace_prob, self.random_replace_prob = mask_replace_prob, random_replace_prob
        self.mask_seed = mask_seed
        self.register_buffer("special_ids", torch.tensor(self.tokenizer.all_special_ids), persistent=False)
        self._generator: torch.Generator | None = None

    @classmethod
    def check_tokenizer(cls, tokenizer) -> None:
        if tokenizer.mask_token_id is None:
            raise ConfigError(
                f"task=mlm needs a tokenizer with a mask token, and {getattr(tokenizer, 'name_or_path', '')!r} "
                "has none. Use tokenizer=wordpiece (trained on the corpus) or a BERT-style pretrained tokenizer."
            )

    def _generator_for(self, seed: int) -> torch.Generator:
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        return self._generator

    def inputs_and_targets(self, batch, stage, batch_idx):
        if stage == "train":
            seed = self.mask_seed + 1_000_003 * (self.global_step + 1) + 7919 * self.global_rank
            seed += 104_729 * batch_idx  # differs between accumulated micro-batches of one step
        else:
            seed = self.mask_seed + 7919 * self.global_rank + batch_idx
        return mask_tokens(
            batch["input_ids"],
            mask_token_id=self.tokenizer.mask_token_id,
            vocab_size=len(self.tokenizer),
            special_ids=self.special_ids,
            probability=self.mlm_probability,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            generator=self._generator_for(seed % (2**63 - 1)),
        )
