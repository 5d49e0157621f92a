"""Registers the configs of ``hydra/sweeper=lmlab_optuna`` and its samplers (``hydra/sweeper/sampler=tpe|random``).

The sweeper's config is ``lmlab.sweeps.settings.LmlabOptunaSweeperConf``, the settings the loop reads.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from lmlab.sweeps.settings import LmlabOptunaSweeperConf


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


ConfigStore.instance().store(
    group="hydra/sweeper", name="lmlab_optuna", node=LmlabOptunaSweeperConf, provider="lmlab"
)
ConfigStore.instance().store(group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConf, provider="lmlab")
ConfigStore.instance().store(
    group="hydra/sweeper/sampler", name="random", node=RandomSamplerConf, provider="lmlab"
)
