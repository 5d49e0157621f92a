"""Build the Transformer: from a config with random weights (size presets) or ``from_pretrained``.

Two steps, so that mistakes surface before any expensive work: ``check()`` reads only the model config
(block size against the model's positions, a head the architecture has) and builds the architecture on
the meta device (no memory, milliseconds), so that values the Hugging Face class rejects fail at once;
``build()`` makes the weights once the tokenizer is known (vocabulary size, special token ids).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import StrictDataclassError
from omegaconf import OmegaConf
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import ConfigError
from lmlab.models.heads import HEADS, set_decoder_token_ids, set_special_token_ids
from lmlab.models.hub import load_pretrained_or_explain
from lmlab.models.native_gpt2 import NativeGPT2LMHeadModel, check_native_config, uses_bias
from lmlab.models.regularization import apply_dropout, freeze

log = logging.getLogger(__name__)

_MAX_POSITION_FIELDS = ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len")


def max_positions(config: PretrainedConfig) -> int | None:
    field = _max_position_field(config)
    return getattr(config, field) if field else None


def _max_position_field(config: PretrainedConfig) -> str | None:
    """The config field holding the model's position limit (``n_positions``, ``max_position_embeddings``, ...)."""
    for field in _MAX_POSITION_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return field
    return None


class ModelFactory:
    """What the ``model`` config group instantiates.

    Args:
        pretrained: hub name or local folder; when set, weights are loaded and ``config`` entries override
            fields of the pretrained config (e.g. dropout).
        model_type: architecture for models built from scratch (``gpt2``, ``llama``, ``bert``, ...); the
            ``llama_*`` presets use ``lmlab.models.LlamaFactory``, which picks it from their MLP and QK-norm.
        config: fields of the Hugging Face config (size preset).
        attn_implementation: ``sdpa`` (fast fused attention), ``eager`` or ``flash_attention_2``.
        resize_token_embeddings: for pretrained models, grow the embedding matrix on purpose when the
            tokenizer has more tokens than the model; otherwise such a mismatch is an error.
        pad_vocab_multiple: round the vocabulary of models built from scratch up to a multiple of this
            (64 makes the output matmul faster on GPUs); padded rows are never produced by the tokenizer.
        gradient_checkpointing: activation checkpointing, for models whose activations do not fit.
        dropout: ``{hidden, attention, classifier}`` rates, mapped onto the architecture's own config fields
            (``lmlab.models.regularization``); null entries keep the model's values.
        freeze: ``{embeddings: bool, layers: N}``: no gradient to the embeddings / the first N blocks.
        implementation: ``hf`` (the Hugging Face class) or ``native`` (GPT-2 causal LMs only: the same weights
            on a lean training path, ``lmlab.models.native_gpt2``; exports are still Hugging Face GPT-2 models).
    """

    def __init__(
        self,
        pretrained: str | None = None,
        model_type: str | None = None,
        config: dict[str, Any] | None = None,
        attn_implementation: str | None = "sdpa",
        resize_token_embeddings: bool = False,
        pad_vocab_multiple: int = 1,
        trust_remote_code: bool = False,
        revision: str | None = None,
        gradient_checkpointing: bool = False,
        dropout: dict[str, float | None] | None = None,
        freeze: dict[str, Any] | None = None,
        implementation: str = "hf",
    ) -> None:
        if not pretrained and not model_type:
            raise ConfigError("the model config needs model.pretrained (name or path) or model.model_type")
        self.pretrained = str(pretrained) if pretrained else None
        self.model_type = model_type
        # plain containers: Hugging Face's config classes type-check nested fields (rope_parameters)
        self.overrides = (
            OmegaConf.to_container(config, resolve=True)
            if OmegaConf.is_config(config)
            else dict(config or {})
        )
        self.attn_implementation = attn_implementation
        self.resize_token_embeddings = resize_token_embeddings
        self.pad_vocab_multiple = max(1, int(pad_vocab_multiple))
        self.trust_remote_code, self.revision = trust_remote_code, revision
        self.gradient_checkpointing = gradient_checkpointing
        self.dropout = dict(dropout or {})
        self.freeze = dict(freeze or {})
        if implementation not in ("hf", "native"):
            raise ConfigError(f"model.implementation={implementation!r} must be hf or native")
        self.implementation = implementation
        self._config: PretrainedConfig | None = None
        self.new_weights: list[str] = []  # of a pretrained model: the weights the checkpoint did not have

    def describe(self) -> str:
        return self.pretrained or f"{self.model_type} from scratch"

    def hf_config(self) -> PretrainedConfig:
        if self._config is None:
            if self.pretrained:
                self._config = load_pretrained_or_explain(
                    AutoConfig.from_pretrained,
                    self.pretrained,
                    "model.pretrained",
                    revision=self.revision,
                    trust_remote_code=self.trust_remote_code,
                    **self.overrides,
                )
            else:
                try:
                    self._config = AutoConfig.for_model(self.model_type, **self.overrides)
                except StrictDataclassError as e:  # a field value the config class refuses
                    raise ConfigError(f"model.config: {e.__cause__ or e}") from None
                except ValueError as e:
                    raise ConfigError(f"model.model_type={self.model_type!r}: {e}") from None
            applied = apply_dropout(self._config, self.dropout)
            if applied:
                log.info("Dropout: %s", applied)
        return self._config

    def check(self, head: str, block_size: int | None, length_field: str = "data.block_size") -> None:
        """Cheap checks before data preparation: the head exists for this architecture, the sequences fit."""
        config = self.hf_config()
        if head not in HEADS:
            raise ConfigError(f"unknown model head {head!r}; known: {sorted(HEADS)}")
        if type(config) not in HEADS[head]._model_mapping:
            raise ConfigError(
                f"model {self.describe()!r} (model_type={config.model_type}) has no {head} head, so it cannot be "
                f"used with this task. Pick a model whose architecture has one (e.g. model=gpt_small for causal_lm, "
                f"model=bert_small for masked_lm)."
            )
        limit = max_positions(config)
        if block_size is not None and limit is not None and block_size > limit:
            raise ConfigError(
                f"{length_field}={block_size} is larger than the model's maximum positions ({limit}, model "
                f"{self.describe()!r}). Lower {length_field}, or for a model built from scratch raise its "
                f"position limit (e.g. model.config.{_max_position_field(config)}={block_size})."
            )
        if config.model_type == "gpt2" and not uses_bias(config) and self.implementation != "native":
            raise ConfigError(
                f"model {self.describe()!r} has bias: false in its GPT-2 config (model.config.bias=false, or the "
                "config.json of a bias-free lmlab export), and only model.implementation=native trains GPT-2 without "
                "biases. Add model.implementation=native, or set model.config.bias=true to train its (zero) biases "
                "with the Hugging Face class"
            )
        if self.implementation == "native":
            if head != "causal_lm":
                raise ConfigError(
                    f"model.implementation=native is a causal LM (task=clm); this task trains a {head} head. "
                    "Use model.implementation=hf"
                )
            check_native_config(config)
        self.meta_model(head)  # what the class rejects fails now

    def meta_model(self, head: str) -> PreTrainedModel:
        """The architecture on the meta device: shapes without weights (no memory, milliseconds), e.g. to
        check which parameters an optimizer would get before any data work."""
        remote = {"trust_remote_code": True} if self.trust_remote_code else {}
        with torch.device("meta"):
            return HEADS[head].from_config(copy.deepcopy(self.hf_config()), **self._build_kwargs(), **remote)

    def _build_kwargs(self) -> dict[str, Any]:
        return {"attn_implementation": self.attn_implementation} if self.attn_implementation else {}

    def build(
        self, head: str, tokenizer: PreTrainedTokenizerBase, head_config: dict[str, Any] | None = None
    ) -> PreTrainedModel:
        """Make the model. ``head_config`` sets task fields of the config first (``num_labels``, ``id2label``,
        ``problem_type``, ...); a pretrained head of another shape is re-initialized, and the log says so."""
        config = self.hf_config()
        for key, value in (head_config or {}).items():
            setattr(config, key, value)
        auto_cls = HEADS[head]
        n_tokens = len(tokenizer)
        kwargs = self._build_kwargs()
        if self.pretrained:
            if not self.resize_token_embeddings:
                self._check_own_vocabulary(tokenizer)  # before any weight is loaded
            model, info = load_pretrained_or_explain(
                auto_cls.from_pretrained,
                self.pretrained,
                "model.pretrained",
                config=config,
                revision=self.revision,
                trust_remote_code=self.trust_remote_code,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                **kwargs,
            )
            _report_new_weights(self.pretrained, info)
            self.new_weights = sorted(
                set(info.get("missing_keys") or []) | {m[0] for m in info.get("mismatched_keys") or []}
            )
            rows = model.get_input_embeddings().num_embeddings
            if n_tokens > rows:
                if not self.resize_token_embeddings:
                    raise ConfigError(
                        f"the tokenizer has {n_tokens} tokens but model {self.pretrained!r} has only {rows} "
                        "embedding rows; token ids would index out of range. Use the model's own tokenizer "
                        "(tokenizer=pretrained tokenizer.name_or_path=<same as model.pretrained>) or set "
                        "model.resize_token_embeddings=true to add rows on purpose."
                    )
                log.warning(
                    "Resizing the token embeddings of %s from %d to %d rows", self.pretrained, rows, n_tokens
                )
                model.resize_token_embeddings(n_tokens)
        else:
            multiple = self.pad_vocab_multiple
            config.vocab_size = (n_tokens + multiple - 1) // multiple * multiple
            if getattr(config, "is_encoder_decoder", False):
                set_decoder_token_ids(config, tokenizer)
            model = auto_cls.from_config(config, **kwargs)
        set_special_token_ids(model, tokenizer)
        if self.freeze:
            freeze(
                model,
                embeddings=bool(self.freeze.get("embeddings")),
                layers=int(self.freeze.get("layers") or 0),
            )
        if self.implementation == "native":
            model = NativeGPT2LMHeadModel.from_hf(model)  # the same parameter tensors, a lean forward
        if self.gradient_checkpointing:
            # recompute activations in the backward pass: less memory, ~30% slower
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # from_pretrained returns the model in eval mode, and Lightning keeps submodule modes as they are:
        # without this, a fine-tuned pretrained model would silently train without dropout.
        return model.train()

    def _check_own_vocabulary(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """A local pretrained folder with its own tokenizer (an lmlab export) learned that tokenizer's ids: the
        run's must keep them (it may add tokens, e.g. a pad token); another vocabulary is an error."""
        folder = Path(self.pretrained).expanduser()
        if not (folder / "tokenizer_config.json").is_file():
            return
        try:
            own = AutoTokenizer.from_pretrained(str(folder)).get_vocab()
        except Exception:  # noqa: BLE001 - no readable tokenizer there: nothing to compare with
            return
        ours = tokenizer.get_vocab()
        moved = sum(1 for token, i in own.items() if ours.get(token) != i)
        if moved:
            raise ConfigError(
                f"the tokenizer is not the one model {self.pretrained!r} was trained with: {moved} of its "
                f"{len(own)} tokens are missing or have other ids, so the embeddings would read other tokens. Use "
                "the model's own tokenizer (tokenizer=pretrained tokenizer.name_or_path=<same as model.pretrained>) "
                "or set model.resize_token_embeddings=true to train with this one on purpose."
            )


def _report_new_weights(name: str, info: dict[str, Any]) -> None:
    """Say which weights were not taken from the checkpoint (a new task head, or one of another shape)."""
    mismatched = info.get("mismatched_keys") or []
    if mismatched:
        shapes = ", ".join(f"{k} {tuple(old)} -> {tuple(new)}" for k, old, new in list(mismatched)[:4])
        log.warning(
            "%s: re-initialized %d weight(s) whose shape differs from the checkpoint, on purpose (a task head "
            "with another number of labels): %s", name, len(mismatched), shapes,
        )  # fmt: skip
    missing = [k for k in info.get("missing_keys") or [] if k not in {m[0] for m in mismatched}]
    if missing:
        log.info(
            "%s: newly initialized weights (not in the checkpoint): %s", name, ", ".join(sorted(missing)[:8])
        )
