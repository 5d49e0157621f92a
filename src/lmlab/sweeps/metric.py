"""What a sweep optimizes: ``optimized_metric`` and its direction, checked before any trial runs."""

from __future__ import annotations

import re
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError

# train() returns <stage>/<name> metrics (val/loss, test/ppl, val/accuracy) and best/<monitor.metric>.
METRIC_NAME = re.compile(r"^(best/)?(train|val|test)/\S+$")
DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}
_LOWER_IS_BETTER = ("loss", "ppl", "perplexity", "error")


def normalize_direction(direction: object, key: str = "hydra.sweeper.direction") -> str:
    """``minimize`` or ``maximize`` (``min``/``max`` too, so ``${monitor.mode}`` can be used as is)."""
    value = DIRECTIONS.get(str(direction).strip().lower())
    if value is None:
        raise ConfigError(f"{key}={direction} is not a direction: use minimize or maximize (or min, max)")
    return value


def check_optimized_metric(cfg: DictConfig) -> str | None:
    """``cfg.optimized_metric`` once it is known to be something train returns (None: nothing set)."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    monitor = OmegaConf.select(cfg, "monitor.metric", default=None)
    if not METRIC_NAME.match(str(name)):
        raise ConfigError(
            f"optimized_metric={name} is not a metric train returns: its metrics are named "
            f"<stage>/<name> (val/loss, val/ppl, test/loss, ...) plus best/{monitor}, the best value of "
            "monitor.metric"
        )
    if name.startswith("best/") and name[len("best/") :] != monitor:
        raise ConfigError(
            f"optimized_metric={name}: train records the best value of monitor.metric only, and "
            f"monitor.metric={monitor}. Set monitor.metric={name[len('best/') :]} (and monitor.mode), "
            f"or optimized_metric=best/{monitor}"
        )
    if name.startswith("test/") and not cfg.get("run_test", False):
        raise ConfigError(
            f"optimized_metric={name} needs the test stage: set run_test=true or optimize a val/ metric"
        )
    return str(name)


def infer_direction(cfg: DictConfig) -> str:
    """The direction of ``optimized_metric`` for sweepers that do not say (Hydra's basic sweeper).

    The monitored metric has ``monitor.mode``; any other metric is minimized when its name says loss,
    perplexity or error, else maximized (accuracy, F1, correlations).
    """
    name = str(cfg.get("optimized_metric") or "")
    monitor = cfg.get("monitor") or {}
    if name.removeprefix("best/") == monitor.get("metric"):
        return normalize_direction(monitor.get("mode", "min"), "monitor.mode")
    return "minimize" if any(word in name.lower() for word in _LOWER_IS_BETTER) else "maximize"


def missing_metric_message(name: str, returned: Iterable[str]) -> str:
    return (
        f"optimized_metric={name} is not among the metrics train returned: {', '.join(sorted(returned))}. "
        "Set optimized_metric to one of them (an hparams_search config may set it)."
    )
