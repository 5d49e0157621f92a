"""Does a checkpoint fit the run that resumes from it? Checked before any weight is loaded.

``ckpt_path`` continues a run: the task, the model head, the architecture and the tokenizer must be the ones
that wrote the checkpoint. Otherwise Lightning fails deep inside ``load_state_dict`` (weights of another
shape), or, worse, loads weights into a model that reads other token ids. The lmlab entry of the checkpoint
(``metadata.py``) says what it holds; it is compared twice: the task, head and architecture as soon as the
model config is known (before the tokenizer and the data are prepared), then the names and shapes of all
weights and the tokenizer once the model is built. A mismatch is a CheckpointError that says what the
checkpoint holds, what the run builds, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from lmlab.checkpoints.eval_loader import tokenizer_from_files
from lmlab.checkpoints.folders import checkpoint_layout
from lmlab.checkpoints.reader import checkpoint_metadata, read_checkpoint
from lmlab.errors import CheckpointError
from lmlab.models.lora import adapter_state

# Names of the same quantity across architectures (GPT-2, BERT/Llama, T5/BART), first found wins.
_FIELDS = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "encoder_layers"),
    "width": ("hidden_size", "n_embd", "d_model"),
    "heads": ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads"),
    "vocabulary": ("vocab_size",),
}
_SHOWN = 4  # differences quoted in a message


@dataclass
class Build:
    """What a model is, in the terms a message uses: task class, head, architecture, sizes."""

    task: str | None
    head: str | None
    model_type: str | None
    sizes: dict[str, Any]
    tokenizer_size: int | None = None

    @classmethod
    def of(cls, task_target: str | None, head: str | None, model_config: dict[str, Any], **kw: Any) -> Build:
        sizes = {}
        for name, fields in _FIELDS.items():
            sizes[name] = next((model_config[f] for f in fields if model_config.get(f) is not None), None)
        if head == "sequence_classification" and model_config.get("id2label"):
            sizes["labels"] = len(model_config["id2label"])
        task = task_target.rsplit(".", 1)[-1] if task_target else None
        return cls(task, head, model_config.get("model_type"), sizes, **kw)

    def differences(self, run: Build) -> list[str]:
        """``name: checkpoint <this>, run <run's>`` for each field known on both sides that differs."""
        pairs = [("task", self.task, run.task), ("head", self.head, run.head)]
        pairs += [("model_type", self.model_type, run.model_type)]
        pairs += [(k, v, run.sizes.get(k)) for k, v in self.sizes.items()]
        return [
            f"{k}: checkpoint {a}, run {b}" for k, a, b in pairs if a is not None and b is not None and a != b
        ]

    def __str__(self) -> str:
        sizes = ", ".join(f"{k} {v}" for k, v in self.sizes.items() if v is not None)
        tokens = f", a tokenizer of {self.tokenizer_size} tokens" if self.tokenizer_size else ""
        return f"a {self.model_type} {self.head} model for {self.task} ({sizes}{tokens})"


@dataclass
class ResumeCheckpoint:
    """A checkpoint to resume from: its path, lmlab entry and the shapes of its weights (not the weights)."""

    path: str
    meta: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    layout: str = "file"  # or a folder's: "fsdp", "deepspeed" (folders.checkpoint_layout)

    @classmethod
    def read(cls, path: str | Path) -> ResumeCheckpoint:
        """Read it without its weights (a file memory-mapped, a folder's shapes from its index) or raise a
        CheckpointError saying why it can't be."""
        ckpt = read_checkpoint(path, weights=False)
        meta = checkpoint_metadata(ckpt, path)
        state = ckpt.get("state_dict") or {}
        shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
        return cls(str(path), meta, shapes, checkpoint_layout(Path(path)) or "file")

    def check_strategy(self, strategy: Any) -> None:
        """A checkpoint folder is read back by the strategy that wrote it: FSDP's by FSDP, DeepSpeed's by
        DeepSpeed (Lightning's other strategies load files only)."""
        from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy

        needed = {"fsdp": (FSDPStrategy, "trainer=fsdp (trainer=fsdp_cpu on CPUs)"),
                  "deepspeed": (DeepSpeedStrategy, "trainer=deepspeed")}.get(self.layout)  # fmt: skip
        if needed and not isinstance(strategy, needed[0]):
            raise CheckpointError(
                f"ckpt_path={self.path} is a {self.layout} checkpoint folder, which only the {needed[0].__name__} "
                f"resumes; this run uses {type(strategy).__name__}. Resume with {needed[1]}; to train on with another "
                "strategy, start a new run from the run's export (model=pretrained model.pretrained=<run dir>/export)"
            )

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        files = self.meta.get("tokenizer_files") or {}
        return tokenizer_from_files(files) if files else None

    def saved(self) -> Build:
        task = ((self.meta.get("config") or {}).get("task") or {}).get("_target_")
        size = len(self.tokenizer) if self.tokenizer is not None else None
        return Build.of(task, self.meta.get("head"), self.meta.get("model_config") or {}, tokenizer_size=size)

    def check_plan(self, task_target: str, head: str, model_config: dict[str, Any]) -> None:
        """The task, head and architecture the run is about to build (vocabulary not known yet)."""
        run = Build.of(task_target, head, model_config)
        run.sizes.update(vocabulary=None, labels=None)  # set from the tokenizer and the data at build time
        saved = self.saved()
        differences = saved.differences(run)
        if differences:
            raise self._error(saved, run, differences)

    def check_module(self, module: Any) -> None:
        """The built module: every weight's name and shape (of a LoRA run: every trainable one, and the frozen
        base's identity), and the tokenizer's vocabulary."""
        state = module.state_dict()
        differences = _adapter_differences(
            self.meta.get("adapter_base"), getattr(module.model, "lmlab_base", None)
        )
        if differences:
            raise CheckpointError(f"ckpt_path={self.path} does not fit this run: {differences[0]}")
        if self.meta.get("adapter_base"):
            state = adapter_state(module, state)
        for key in sorted(set(state) | set(self.shapes)):
            ours = tuple(state[key].shape) if key in state else None
            theirs = self.shapes.get(key)
            if ours != theirs:
                differences.append(f"{key}: checkpoint {theirs or 'absent'}, run {ours or 'absent'}")
        if self.tokenizer is not None:
            differences += _tokenizer_differences(self.tokenizer, module.tokenizer)
        if differences:
            run = Build.of(
                f"{type(module).__module__}.{type(module).__name__}",
                module.HEAD,
                module.model.config.to_dict(),
                tokenizer_size=len(module.tokenizer),
            )
            raise self._error(self.saved(), run, differences)

    def _error(self, saved: Build, run: Build, differences: list[str]) -> CheckpointError:
        shown = "; ".join(differences[:_SHOWN]) + (
            f"; ... ({len(differences)} in all)" if len(differences) > _SHOWN else ""
        )
        config = Path(self.path).resolve().parent.parent / "config_resolved.yaml"  # <run>/checkpoints/x.ckpt
        where = f" (in {config})" if config.is_file() else ""
        return CheckpointError(
            f"ckpt_path={self.path} does not fit this run: the checkpoint holds {saved}; this run builds {run}. "
            f"Differences: {shown}. Fix: resume with the model, task and tokenizer settings of the run that wrote "
            f"it{where}, or start a new run from its weights with model=pretrained model.pretrained=<its run "
            "folder>/export (a new task head is added where needed)"
        )


def _adapter_differences(saved: dict[str, str] | None, run: dict[str, str] | None) -> list[str]:
    """A LoRA checkpoint resumes only a LoRA run on the same frozen base weights."""
    if not saved and not run:
        return []
    if not saved:
        return [
            "it holds every weight of a full fine-tune, and this run trains LoRA adapters; resume with finetune=full"
        ]
    if not run:
        return [
            f"it holds only LoRA adapters (on {saved['name_or_path']}), and this run trains every weight; "
            "resume with finetune=lora and that run's finetune settings"
        ]
    if saved["fingerprint"] != run["fingerprint"]:
        return [
            f"its LoRA adapters were trained on other frozen weights ({saved['name_or_path']}, fingerprint "
            f"{saved['fingerprint']}) than this run's ({run['name_or_path']}, fingerprint {run['fingerprint']}); "
            f"resume with model.pretrained={saved['name_or_path']} as it was when the checkpoint was written"
        ]
    return []


def _tokenizer_differences(saved: PreTrainedTokenizerBase, run: PreTrainedTokenizerBase) -> list[str]:
    if len(saved) != len(run):
        return [f"tokenizer: checkpoint {len(saved)} tokens, run {len(run)} tokens"]
    theirs, ours = saved.get_vocab(), run.get_vocab()
    moved = sum(1 for token, i in ours.items() if theirs.get(token) != i)
    return [f"tokenizer: the same size, but {moved} of {len(ours)} tokens have other ids"] if moved else []
