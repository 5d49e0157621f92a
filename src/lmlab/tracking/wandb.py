"""Experiment loggers. Weights & Biases picks online or offline mode itself and never prompts for a login."""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_credentials_available() -> bool:
    """True if wandb can authenticate without asking: WANDB_API_KEY, or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).netloc
    path = os.environ.get("NETRC") or str(Path.home() / (".netrc" if os.name != "nt" else "_netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str = "auto") -> str:
    """``auto`` -> the WANDB_MODE environment variable if set, else online with credentials, else offline."""
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={mode!r} is not one of {WANDB_MODES}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    return "online" if wandb_credentials_available() else "offline"


HISTORY_MARKER = "lmlab_last_step.txt"


def _last_logged_step(history_dirs: list[str]) -> int | None:
    steps = []
    for folder in history_dirs:
        marker = Path(folder) / "wandb" / HISTORY_MARKER
        if marker.is_file():
            with contextlib.suppress(ValueError):
                steps.append(int(marker.read_text().strip()))
    return max(steps) if steps else None


def build_wandb_logger(
    project: str = "lmlab",
    save_dir: str = ".",
    mode: str = "auto",
    id: str | None = None,
    history_dirs: list[str] | None = None,
    **kwargs: Any,
):
    """A Lightning ``WandbLogger`` that logs offline (and says how to sync) when no credentials are found.

    ``id`` continues an existing run (set automatically when resuming from a checkpoint); steps that run
    already holds (logged before a kill, after the checkpoint that is resumed) are not logged twice.
    ``history_dirs``: run folders whose record of the last logged step to honour (set by train).
    Other keyword arguments (entity, group, name, tags, job_type, log_model, ...) go to ``wandb.init``.
    """
    mode = resolve_wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if mode == "offline" and not os.environ.get("WANDB_MODE"):
        log.warning(
            "W&B: no credentials found (WANDB_API_KEY or `wandb login`), so this run logs offline to %s/wandb. "
            "Upload it later with: wandb sync %s/wandb/offline-run-*",
            save_dir,
            save_dir,
        )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if "tags" in kwargs:
        kwargs["tags"] = list(kwargs["tags"])
    skip_until = None
    if id:
        kwargs.update(id=id, resume="allow")
        skip_until = _last_logged_step([save_dir, *(history_dirs or [])])
    return _resumable_wandb_logger()(
        project=project, save_dir=save_dir, mode=mode, skip_until=skip_until, **kwargs
    )


def _resumable_wandb_logger():
    from lightning.pytorch.loggers import WandbLogger

    class ResumableWandbLogger(WandbLogger):
        """Skips steps the resumed run already has in its history and records the last step it logged.

        A resumed run replays the steps between its checkpoint and the kill exactly (same data, same random
        numbers), so those values are already in the W&B history; logging them again would duplicate them.
        """

        def __init__(self, *args: Any, skip_until: int | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._skip_until = skip_until
            self._marker = Path(kwargs.get("save_dir") or ".") / "wandb" / HISTORY_MARKER

        def log_metrics(self, metrics, step: int | None = None) -> None:
            if step is not None and self._skip_until is not None and step <= self._skip_until:
                return
            super().log_metrics(metrics, step)
            if step is not None:
                self._marker.parent.mkdir(parents=True, exist_ok=True)
                self._marker.write_text(str(step))

    return ResumableWandbLogger
