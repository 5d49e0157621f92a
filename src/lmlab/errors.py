"""User-facing errors: each says what is wrong and how to fix it, and ends the run with a non-zero exit.

Our own checks raise these classes directly. What the libraries underneath reject (a learning rate torch
refuses, a precision Lightning does not know, a model shape the Hugging Face class cannot build) reaches
the user the same way through ``config_stage``: every place that builds something from the config runs
inside one, and an exception the library raises there becomes ``ConfigError("<stage>: <the library's
message> (the <group> settings ...)")``. Errors of our own code (a bug) keep their traceback.

The entry points print a user error as one line, ``error: <message>``, and exit with code 2. To see the
full traceback behind it (the library's own frames included), set ``LMLAB_TRACEBACK=1``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

TRACEBACK_ENV = "LMLAB_TRACEBACK"  # =1: print the traceback behind a user error too


class LmlabError(Exception):
    """Base class for errors caused by the user's input (config, data, paths), not by a bug."""


class ConfigError(LmlabError):
    """A config value or override is invalid."""


class DataError(LmlabError):
    """Data files are missing, empty, malformed or unreachable."""


class CheckpointError(LmlabError):
    """A checkpoint or export path does not exist, cannot be read or does not fit the run."""


class NonFiniteLossError(LmlabError):
    """The training loss became NaN or infinite."""


# What libraries raise for a value they reject while an object is built from config.
BUILD_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    RuntimeError,
    ImportError,
    AssertionError,
    OverflowError,
)
_SHOWN_OVERRIDES = 4  # the last ones of the group quoted in a message
_PACKAGE_DIR = str(Path(__file__).resolve().parent) + os.sep


@contextmanager
def config_stage(
    stage: str,
    group: str | None = None,
    kinds: tuple[type[BaseException], ...] = BUILD_ERRORS,
    library_only: bool = False,
) -> Iterator[None]:
    """Turn what a library raises while building ``stage`` from config into a ConfigError naming ``group``.

    ``group``: the config group (or key) to look at, ``stage`` by default; its overrides given on the
    command line are quoted. ``kinds``: the exception classes converted (Lightning's MisconfigurationException
    too), when the library raised them: the innermost frame is outside lmlab; with ``library_only``, no lmlab
    frame lies between the library's first frame and the raise (the library failed by itself, not in code of
    ours it called back, such as a training step). Hydra's InstantiationException is judged by its cause
    (an unknown ``_target_`` or key is a ConfigError). Our own LmlabErrors pass unchanged; anything else
    (a bug) keeps its traceback.
    """
    try:
        yield
    except Exception as e:
        error = _convert(e, stage, group or stage, kinds, library_only)
        if error is None or error is e:
            raise
        raise_user_error(error, e)


def raise_user_error(error: LmlabError, original: BaseException) -> None:
    """Raise ``error`` in place of ``original``: a new one with ``original`` as its cause (the traceback
    ``LMLAB_TRACEBACK=1`` shows); one of ours that Hydra had wrapped as it was raised."""
    if error.__traceback__ is None:
        raise error from original
    error.__suppress_context__ = True
    raise error


def user_error(exc: BaseException) -> LmlabError | None:
    """The user error ``exc`` stands for, or None for an internal error: an LmlabError as it is, also when
    Hydra's ``instantiate`` wrapped it; any other failure of ``instantiate`` judged as ``config_stage`` does,
    the stage named by the config key Hydra reports."""
    return _convert(exc, None, None, (), False)


def _convert(
    exc: BaseException,
    stage: str | None,
    group: str | None,
    kinds: tuple[type[BaseException], ...],
    library_only: bool,
) -> LmlabError | None:
    if isinstance(exc, LmlabError):
        return exc
    if _is_instance(exc, "hydra.errors", "InstantiationException"):
        key = _full_key(str(exc))
        stage, group = stage or key or "config", group or key
        cause = exc.__cause__
        if cause is None:  # Hydra's own complaint: a _target_ that cannot be found, imported or called
            return ConfigError(_message(stage, str(exc), group))
        return _convert(cause, stage, group, kinds or BUILD_ERRORS, library_only)
    # Lightning's word for a bad setting; judged like the other kinds, where a stage expects library errors
    misconfigured = _is_instance(exc, "lightning.fabric.utilities.exceptions", "MisconfigurationException")
    known = isinstance(exc, kinds) or (bool(kinds) and misconfigured)
    if known and _raised_by_library(exc.__traceback__, library_only):
        return ConfigError(_message(stage or "config", str(exc) or type(exc).__name__, group))
    return None


def _is_instance(exc: BaseException, module: str, name: str) -> bool:
    """isinstance without importing ``module`` (if it was never imported, nothing raised its classes)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded else None
    return cls is not None and isinstance(exc, cls)


def _full_key(message: str) -> str | None:
    found = re.search(r"^full_key: (\S+)", message, re.MULTILINE)
    return found.group(1) if found else None


def _raised_by_library(tb: TracebackType | None, library_only: bool) -> bool:
    """Whether the innermost frame is outside lmlab; with ``library_only``, every frame after the first one
    outside lmlab is outside it too."""
    ours = []
    while tb is not None:
        ours.append(os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR))
        tb = tb.tb_next
    if not ours or ours[-1]:
        return False
    return not library_only or not any(ours[ours.index(False) :])


def _message(stage: str, library_message: str, group: str | None) -> str:
    lines = [line for line in library_message.splitlines() if not line.startswith("full_key:")]
    text = " ".join(" ".join(lines).split()).removesuffix(".")
    return f"{stage}: {text}{_hint(group)}"


def _hint(group: str | None) -> str:
    """Where to look: the config group, and what the command line set in it."""
    if not group:
        return ""
    mine = [o for o in _command_line_overrides() if _touches(o, group)]
    shown = " ".join(mine[-_SHOWN_OVERRIDES:])
    more = "... " if len(mine) > _SHOWN_OVERRIDES else ""
    set_here = f"; set on the command line: {more}{shown}" if mine else ""
    return f" (check the {group} settings{set_here})"


def _touches(override: str, group: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
    return key == group or key.startswith(group + ".") or group.startswith(key + ".")


def _command_line_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    except Exception:  # noqa: BLE001 - no Hydra run: nothing to quote
        return []
