"""Checks every sweep passes before its first job, and how their errors reach the user."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf import DictConfig

from lmlab.errors import LmlabError
from lmlab.stages.runner import EXIT_USER_ERROR
from lmlab.sweeps.launchers import check_launcher
from lmlab.sweeps.metric import check_optimized_metric

log = logging.getLogger("lmlab")


def check_before_start(config: DictConfig) -> None:
    """The launcher plugin is installed and ``optimized_metric`` is something train returns."""
    check_launcher(config)
    check_optimized_metric(config)


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """A user error stops the sweep with one ``error: ...`` line and exit code 2, as a single run does."""
    try:
        yield
    except LmlabError as e:
        log.debug("sweep stopped", exc_info=True)
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
