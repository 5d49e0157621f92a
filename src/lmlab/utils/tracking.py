"""Experiment loggers. Weights & Biases picks online or offline mode itself and never prompts for a login."""

from __future__ import annotations

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


def build_wandb_logger(
    project: str = "lmlab",
    save_dir: str = ".",
    mode: str = "auto",
    id: str | None = None,
    **kwargs: Any,
):
    """A Lightning ``WandbLogger`` that logs offline (and says how to sync) when no credentials are found.

    ``id`` continues an existing run (set automatically when resuming from a checkpoint).
    Other keyword arguments (entity, group, name, tags, job_type, log_model, ...) go to ``wandb.init``.
    """
    from lightning.pytorch.loggers import WandbLogger

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
    if id:
        kwargs.update(id=id, resume="allow")
    return WandbLogger(project=project, save_dir=save_dir, mode=mode, **kwargs)
