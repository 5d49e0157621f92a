"""``resume=auto``: continue from the newest good checkpoint of the run folder (``lmlab.config.run_dir`` finds
the folder of the same command). Checkpoints, files or FSDP/DeepSpeed folders, are tried newest first; a
truncated or corrupt file, or a folder whose save was interrupted, is skipped with a warning for the previous
good one. Hidden temporary folders of an atomic save (``.last.ckpt.tmp-*``) are not checkpoints at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lmlab.checkpoints.folders import is_temporary, missing_parts
from lmlab.checkpoints.reader import checkpoint_step

log = logging.getLogger(__name__)


def find_resume_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``run_dir`` (its ``checkpoints/`` and SLURM ``hpc_ckpt_*``)."""
    run_dir = Path(run_dir)
    found = [*run_dir.glob("checkpoints/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    candidates = [p for p in found if not is_temporary(p)]
    # newest first, so a readable checkpoint is found after as few loads as possible
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    best: tuple[int, float, Path] | None = None
    for path in candidates:
        missing = missing_parts(path) if path.is_dir() else None
        if missing:
            log.warning(
                "Skipping %s: an incomplete checkpoint folder (%s), its save was interrupted", path, missing
            )
            continue
        step = checkpoint_step(path)
        if step is None:
            log.warning("Skipping %s: not a readable checkpoint (truncated or corrupt)", path)
            continue
        key = (step, path.stat().st_mtime, path)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None
