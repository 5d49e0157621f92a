"""The metrics ``train`` will return for a job's config, known before the job runs: what a sweep can optimize.

``train`` returns (and writes to ``metrics.json``) what was logged last: the task module's ``train/`` and
``val/`` metrics (``lmlab.tasks.metric_names``) and those of lmlab's callbacks (tokens/s, continuation
scores); the validation metrics of the best checkpoint as ``best/<name>``, ``best/<monitor.metric>`` among
them; and the test metrics when ``run_test`` is set. Learning rates are logged too, but are settings, not
outcomes. A name listed here can still be missing from a run (a test split that is not configured, a
logging window never reached): the sweep then stops after its first trial, naming what train returned.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from lmlab.metrics.generated_text import GENERATION_METRICS
from lmlab.tasks.metric_names import task_metric_names


def returned_metric_names(cfg: DictConfig) -> list[str] | None:
    """What a job with this config returns and a sweep may optimize; None when its task module is not known."""
    task = task_metric_names(cfg)
    if task is None:
        return None
    logged = [*task.all, *callback_metric_names(cfg)]
    names = [n for n in logged if not n.startswith("test/") or cfg.get("run_test", False)]
    monitor = OmegaConf.select(cfg, "monitor.metric", default=None)
    best = [f"best/{n}" for n in ([monitor] if monitor else []) + [n for n in names if n.startswith("val/")]]
    return list(dict.fromkeys([*names, *best]))


def callback_metric_names(cfg: DictConfig) -> list[str]:
    """What lmlab's configured callbacks log: throughput (``perf/mfu`` only where a peak is known) and
    continuation scores."""
    from lmlab.callbacks import ContinuationEval, Throughput

    names: list[str] = []
    for callback in (cfg.get("callbacks") or {}).values():
        if not callback or "_target_" not in callback:
            continue
        cls = get_class(callback._target_)
        if issubclass(cls, Throughput):
            names += ["train/tokens", "perf/tokens_per_sec", "perf/samples_per_sec"]
            names += ["perf/mfu"] if callback.get("peak_tflops", "auto") is not None else []
        elif issubclass(cls, ContinuationEval):
            names += [f"val/cont_{m}" for m in GENERATION_METRICS]
    return names


def closest_first(name: str, names: Iterable[str]) -> list[str]:
    """``names`` from the most to the least similar to ``name``."""
    return sorted(names, key=lambda n: (-difflib.SequenceMatcher(None, name, n).ratio(), n))
