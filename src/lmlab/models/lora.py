"""Which weights a fine-tune trains: all of them (``finetune=full``) or LoRA adapters (``finetune=lora``).

LoRA comes from the Hugging Face ``peft`` library: ``get_peft_model`` freezes the pretrained weights and adds
trainable low-rank matrices beside the target layers; ``modules_to_save`` (e.g. a new classification head)
stay fully trainable. ``check`` runs on the model's meta-device twin, before any data work, so a target that
matches nothing fails in seconds. A LoRA run's checkpoints hold only the trainable weights and the frozen base's
identity (``base_identity``): a resume rebuilds the base from ``model.pretrained`` and loads the adapter.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import PreTrainedModel

from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The layers LoRA adapts when finetune.target_modules is null, by model_type: every attention and MLP
# projection (as in the QLoRA paper), by the leaf names of each Hugging Face class.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    **dict.fromkeys(
        ["llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "olmo2"], _LLAMA_LIKE
    ),
    **dict.fromkeys(["bert", "roberta", "xlm-roberta", "electra"], ["query", "key", "value", "dense"]),
    **dict.fromkeys(["t5", "mt5"], ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"]),
    **dict.fromkeys(["bart", "mbart", "marian"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
}
# peft's task type per model head (it decides how the wrapper calls the model); masked LMs have none
TASK_TYPES = {"causal_lm": "CAUSAL_LM", "seq2seq_lm": "SEQ_2_SEQ_LM", "sequence_classification": "SEQ_CLS"}
# A classification head is new and small: trained in full beside the adapters
HEAD_MODULES = {"sequence_classification": ("classifier", "score", "classification_head")}
_ADAPTABLE = ("Linear", "Conv1D", "Embedding", "Conv2d")  # layer classes LoRA can wrap


class FineTuning:
    """What the ``finetune`` config group instantiates.

    Args:
        method: ``full`` (every weight trains) or ``lora`` (adapters on frozen weights).
        r: the adapters' rank; alpha: their scale numerator (the update is ``alpha / r * B A``).
        dropout: on the adapters' input.
        target_modules: leaf names of the layers to adapt (``[q_proj, v_proj]``); null: the default of the
            model's family (``DEFAULT_TARGETS``).
        modules_to_save: modules trained in full beside the adapters; null: the classification head, if any.
    """

    def __init__(
        self,
        method: str = "full",
        r: int = 8,
        alpha: float = 16,
        dropout: float = 0.05,
        target_modules: list[str] | None = None,
        modules_to_save: list[str] | None = None,
    ) -> None:
        if method not in ("full", "lora"):
            raise ConfigError(
                f"finetune.method={method!r} must be full or lora (finetune=full or finetune=lora)"
            )
        self.method = method
        if method == "lora":
            if not isinstance(r, int) or r < 1:
                raise ConfigError(f"finetune.r={r} must be a positive integer (the adapters' rank, e.g. 8)")
            if not alpha or alpha <= 0:
                raise ConfigError(f"finetune.alpha={alpha} must be positive (e.g. 2 x finetune.r)")
            if not 0 <= dropout < 1:
                raise ConfigError(f"finetune.dropout={dropout} must be in [0, 1)")
        self.r, self.alpha, self.dropout = r, alpha, dropout
        self.target_modules = _names(target_modules, "finetune.target_modules")
        self.modules_to_save = _names(modules_to_save, "finetune.modules_to_save")

    @property
    def is_lora(self) -> bool:
        return self.method == "lora"

    def check(self, factory: Any, head: str) -> LoraConfig | None:
        """The peft config for this model and head, from its meta-device twin; a ConfigError if it can't be."""
        if not self.is_lora:
            return None
        if factory.implementation == "native":
            raise ConfigError("finetune=lora adapts Hugging Face models: use model.implementation=hf")
        if not factory.pretrained:
            raise ConfigError(
                "finetune=lora adapts pretrained weights, and this model is built from scratch: set model.pretrained "
                "(a hub name or a local folder, e.g. model=pretrained model.pretrained=<run dir>/export)"
            )
        model = factory.meta_model(head)
        model_type = model.config.model_type
        adaptable = _adaptable_leaf_names(model)
        targets = self.target_modules
        if targets is None:
            if model_type not in DEFAULT_TARGETS:
                raise ConfigError(
                    f"finetune=lora has no default target modules for model_type={model_type} "
                    f"(model {factory.describe()!r}): name them, e.g. finetune.target_modules=[{','.join(adaptable[:2])}]"
                    f". Its adaptable layers: {', '.join(adaptable)}"
                )
            targets = [t for t in DEFAULT_TARGETS[model_type] if t in adaptable]
        else:
            missing = [t for t in targets if not _matches(model, t)]
            if missing:
                raise ConfigError(
                    f"finetune.target_modules: {missing} match no layer of model {factory.describe()!r} "
                    f"(model_type={model_type}). Its adaptable layers: {', '.join(adaptable)}; set e.g. "
                    f"finetune.target_modules=[{','.join(adaptable[:2])}]"
                )
            wrong = [t for t in targets if not _matches(model, t, adaptable_only=True)]
            if wrong:
                raise ConfigError(
                    f"finetune.target_modules: {wrong} name layers LoRA cannot adapt (it adapts Linear, Conv1D and "
                    f"Embedding layers). Adaptable layers of this model: {', '.join(adaptable)}"
                )
        to_save = self.modules_to_save
        if to_save is None:
            to_save = [n for n in HEAD_MODULES.get(head, ()) if hasattr(model, n)] or None
        else:
            missing = [n for n in to_save if not _matches(model, n)]
            if missing:
                children = ", ".join(n for n, _ in model.named_children())
                raise ConfigError(
                    f"finetune.modules_to_save: {missing} match no module of model {factory.describe()!r}; "
                    f"its top-level modules: {children}"
                )
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            modules_to_save=to_save,
            task_type=TASK_TYPES.get(head),
            fan_in_fan_out=model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
            bias="none",
        )

    def apply(self, model: PreTrainedModel, factory: Any, head: str) -> PreTrainedModel | PeftModel:
        """The model to train: ``model`` itself (full), or ``model`` wrapped by peft with adapters (lora)."""
        config = self.check(factory, head)
        if config is None:
            return model
        # Weights the checkpoint lacked (a BERT pooler after masked-LM pretraining) are random: they train in full
        # and are saved with the adapter, which is otherwise useless on a freshly loaded base
        new = _new_modules(model, factory.new_weights, config.modules_to_save or [])
        if new:
            config.modules_to_save = [*(config.modules_to_save or []), *new]
            config.exclude_modules = new
        peft_model = get_peft_model(model, config)
        peft_model.lmlab_base = base_identity(peft_model)
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in peft_model.parameters())
        log.info(
            "LoRA (r=%d, alpha=%s) on %s%s: %s trainable of %s parameters (%.2f%%)",
            self.r, self.alpha, ",".join(sorted(config.target_modules)),
            f", training {','.join(config.modules_to_save)} in full" if config.modules_to_save else "",
            f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1),
        )  # fmt: skip
        return peft_model


def is_adapter(model: nn.Module) -> bool:
    """True for a peft-wrapped model: only its adapters (and ``modules_to_save``) train and are saved."""
    return isinstance(model, PeftModel)


def base_identity(model: PeftModel) -> dict[str, str]:
    """Which frozen weights the adapters were trained on: the pretrained name or path, and a fingerprint of the
    frozen tensors (a strided sample of each, so it costs milliseconds even for billions of weights)."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad or ".original_module." in name:  # the new head's frozen copy is random
            continue
        flat = param.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)].float().cpu()
        digest.update(name.encode())
        digest.update(sample.numpy().tobytes())
    return {"name_or_path": str(model.config.name_or_path), "fingerprint": digest.hexdigest()[:16]}


def adapter_meta(model: nn.Module) -> dict[str, Any] | None:
    """What a LoRA checkpoint records beside its adapter weights: the base's identity and the peft config (as
    plain JSON values), so ``evaluate.py`` can rebuild the model from a checkpoint alone; None for full runs."""
    if not is_adapter(model):
        return None
    config = json.loads(json.dumps(model.peft_config["default"].to_dict(), default=_plain))
    return {**model.lmlab_base, "peft_config": config}


def adapter_from_meta(base: PreTrainedModel, meta: dict[str, Any]) -> PeftModel:
    """The peft model a checkpoint's ``adapter_meta`` describes, on ``base`` (adapters not loaded yet)."""
    config = {k: v for k, v in meta["peft_config"].items() if k not in ("peft_type", "auto_mapping")}
    return get_peft_model(base, LoraConfig(**config))


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, (set, frozenset)) else str(value)


def trainable_keys(module: nn.Module) -> set[str]:
    return {name for name, param in module.named_parameters() if param.requires_grad}


def adapter_state(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trainable entries of a module's state dict: what a LoRA checkpoint holds."""
    keep = trainable_keys(module)
    return {k: v for k, v in state.items() if k in keep}


def with_frozen_weights(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An adapter-only state dict completed with the module's own frozen weights (rebuilt from
    ``model.pretrained``), for a strict load: a missing trainable weight is still an error."""
    keep = trainable_keys(module)
    own = {k: v for k, v in module.state_dict().items() if k not in keep}
    return {**own, **state}


def merged_copy(model: PeftModel) -> PreTrainedModel:
    """A plain Hugging Face model with the adapters added into its weights (the model in training is kept)."""
    return copy.deepcopy(model).merge_and_unload()


def _new_modules(model: nn.Module, new_weights: list[str], to_save: list[str]) -> list[str]:
    """The modules holding newly initialized weights, except those already trained in full."""
    modules = dict(model.named_modules())
    found = set()
    for key in new_weights:
        path = key.rsplit(".", 1)[0]
        if path in modules and not any(
            path == n or path.endswith("." + n) or f".{n}." in f".{path}." for n in to_save
        ):
            found.add(path)
    return sorted(found)


def _names(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    names = [str(v) for v in value]
    if not names:
        raise ConfigError(f"{field}=[] is empty: name at least one module, or set it to null for the default")
    return names


def _matches(model: nn.Module, target: str, adaptable_only: bool = False) -> bool:
    """peft's rule for a list of names: a module whose full name is ``target`` or ends with ``.target``."""
    return any(
        (name == target or name.endswith("." + target))
        and (not adaptable_only or type(mod).__name__ in _ADAPTABLE)
        for name, mod in model.named_modules()
    )


def _adaptable_leaf_names(model: nn.Module) -> list[str]:
    """The distinct last names of the layers LoRA can adapt (``c_attn``, ``q_proj``, ...)."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, mod in model.named_modules()
            if name and type(mod).__name__ in _ADAPTABLE
        }
    )
