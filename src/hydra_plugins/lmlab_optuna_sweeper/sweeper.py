"""The Hydra Sweeper plugin class. Hydra imports every plugin module at start-up: Optuna loads lazily."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from lmlab.sweeps.settings import LmlabOptunaSweeperConf


class LmlabOptunaSweeper(Sweeper):
    """Search with Optuna: TPE or random sampling, failure tolerance, storage and resume.

    See ``lmlab.sweeps.optuna_sweep`` for the loop and ``lmlab.sweeps.settings`` for the settings.
    """

    def __init__(self, sampler: Any, params: Any = None, enqueue_trials: Any = None, **settings: Any) -> None:
        super().__init__()
        # Hydra instantiates the sweeper with its config's keys: the settings as it composed and resolved them.
        self.settings = LmlabOptunaSweeperConf(
            sampler=sampler,
            params=OmegaConf.to_container(params) if OmegaConf.is_config(params) else params,
            enqueue_trials=list(enqueue_trials or []),
            **settings,
        )
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from lmlab.sweeps.checks import user_errors_exit
        from lmlab.sweeps.launchers import check_launcher

        self.hydra_context = hydra_context
        self.config = config
        with user_errors_exit():
            check_launcher(config)  # before Hydra imports it, so a missing plugin names its extra
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from dataclasses import replace

        from hydra.utils import instantiate

        from lmlab.sweeps.checks import user_errors_exit
        from lmlab.sweeps.optuna_sweep import OptunaSweep

        assert self.hydra_context is not None and self.config is not None
        loader, config = self.hydra_context.config_loader, self.config
        settings = self.settings
        if OmegaConf.is_config(settings.sampler):  # Hydra instantiated the sweeper with _recursive_ off
            settings = replace(settings, sampler=instantiate(settings.sampler))
        with user_errors_exit():
            sweep = OptunaSweep(
                settings,
                config,
                self.launcher,
                compose=lambda overrides: loader.load_sweep_config(config, list(overrides)),
            )
            return sweep.run(arguments)
