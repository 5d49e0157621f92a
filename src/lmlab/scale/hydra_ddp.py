"""Launch DDP worker processes correctly from a Hydra job, in single runs and in multiruns alike.

Lightning re-runs the entry script for ranks > 0 with the original command line plus ``hydra.run.dir``.
Inside a multirun (``python train.py -m lr=1e-4,3e-4``) that command is the whole sweep, so every worker
would start a sweep of its own. Here workers get the job's own overrides (the values chosen for this job)
and its output folder, without ``-m``: one output folder and one W&B run per training run. Each worker logs
to ``<job>_rank<N>.log`` there (``lmlab.config.run_dir.per_rank``), as under torchrun and srun.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def hydra_worker_command(local_rank: int) -> tuple[Sequence[str], str]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    hydra_cfg = HydraConfig.get()
    command += [str(o) for o in hydra_cfg.overrides.task]
    command += [
        f"hydra.run.dir={hydra_cfg.runtime.output_dir}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


def install() -> None:
    """Make Lightning's subprocess launcher use ``hydra_worker_command``."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = hydra_worker_command


LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


class LaunchEnvironment:
    """Undo what Lightning's launcher writes into this process's environment when the run ends.

    The launcher sets ``LOCAL_RANK`` (and the rendezvous variables) in the launching process; the next job of
    a multirun in the same process would take ``LOCAL_RANK`` as a sign that an external launcher (torchrun)
    started it, spawn no workers and wait for them forever.
    """

    def __enter__(self) -> LaunchEnvironment:
        self.saved = {k: os.environ.get(k) for k in LAUNCH_ENV}
        return self

    def __exit__(self, *exc: object) -> None:
        import torch.distributed as dist

        # the workers of this run have exited: the next run must start a fresh process group
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
