"""The OmegaConf resolvers that lmlab's configs use, registered before Hydra composes a config.

``${lmlab.run_dir:...}`` (``hydra.run.dir``: resume=auto finds the previous folder of the same command; all
ranks of a torchrun/srun launch agree on it), ``${lmlab.rank_zero_only:...}`` and ``${lmlab.per_rank:...}``
(what each rank writes),
``${lmlab.precision:...}`` (``trainer.precision=auto``), ``${lmlab.sweep_group:...}`` and
``${lmlab.job_run_name:...}`` (W&B group and run names of sweep jobs). The entry points (``train.py``,
``evaluate.py``) register them through ``lmlab.stages.runner``; so does the sweeper plugin, which Hydra
imports in every process that composes a config (sweep jobs on SLURM included).
"""

from __future__ import annotations

from omegaconf import OmegaConf


def register_resolvers() -> None:
    """Register every ``lmlab.*`` resolver (idempotent)."""
    from lmlab.config.run_dir import per_rank, rank_zero_only, run_dir
    from lmlab.scale.precision import auto_precision
    from lmlab.sweeps.naming import job_run_name, sweep_group

    for name, fn in {
        "lmlab.run_dir": run_dir,
        "lmlab.rank_zero_only": rank_zero_only,
        "lmlab.per_rank": per_rank,
        "lmlab.precision": auto_precision,
        "lmlab.sweep_group": sweep_group,
        "lmlab.job_run_name": job_run_name,
    }.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)
