"""Show and save the resolved config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

PRINT_ORDER = (
    "data",
    "tokenizer",
    "model",
    "task",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "paths",
)


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers with every interpolation resolved (a bad one is a clear error)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except Exception as e:  # noqa: BLE001 - omegaconf raises several kinds
        raise ConfigError(f"the config cannot be resolved: {e}") from None


@rank_zero_only
def print_config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER) -> None:
    """Print the resolved config as a rich tree, groups first, then top-level values."""
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order and k != "hydra"]
    top = {}
    for key in keys:
        value = cfg[key]
        if isinstance(value, DictConfig):
            branch = tree.add(str(key), style="bold")
            branch.add(rich.syntax.Syntax(OmegaConf.to_yaml(value, resolve=True), "yaml"))
        else:
            top[key] = value
    if top:
        tree.add("run", style="bold").add(
            rich.syntax.Syntax(OmegaConf.to_yaml(OmegaConf.create(top)), "yaml")
        )
    rich.print(tree)
