"""What the thin entry points share: run a stage function, turn user errors into a message and an exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from lmlab.errors import TRACEBACK_ENV, raise_user_error, user_error

log = logging.getLogger("lmlab")

EXIT_USER_ERROR = 2


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001
        return False


def set_runtime_defaults() -> None:
    """Environment defaults that must be set before torch/tokenizers start threads, and the config resolvers."""
    from lmlab.stages.resolvers import register_resolvers

    register_resolvers()
    # The Rust tokenizer's thread pool does not survive fork() (DataLoader workers); silence its warning.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _single_console_log() -> None:
    """Lightning adds its own console handler; under Hydra's logging every line would print twice."""
    if logging.getLogger().handlers:
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).handlers.clear()


def _log_to_files(message: str) -> None:
    """Record the message in the run's log file without printing it a second time on the console."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_stage(stage: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> float | None:
    """Run ``stage(cfg)`` and return the value of ``cfg.optimized_metric`` (what sweepers optimize).

    A user error (bad config, data or path; also one Hydra's ``instantiate`` wrapped, see
    ``lmlab.errors.user_error``) prints one clear message and exits with code 2, with the traceback behind it
    only when ``LMLAB_TRACEBACK=1``; in a multirun the exception is re-raised so the sweeper can record the
    failed job and go on. Any other exception (a bug) keeps its traceback.
    """
    _single_console_log()
    try:
        metrics = stage(cfg)
    except Exception as e:
        error = user_error(e)
        if error is None:
            raise
        if _in_multirun():
            if error is e:
                raise
            raise_user_error(error, e)
        if os.environ.get(TRACEBACK_ENV) == "1":
            traceback.print_exception(e, file=sys.stderr)
        _log_to_files(f"error: {error}")
        print(f"\nerror: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    name = cfg.get("optimized_metric")
    if name and name in metrics:
        return float(metrics[name])
    return None
