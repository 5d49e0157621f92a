"""Cheap checks of a config before any work: value types of common overrides, writable folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError

# key -> (kind, example); only keys that exist in the composed config are checked
TYPED_KEYS = {
    "seed": (int, "42"),
    "optimizer.lr": (float, "3e-4"),
    "optimizer.weight_decay": (float, "0.01"),
    "optimizer.eps": (float, "1e-8"),
    "optimizer.muon.lr": (float, "0.02"),
    "optimizer.muon.weight_decay": (float, "0.0"),
    "optimizer.adamw.lr": (float, "3e-3"),
    "optimizer.adamw.weight_decay": (float, "0.1"),
    "scheduler.warmup_ratio": (float, "0.05"),
    "scheduler.warmup_steps": (int, "100"),
    "scheduler.min_lr_ratio": (float, "0.1"),
    "scheduler.decay_ratio": (float, "0.2"),
    "data.batch_size": (int, "16"),
    "data.eval_batch_size": (int, "32"),
    "data.block_size": (int, "128"),
    "data.max_length": (int, "128"),
    "data.num_workers": (int, "2"),
    "trainer.max_steps": (int, "1000"),
    "trainer.max_epochs": (int, "3"),
    "trainer.accumulate_grad_batches": (int, "4"),
    "trainer.gradient_clip_val": (float, "1.0"),
    "trainer.log_every_n_steps": (int, "50"),
}
BOOL_KEYS = ("slurm_requeue",)


def check_types(cfg: DictConfig) -> None:
    """``optimizer.lr=abc`` fails here, naming the override, instead of deep inside torch after data preparation."""
    for key in BOOL_KEYS:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
    for key, (kind, example) in TYPED_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None:
            continue
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{key}={value!r} must be {what}, e.g. {key}={example}")


def check_writable(path: str | Path, setting: str) -> Path:
    """Create the folder if needed and write a probe file into it; explain the fix if that fails."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ConfigError(
            f"{setting}={path} is not writable ({e.strerror or e}); set {setting} to a writable folder"
        ) from None
    return path


def check_creatable(path: str | Path, setting: str) -> None:
    """Fail early, without creating anything, when ``path`` could not be created: its nearest existing
    ancestor is a file, or a folder this user cannot write to."""
    path = Path(path).absolute()
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(
            f"{setting}={path} cannot be created: {ancestor} is a file; set {setting} to a folder"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{setting}={path} cannot be created: {ancestor} is not writable; set {setting} to a writable folder"
        )
