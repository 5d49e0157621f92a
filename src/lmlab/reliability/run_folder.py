"""A Hydra callback (``hydra.callbacks.run_folder`` in conf/hydra/default.yaml): the run or sweep folder can be
created, checked before Hydra creates it. Without it, an unmakeable ``hydra.run.dir`` (a path under a file, an
unwritable parent) ends in a Hydra traceback instead of one message and exit code 2."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lmlab.config.checks import check_creatable
from lmlab.sweeps.checks import user_errors_exit


class CheckRunFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors_exit():
            check_creatable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors_exit():
            check_creatable(config.hydra.sweep.dir, "hydra.sweep.dir")
