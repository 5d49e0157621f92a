"""Show the resolved config (secrets masked) and resolve it for saving and logging."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lmlab.config.secrets import scrub
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


def resolve(cfg: DictConfig, throw_on_missing: bool = True) -> dict[str, Any]:
    """The config as plain containers with every interpolation resolved (a bad one is a clear error);
    ``throw_on_missing=False`` keeps missing values (``???``) as they are."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=throw_on_missing)
    except Exception as e:  # noqa: BLE001 - omegaconf raises several kinds
        raise ConfigError(f"the config cannot be resolved: {e}") from None
    return container  # type: ignore[return-value]


@rank_zero_only
def print_config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER) -> None:
    """Print the resolved config as a rich tree, groups first, then top-level values; secrets are masked
    (``lmlab.config.secrets``), as in every saved or logged copy."""
    import rich
    import rich.syntax
    import rich.tree

    config = scrub(resolve(cfg, throw_on_missing=False))
    config.pop("hydra", None)
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in config] + [k for k in config if k not in order]
    top = {}
    for key in keys:
        value = config[key]
        if isinstance(value, dict):
            branch = tree.add(str(key), style="bold")
            branch.add(rich.syntax.Syntax(_yaml(value), "yaml"))
        else:
            top[key] = value
    if top:
        tree.add("run", style="bold").add(rich.syntax.Syntax(_yaml(top), "yaml"))
    rich.print(tree)


def _yaml(value: dict[str, Any]) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(value))
