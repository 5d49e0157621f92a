"""``resume=auto``: the same command finds its previous run folder and continues from its newest good checkpoint.

The run folder of a command is stable under ``resume=auto``: the newest folder under
``logs/<experiment_name>/runs/`` whose ``.hydra/overrides.yaml`` holds the same overrides (ignoring
``resume`` and ``ckpt_path``) is used again, so a relaunch after a kill, a preemption or a SLURM requeue
writes to the same place. Its checkpoints are tried newest first; a truncated or corrupt one is skipped
with a warning for the previous good one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from lmlab.config.secrets import scrub

log = logging.getLogger(__name__)

IGNORED_OVERRIDES = ("resume=", "ckpt_path=", "hydra.run.dir=", "hydra.output_subdir=")


def _comparable(overrides: Any) -> list[str]:
    # scrubbed like the saved copy, so a secret given on the command line still matches
    return sorted(scrub(str(o)) for o in (overrides or []) if not str(o).startswith(IGNORED_OVERRIDES))


def run_dir(base: str, resume: Any, overrides: Any, now: str | None = None) -> str:
    """The OmegaConf resolver behind ``hydra.run.dir``: a new timestamped folder, or with ``resume=auto`` the
    newest earlier folder of the same command (if any)."""
    if str(resume) == "auto":
        wanted = _comparable(overrides)
        candidates = []
        for folder in Path(base).glob("*"):
            saved = folder / ".hydra" / "overrides.yaml"
            if saved.is_file() and _comparable(yaml.safe_load(saved.read_text())) == wanted:
                candidates.append(folder)
        if candidates:
            return str(max(candidates, key=lambda p: p.stat().st_mtime))
    return str(Path(base) / (now or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")))


def checkpoint_step(path: Path) -> int | None:
    """The global step of a readable checkpoint, or None if it is truncated or corrupt."""
    import torch  # here, not at import: registering the config resolvers must stay light

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt.get("global_step", -1))
    except Exception:  # noqa: BLE001 - any failure means: not a usable checkpoint
        return None


def find_resume_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``run_dir`` (its ``checkpoints/`` and SLURM ``hpc_ckpt_*``)."""
    run_dir = Path(run_dir)
    files = [*run_dir.glob("checkpoints/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    # newest first, so a readable file is found after as few loads as possible
    files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    best: tuple[int, float, Path] | None = None
    for path in files:
        step = checkpoint_step(path)
        if step is None:
            log.warning("Skipping %s: not a readable checkpoint (truncated or corrupt)", path)
            continue
        key = (step, path.stat().st_mtime, path)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None
