"""Config of ``hydra/sweeper=lmlab_optuna`` and its samplers (``hydra/sweeper/sampler=tpe|random``)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    """Bayesian optimization (Tree-structured Parzen Estimator); random for the first n_startup_trials."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    # Random trials before TPE models the results (Optuna's default is 10; our search budgets are 8-30 trials).
    n_startup_trials: int = 5
    multivariate: bool = False
    # With n_jobs > 1: treat running trials as bad so one batch does not try the same point (experimental).
    constant_liar: bool = False


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class LmlabOptunaSweeperConf:
    _target_: str = "hydra_plugins.lmlab_optuna_sweeper.sweeper.LmlabOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])

    # Any optuna sampler: _target_ plus its arguments (hydra/sweeper/sampler=tpe|random).
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


ConfigStore.instance().store(
    group="hydra/sweeper", name="lmlab_optuna", node=LmlabOptunaSweeperConf, provider="lmlab"
)
ConfigStore.instance().store(group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConf, provider="lmlab")
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="random", node=RandomSamplerConf, provider="lmlab"
)
