"""What a sweep optimizes: ``optimized_metric`` and its direction, checked before any trial runs.

Two checks: the name's form, from the sweep's config (``check_optimized_metric``); then the name itself,
against what the first job's task module and callbacks will log (``check_metric_is_returned``), from that
job's composed config without building its tokenizer, data or model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError

log = logging.getLogger("lmlab.sweeps")

# train() returns <stage>/<name> metrics (val/loss, test/ppl, perf/tokens_per_sec) and the validation
# metrics of the best checkpoint as best/val/<name> (and best/<monitor.metric>).
METRIC_NAME = re.compile(r"^(best/)?(train|val|test|perf)/\S+$")
DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}
_LOWER_IS_BETTER = ("loss", "ppl", "perplexity", "error")
_LISTED = 20  # names in the message of an optimized_metric the trials will not return


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
    name = str(name)
    monitor = OmegaConf.select(cfg, "monitor.metric", default=None)
    if not METRIC_NAME.match(name):
        raise ConfigError(
            f"optimized_metric={name} is not a metric train returns: its metrics are named "
            f"<stage>/<name> (val/loss, val/ppl, test/loss, ...) plus best/val/<name>, the validation "
            f"metrics of the best checkpoint (best/{monitor}: the best value of monitor.metric)"
        )
    best_of = name[len("best/") :] if name.startswith("best/") else None
    if best_of is not None and best_of != monitor and not best_of.startswith("val/"):
        raise ConfigError(
            f"optimized_metric={name}: train records best values of the validation metrics (best/val/...) "
            f"and of monitor.metric={monitor} only. Optimize best/val/<name>, or set "
            f"monitor.metric={best_of} (and monitor.mode)"
        )
    if name.startswith("test/") and not cfg.get("run_test", False):
        raise ConfigError(
            f"optimized_metric={name} needs the test stage: set run_test=true or optimize a val/ metric"
        )
    return name


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


def check_metric_is_returned(name: str, job_config: DictConfig | None) -> None:
    """Refuse ``optimized_metric`` when the job of ``job_config`` will not return it, listing the names it
    could be (closest first). Skipped when they cannot be known without running the job."""
    if job_config is None:
        return
    from lmlab.sweeps.returned import closest_first, returned_metric_names

    try:
        names = returned_metric_names(job_config)
    except Exception as e:  # noqa: BLE001 - e.g. a data file the job itself will report
        log.warning("optimized_metric=%s is checked after the first trial: %s", name, e)
        return
    if names is None or name in names:
        return
    task = OmegaConf.select(job_config, "task._target_", default="?").rsplit(".", 1)[-1]
    closest = closest_first(name, names)
    more = f" and {len(closest) - _LISTED} more" if len(closest) > _LISTED else ""
    raise ConfigError(
        f"optimized_metric={name} is not a metric the trials will return ({task}, "
        f"run_test={str(bool(job_config.get('run_test'))).lower()}); it could be: "
        f"{', '.join(closest[:_LISTED])}{more} (closest first). Set optimized_metric to one of them (an "
        "hparams_search config may set it)."
    )
