"""The task heads a model can carry, and what ties a built model to its tokenizer.

``HEADS`` maps each head name (a task's ``HEAD``) to its Hugging Face auto class; the functions here point
a model's configs at the tokenizer's special tokens, add a second LM head on the same body (auxiliary
pretraining loss), and count parameters for the run summary.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlab.errors import ConfigError
from lmlab.models.hub import load_pretrained_or_explain

# The model head each task needs. Later stages add theirs (sequence classification, seq2seq).
HEADS: dict[str, Any] = {
    "causal_lm": AutoModelForCausalLM,
    "masked_lm": AutoModelForMaskedLM,
    "sequence_classification": AutoModelForSequenceClassification,
    "seq2seq_lm": AutoModelForSeq2SeqLM,
}


def aux_lm_head(
    pretrained: str | None, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> PreTrainedModel:
    """An LM head (masked LM if the tokenizer has a mask token, else causal LM) sharing ``model``'s body, with
    the pretrained head weights where the checkpoint has them: for mixing a pretraining loss into fine-tuning."""
    head = "masked_lm" if tokenizer.mask_token_id is not None else "causal_lm"
    config = model.config
    if type(config) not in HEADS[head]._model_mapping:
        raise ConfigError(f"task.aux_lm_weight: model_type={config.model_type} has no {head} head")
    if pretrained:  # the checkpoint's own LM head weights, where it has them (model.pretrained)
        lm = load_pretrained_or_explain(HEADS[head].from_pretrained, pretrained, "model.pretrained")
    else:
        lm = HEADS[head].from_config(config)
    prefix = model.base_model_prefix
    setattr(lm, lm.base_model_prefix, getattr(model, prefix))  # one body, two heads
    lm.tie_weights()
    return lm.train()


def set_special_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Point the model and generation configs at the tokenizer's special tokens (padding and generation use them)."""
    configs = [model.config, getattr(model, "generation_config", None)]
    for field in ("bos_token_id", "eos_token_id", "pad_token_id"):
        token_id = getattr(tokenizer, field, None)
        if token_id is not None:
            for cfg in configs:
                if cfg is not None:
                    setattr(cfg, field, token_id)


def set_decoder_token_ids(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase) -> None:
    """An encoder-decoder built from scratch uses the tokenizer's special tokens from the start (its padding
    embedding, the decoder start = BOS, else PAD, forced EOS), not ids of the preset's original vocabulary,
    which are arbitrary tokens of ours or out of range (Marian's 58100)."""
    for field in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(tokenizer, field, None) is not None:
            setattr(config, field, getattr(tokenizer, field))
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.pad_token_id
    if start is not None:
        config.decoder_start_token_id = start
    if getattr(config, "forced_eos_token_id", None) is not None:
        config.forced_eos_token_id = tokenizer.eos_token_id


def count_parameters(model: PreTrainedModel) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    embedding = model.get_input_embeddings().weight.numel()
    return {"params/total": total, "params/trainable": trainable, "params/non_embedding": total - embedding}
