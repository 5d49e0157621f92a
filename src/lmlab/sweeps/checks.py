"""Checks every sweep passes before its first job, and how their errors reach the user.

Grid sweeps (Hydra's basic sweeper) are checked here, from the multirun callback; the ``lmlab_optuna``
sweeper checks its search space and its first trial's config itself (``lmlab.sweeps.optuna_sweep``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import LmlabError
from lmlab.stages.runner import EXIT_USER_ERROR
from lmlab.sweeps.launchers import check_launcher
from lmlab.sweeps.metric import check_metric_is_returned, check_optimized_metric

log = logging.getLogger("lmlab")

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def check_before_start(config: DictConfig) -> None:
    """The launcher plugin is installed and ``optimized_metric`` is something train returns (for a grid
    sweep: something the first job's task module logs)."""
    check_launcher(config)
    metric = check_optimized_metric(config)
    if metric and OmegaConf.select(config, "hydra.sweeper._target_", default=None) == BASIC_SWEEPER:
        check_metric_is_returned(metric, first_grid_job(config))


def first_grid_job(config: DictConfig) -> DictConfig | None:
    """The composed config of the first job of a grid sweep (the first value of each swept key, as Hydra's
    basic sweeper orders them); None when it does not compose (the sweeper then reports why)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not GlobalHydra.instance().is_initialized():
        return None
    loader = GlobalHydra.instance().config_loader()
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    try:
        first: dict[str, str] = {}
        for override in OverridesParser.create(config_loader=loader).parse_overrides(lines):
            key = override.get_key_element()
            if not override.is_sweep_override():
                first[key] = f"{key}={override.get_value_element_as_str()}"
            elif override.is_discrete_sweep():
                first[key] = f"{key}={next(iter(override.sweep_string_iterator()))}"
            else:  # not a grid: the basic sweeper refuses it
                return None
        return loader.load_sweep_config(config, list(first.values()))
    except Exception as e:  # noqa: BLE001 - Hydra raises several kinds; the sweeper reports them
        log.debug("the first job of the sweep does not compose: %s", e)
        return None


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """A user error stops the sweep with one ``error: ...`` line and exit code 2, as a single run does."""
    try:
        yield
    except LmlabError as e:
        log.debug("sweep stopped", exc_info=True)
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
