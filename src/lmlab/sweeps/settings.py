"""The settings of the ``lmlab_optuna`` sweeper: ``hydra.sweeper`` with ``hydra/sweeper=lmlab_optuna``.

One dataclass serves both sides: ``hydra_plugins.lmlab_optuna_sweeper.config`` registers it with Hydra's
ConfigStore as the sweeper's structured config (its fields are the keys a user sets, with their types and
defaults; Hydra names the class in its errors about them), and the sweeper hands the loop
(``lmlab.sweeps.optuna_sweep``) an instance of it built from what Hydra composed and resolved.
Hydra imports every plugin module at start-up: only dataclasses and OmegaConf here.
"""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

# The plugin class: the sweeper config's _target_, and how a multirun tells that this sweeper runs it.
SWEEPER_TARGET = "hydra_plugins.lmlab_optuna_sweeper.sweeper.LmlabOptunaSweeper"


@dataclass
class LmlabOptunaSweeperConf:
    """``hydra.sweeper`` of the lmlab_optuna sweeper.

    The defaults are those of the Hydra config: ``n_jobs`` and ``storage`` default to interpolations that
    Hydra resolves, so code that builds the settings itself (outside Hydra) sets both.
    """

    # Read by Hydra only: the plugin class, and this config's defaults list (the sampler group).
    _target_: str = SWEEPER_TARGET
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])

    # Any optuna sampler: _target_ plus its arguments (hydra/sweeper/sampler=tpe|random). The loop gets the
    # Optuna sampler itself: Hydra instantiates it with the sweeper (or the sweeper does, if Hydra did not).
    sampler: Any = MISSING
    # minimize or maximize (min/max too, so `${monitor.mode}` works). The metric is `optimized_metric`.
    direction: str = "minimize"
    # Trials in the study in all: finished ones (also from earlier runs of the same study) count.
    n_trials: int = 20
    # Trials asked and launched at a time (the joblib launcher runs them in parallel); -1: one per CPU.
    n_jobs: Any = "${oc.select:hydra.launcher.n_jobs,1}"
    # Any SQLAlchemy URL (sqlite:///..., postgresql://...); null keeps the study in memory (no resume).
    storage: str | None = "sqlite:///${hydra.sweep.dir}/optuna.db"
    # null: <experiment_name>-sweep-<sweep folder name>. Same storage + name = resume, or share between workers.
    study_name: str | None = None
    # Stop the sweep after this many failed trials (null: never; failed trials are recorded and skipped).
    max_failures: int | None = None
    # Parameters to try first in a new study, e.g. [{optimizer.lr: 1e-3}] (the current defaults).
    enqueue_trials: list[dict[str, Any]] = field(default_factory=list)
    # The search space: key -> interval(a, b) | tag(log, interval(a, b)) | range(a, b, step) | choice(a, b) | a,b
    params: dict[str, Any] | None = None
