"""The W&B logger. It picks online or offline mode itself, never prompts for a login, never waits on an
unreachable server without bound (``connect_timeout``, ``init_timeout``: then it logs offline, with one
warning line), and records no secret (tags, config and the process arguments it stores are masked)."""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import DictConfig, ListConfig, OmegaConf

from lmlab.config.secrets import masked_argv, scrub
from lmlab.errors import ConfigError
from lmlab.tracking.reachability import server_answers

log = logging.getLogger(__name__)

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"


def wandb_credentials_available() -> bool:
    """True if wandb can authenticate without asking: WANDB_API_KEY, or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(wandb_base_url()).netloc
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


def choose_wandb_mode(mode: str, save_dir: str, connect_timeout: float) -> str:
    """``resolve_wandb_mode``, and online only if the W&B server answers within ``connect_timeout`` seconds.
    Offline by this choice (not by WANDB_MODE or the config) is one warning line with the sync command."""
    chosen = resolve_wandb_mode(mode)
    if chosen == "online" and not server_answers(wandb_base_url(), connect_timeout):
        warn_offline(f"{wandb_base_url()} did not answer within {connect_timeout:g} s", save_dir)
        return "offline"
    if chosen == "offline" and mode == "auto" and not os.environ.get("WANDB_MODE"):
        warn_offline("no credentials found (WANDB_API_KEY or `wandb login`)", save_dir)
    return chosen


def warn_offline(reason: str, save_dir: str) -> None:
    log.warning(
        "W&B: %s, so this run logs offline to %s/wandb. "
        "Upload it later with: wandb sync %s/wandb/offline-run-*",
        reason,
        save_dir,
        save_dir,
    )


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
    connect_timeout: float = 10.0,
    init_timeout: float = 60.0,
    **kwargs: Any,
):
    """A Lightning ``WandbLogger`` that logs offline (and says how to sync) without credentials or server.

    ``id`` continues an existing run (set automatically when resuming from a checkpoint); steps that run
    already holds (logged before a kill, after the checkpoint that is resumed) are not logged twice.
    ``history_dirs``: run folders whose record of the last logged step to honour (set by train).
    ``connect_timeout``: seconds the W&B server has to answer before an online run goes offline;
    ``init_timeout``: seconds ``wandb.init`` may take online before the run goes offline all the same.
    Other keyword arguments (entity, group, name, tags, job_type, log_model, ...) go to ``wandb.init``,
    secrets masked.
    """
    mode = choose_wandb_mode(mode, save_dir, connect_timeout)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    kwargs = {
        k: OmegaConf.to_container(v, resolve=True) if isinstance(v, (DictConfig, ListConfig)) else v
        for k, v in kwargs.items()
        if v is not None
    }
    kwargs = scrub(kwargs)
    kwargs["settings"] = {**(kwargs.get("settings") or {}), "init_timeout": float(init_timeout)}
    skip_until = None
    if id:
        kwargs.update(id=id, resume="allow")
        skip_until = _last_logged_step([save_dir, *(history_dirs or [])])
    return _resumable_wandb_logger()(
        project=project, save_dir=save_dir, mode=mode, skip_until=skip_until, **kwargs
    )


def _resumable_wandb_logger():
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers import WandbLogger

    class ResumableWandbLogger(WandbLogger):
        """Starts its W&B run with the process arguments masked (W&B records them), offline if an online start
        fails; skips steps the resumed run already has in its history and records the last step it logged.

        A resumed run replays the steps between its checkpoint and the kill exactly (same data, same random
        numbers), so those values are already in the W&B history; logging them again would duplicate them.
        """

        def __init__(self, *args: Any, skip_until: int | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._skip_until = skip_until
            self._marker = Path(kwargs.get("save_dir") or ".") / "wandb" / HISTORY_MARKER

        @property
        @rank_zero_experiment
        def experiment(self):
            if self._experiment is not None:
                return self._experiment
            import wandb

            with masked_argv():
                try:
                    return super().experiment
                except (wandb.Error, TimeoutError) as e:
                    if self._wandb_init.get("mode") != "online":
                        raise
                    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    warn_offline(f"wandb.init failed online ({scrub(first_line)})", str(self._save_dir))
                    self._wandb_init["mode"] = "offline"
                    return super().experiment

        def log_metrics(self, metrics, step: int | None = None) -> None:
            if step is not None and self._skip_until is not None and step <= self._skip_until:
                return
            super().log_metrics(metrics, step)
            if step is not None:
                self._marker.parent.mkdir(parents=True, exist_ok=True)
                self._marker.write_text(str(step))

    return ResumableWandbLogger
