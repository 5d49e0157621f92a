"""The run folder of a command (``hydra.run.dir``), stable under ``resume=auto``.

With ``resume=auto`` the newest folder under ``logs/<experiment_name>/runs/`` whose ``.hydra/overrides.yaml``
holds the same overrides (ignoring ``resume`` and ``ckpt_path``) is used again, so a relaunch after a kill,
a preemption or a SLURM requeue writes to the same place (``lmlab.checkpoints.resume`` then finds its
newest good checkpoint).

Under torchrun or srun every rank composes its own config: rank 0 chooses the folder and the others take its
choice (``lmlab.scale.launch.agree``), so all ranks of a run write to one folder. Only rank 0 writes Hydra's
``.hydra/`` record of the run; each other rank logs to its own ``<job>_rank<N>.log``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from lmlab.config.secrets import scrub
from lmlab.scale.launch import agree, global_rank

IGNORED_OVERRIDES = ("resume=", "ckpt_path=", "hydra.run.dir=", "hydra.output_subdir=")


def _comparable(overrides: Any) -> list[str]:
    # scrubbed like the saved copy, so a secret given on the command line still matches
    return sorted(scrub(str(o)) for o in (overrides or []) if not str(o).startswith(IGNORED_OVERRIDES))


def run_dir(base: str, resume: Any, overrides: Any, now: str | None = None) -> str:
    """The OmegaConf resolver behind ``hydra.run.dir``: a new timestamped folder, or with ``resume=auto`` the
    newest earlier folder of the same command (if any); the same on every rank of a torchrun/srun launch."""
    return agree("run_dir", lambda: _choose(base, resume, overrides, now))


def _choose(base: str, resume: Any, overrides: Any, now: str | None) -> str:
    if str(resume) == "auto":
        wanted = _comparable(overrides)
        candidates = []
        for folder in Path(base).glob("*"):
            saved = folder / ".hydra" / "overrides.yaml"
            try:
                same = saved.is_file() and _comparable(yaml.safe_load(saved.read_text())) == wanted
            except (OSError, yaml.YAMLError):  # a damaged folder of an earlier run is not this command's
                same = False
            if same:
                candidates.append(folder)
        if candidates:
            return str(max(candidates, key=lambda p: p.stat().st_mtime))
    return str(Path(base) / (now or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")))


def rank_zero_only(value: Any) -> Any:
    """``value`` on rank 0, None on the other ranks (``hydra.output_subdir``: one ``.hydra/`` record per run)."""
    return value if global_rank() == 0 else None


def per_rank(name: str) -> str:
    """``name`` on rank 0, ``<name>_rank<N>`` on rank N (log files of externally launched ranks)."""
    rank = global_rank()
    return name if rank == 0 else f"{name}_rank{rank}"
