"""The two generation task modules: encoder-decoder (T5, BART, Marian) and decoder-only (GPT-style) models.

They differ only in how the teacher-forced logits line up with the targets and what generation starts from;
the loop, the metrics and the reports are ``lmlab.tasks.generation.GenerationModule``.
"""

from __future__ import annotations

import torch.nn.functional as F

from lmlab.errors import ConfigError
from lmlab.models import max_positions
from lmlab.tasks.generation import GenerationModule


class Seq2SeqLMModule(GenerationModule):
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


class DecoderOnlySeq2SeqModule(GenerationModule):
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
