"""``resume=auto``: continue from the newest good checkpoint of the run folder (``lmlab.config.run_dir`` finds
the folder of the same command). Checkpoints are tried newest first; a truncated or corrupt one is skipped
with a warning for the previous good one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lmlab.checkpoints.reader import checkpoint_step

log = logging.getLogger(__name__)


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
