"""Launchers are Hydra plugins installed with extras: a missing one is named, with its extra, up front.

``hydra_plugins.lmlab_optuna_sweeper.launcher_stand_ins`` gives Hydra a config for each missing launcher,
so that selecting one composes and reaches :func:`check_launcher`.
"""

from __future__ import annotations

import importlib.util

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError

# plugin module prefix -> (extra of this project, distribution, modules the plugin imports when launching)
LAUNCHER_EXTRAS = {
    "hydra_plugins.hydra_joblib_launcher": ("parallel", "hydra-joblib-launcher", ("joblib",)),
    "hydra_plugins.hydra_submitit_launcher": ("slurm", "hydra-submitit-launcher", ("submitit",)),
}


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def check_launcher(config: DictConfig) -> None:
    """Raise ConfigError naming the extra to install when ``hydra.launcher`` is not installed."""
    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    if not target:
        return
    choice = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher", target)
    module = str(target).rsplit(".", 1)[0]
    for prefix, (extra, dist, deps) in LAUNCHER_EXTRAS.items():
        if module.startswith(prefix):
            missing = [m for m in (module, *deps) if not importable(m)]
            if missing:
                raise ConfigError(
                    f"hydra/launcher={choice} needs {dist}, which is not installed (no module {missing[0]}): "
                    f'pip install -e ".[{extra}]" (or: pip install {dist})'
                )
            return
    if not importable(module):
        raise ConfigError(f"hydra/launcher={choice}: the launcher module {module} is not installed")
