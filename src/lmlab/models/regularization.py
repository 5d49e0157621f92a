"""Regularization knobs that map onto whatever architecture is loaded: dropout and layer freezing.

Dropout names differ between Hugging Face configs (GPT-2 ``resid_pdrop``, BERT ``hidden_dropout_prob``,
BART ``dropout``, ...). ``model.dropout.{hidden,attention,classifier}`` are translated to the fields the
loaded architecture has, and a knob the architecture lacks is an error naming the fields it does have.
"""

from __future__ import annotations

import logging

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

# knob -> config fields, in order of preference; every field present in the config is set
DROPOUT_FIELDS = {
    "hidden": (
        "hidden_dropout_prob",
        "resid_pdrop",
        "embd_pdrop",
        "dropout",
        "dropout_rate",
        "hidden_dropout",
    ),
    "attention": ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout"),
    "classifier": (
        "classifier_dropout",
        "seq_classif_dropout",
        "summary_first_dropout",
        "classifier_dropout_prob",
    ),
}


def apply_dropout(config: PretrainedConfig, dropout: dict[str, float | None] | None) -> dict[str, float]:
    """Set the config's dropout fields from ``{hidden, attention, classifier}``; returns what was set."""
    applied: dict[str, float] = {}
    for knob, value in (dropout or {}).items():
        if value is None:
            continue
        if knob not in DROPOUT_FIELDS:
            raise ConfigError(f"model.dropout.{knob}: unknown knob; use hidden, attention or classifier")
        if not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"model.dropout.{knob}={value} must be in [0, 1)")
        fields = [f for f in DROPOUT_FIELDS[knob] if hasattr(config, f)]
        if not fields:
            present = sorted({f for fs in DROPOUT_FIELDS.values() for f in fs if hasattr(config, f)})
            raise ConfigError(
                f"model.dropout.{knob}={value}: the {config.model_type} architecture has no {knob} dropout field "
                f"(its dropout fields: {present or 'none'}); leave model.dropout.{knob}=null"
            )
        for field in fields:
            setattr(config, field, float(value))
            applied[field] = float(value)
    return applied


def transformer_layers(model: PreTrainedModel) -> list[nn.Module]:
    """The model's transformer blocks in order: the classes it lists in ``_no_split_modules`` (BERT also lists
    its embeddings module there, which is not a block)."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names and "Embedding" not in type(m).__name__]


def freeze(model: PreTrainedModel, embeddings: bool = False, layers: int = 0) -> int:
    """Stop gradients to the embeddings and/or the first ``layers`` blocks; returns the frozen parameter count."""
    frozen: list[nn.Parameter] = []
    if (
        embeddings
    ):  # the embedding tables and their block (e.g. BertEmbeddings' LayerNorm); a tied output layer too
        for module in model.modules():
            if isinstance(module, nn.Embedding) or type(module).__name__.endswith("Embeddings"):
                frozen += list(module.parameters())
    if layers:
        blocks = transformer_layers(model)
        if layers > len(blocks):
            raise ConfigError(f"model.freeze.layers={layers}, but the model has only {len(blocks)} layers")
        for block in blocks[:layers]:
            frozen += list(block.parameters())
    for p in frozen:
        p.requires_grad_(False)
    n = sum(p.numel() for p in {id(p): p for p in frozen}.values())
    if n:
        log.info("Froze %.2fM parameters (embeddings: %s, first %d layers)", n / 1e6, embeddings, layers)
    return n
