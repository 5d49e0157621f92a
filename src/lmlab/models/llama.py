"""Llama-style decoders built from scratch: RMSNorm, rotary positions, grouped-query attention, a chosen MLP.

Each combination is an existing Hugging Face config class, so an export is a plain ``AutoModelForCausalLM``
folder (no custom modeling code) and computes exactly what was trained:

===================  ================  ================
``model.mlp``        qk_norm: false    qk_norm: true
===================  ================  ================
swiglu (silu, gated) ``llama``         ``qwen3``
geglu (gelu, gated)  ``llama``         ``qwen3``
relu2 (ungated)      ``arcee``         not offered
gelu (ungated)       ``arcee``         not offered
===================  ================  ================

Llama's MLP is gated (``down(act(gate(x)) * up(x))``) with any activation; Arcee is Llama with an ungated MLP
(``down(act(up(x)))``); Qwen3 is Llama with an RMSNorm on each head's queries and keys. No Hugging Face
class combines QK-norm with an ungated MLP, so that pair is refused rather than approximated.
"""

from __future__ import annotations

import inspect
from typing import Any

from omegaconf import OmegaConf
from transformers import CONFIG_MAPPING, PretrainedConfig

from lmlab.errors import ConfigError
from lmlab.models.factory import ModelFactory

# model.mlp -> (gated, hidden_act); "gelu" is the exact (erf) GELU, "relu2" is squared ReLU
MLPS: dict[str, tuple[bool, str]] = {
    "swiglu": (True, "silu"),
    "geglu": (True, "gelu"),
    "relu2": (False, "relu2"),
    "gelu": (False, "gelu"),
}
# Older names Hugging Face still converts (into rope_parameters), accepted in model.config.
_LEGACY_FIELDS = {"rope_theta", "rope_scaling"}


def architecture(mlp: str, qk_norm: bool) -> str:
    """The Hugging Face ``model_type`` that computes this MLP (with QK-norm or not) exactly."""
    if mlp not in MLPS:
        raise ConfigError(f"model.mlp={mlp!r} is not a known MLP type; use one of {', '.join(MLPS)}")
    gated = MLPS[mlp][0]
    if qk_norm and not gated:
        gated_names = [name for name, (g, _) in MLPS.items() if g]
        raise ConfigError(
            f"model.qk_norm=true with model.mlp={mlp} (an ungated MLP): no Hugging Face model class has both, so "
            f"an export could not load as a plain AutoModelForCausalLM. Use a gated MLP ({', '.join(gated_names)}) "
            "with QK-norm, or model.qk_norm=false"
        )
    if qk_norm:
        return "qwen3"
    return "llama" if gated else "arcee"


class LlamaFactory(ModelFactory):
    """What the ``llama_*`` presets instantiate: a Llama-style decoder with random weights.

    Args:
        mlp: ``swiglu`` (Llama's), ``geglu``, ``relu2`` or ``gelu``; picks ``hidden_act`` and the class (above).
        qk_norm: RMSNorm on queries and keys per head (the Qwen3 class).
        config: fields of that Hugging Face config (``hidden_size``, ``num_key_value_heads``,
            ``rope_parameters``, ``tie_word_embeddings``, ...); ``hidden_act`` comes from ``mlp``.
        **kwargs: the other ``ModelFactory`` arguments (attention implementation, vocabulary padding, ...).
    """

    def __init__(
        self,
        mlp: str = "swiglu",
        qk_norm: bool = False,
        config: dict[str, Any] | None = None,
        pretrained: str | None = None,
        **kwargs: Any,
    ) -> None:
        if pretrained:
            raise ConfigError(
                f"model.pretrained={pretrained!r}: the llama_* presets build a model from scratch; to load a trained "
                "model use model=pretrained model.pretrained=<name or folder>"
            )
        fields = (
            OmegaConf.to_container(config, resolve=True)
            if OmegaConf.is_config(config)
            else dict(config or {})
        )
        if "hidden_act" in fields:
            raise ConfigError(
                f"model.config.hidden_act={fields['hidden_act']!r}: the activation follows model.mlp here; set "
                f"model.mlp to one of {', '.join(MLPS)} instead"
            )
        model_type = architecture(mlp, bool(qk_norm))
        self.mlp, self.qk_norm = mlp, bool(qk_norm)
        self._head_dim_given = fields.get("head_dim") is not None
        fields["hidden_act"] = MLPS[mlp][1]
        _check_fields(model_type, fields)
        super().__init__(model_type=model_type, config=fields, **kwargs)

    def describe(self) -> str:
        return f"{self.model_type} from scratch (mlp={self.mlp}, qk_norm={str(self.qk_norm).lower()})"

    def hf_config(self) -> PretrainedConfig:
        if self._config is None:
            # before the Hugging Face class sees them: it refuses some shapes with a less helpful message and
            # builds others (key/value heads that do not divide the heads) that fail only when run
            fields = {**_defaults(self.model_type), **self.overrides}
            if not self._head_dim_given:
                fields["head_dim"] = None  # hidden_size / num_attention_heads
            check_attention_shape(fields)
            if self.model_type == "qwen3" and not self._head_dim_given:
                # Qwen3's head_dim defaults to 128 whatever the width; Llama's is hidden_size / heads
                self.overrides["head_dim"] = fields["hidden_size"] // fields["num_attention_heads"]
        return super().hf_config()


def _defaults(model_type: str) -> dict[str, Any]:
    parameters = inspect.signature(CONFIG_MAPPING[model_type].__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _check_fields(model_type: str, fields: dict[str, Any]) -> None:
    """A field the config class does not have would be stored and ignored; say so instead."""
    known = set(inspect.signature(CONFIG_MAPPING[model_type].__init__).parameters) | _LEGACY_FIELDS
    unknown = sorted(set(fields) - known)
    if unknown:
        shown = sorted(known - {"self", "kwargs"} - _LEGACY_FIELDS)
        raise ConfigError(
            f"model.config.{unknown[0]} is not a field of {CONFIG_MAPPING[model_type].__name__} (the class model.mlp "
            f"and model.qk_norm pick), so it would be ignored; remove it. Its fields: {', '.join(shown)}"
        )


def check_attention_shape(fields: dict[str, Any]) -> None:
    """Heads that split the width evenly, key/value heads shared by equal groups of query heads, and a head
    dimension rotary embeddings can rotate (even)."""
    width, heads = fields["hidden_size"], fields["num_attention_heads"]
    kv_heads = fields.get("num_key_value_heads") or heads
    if heads <= 0 or kv_heads <= 0:
        raise ConfigError(
            f"model.config.num_attention_heads={heads} and model.config.num_key_value_heads={kv_heads} must be positive"
        )
    if width % heads:
        divisors = [d for d in range(1, 2 * heads + 1) if width % d == 0][-3:]
        raise ConfigError(
            f"model.config.num_attention_heads={heads} does not divide model.config.hidden_size={width}: each head "
            f"gets hidden_size / num_attention_heads dimensions. Use a head count that divides it (e.g. "
            f"{', '.join(map(str, divisors))}), or another hidden_size"
        )
    if heads % kv_heads:
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        raise ConfigError(
            f"model.config.num_key_value_heads={kv_heads} does not divide model.config.num_attention_heads={heads}: "
            "grouped-query attention shares each key/value head among an equal number of query heads. Use one "
            f"of {', '.join(map(str, divisors))}"
        )
    head_dim = fields.get("head_dim") or width // heads
    if head_dim % 2:
        raise ConfigError(
            f"the head dimension is {head_dim} (model.config.hidden_size / num_attention_heads, or head_dim): rotary "
            "position embeddings rotate pairs of dimensions, so it must be even. Change the head count or head_dim"
        )
