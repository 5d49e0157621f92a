"""Load anything ``from_pretrained`` (model, config, tokenizer) from a local folder or the Hugging Face hub.

Offline, only the local Hugging Face cache is consulted, so a missing model fails at once instead of after
network retries; every failure becomes a ``CheckpointError`` naming the config field to fix. A local folder
whose files are damaged (a JSON file cut short, an incomplete safetensors file) says which file broke.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmlab.errors import CheckpointError
from lmlab.utils.network import hub_offline_reason


def load_pretrained_or_explain(load: Callable[..., Any], name: str, field: str, **kwargs: Any) -> Any:
    """Call a ``from_pretrained`` without hanging offline, turning failures into errors that say what to fix."""
    path = Path(name).expanduser()
    if path.exists():
        try:
            return load(str(path), **kwargs)
        except Exception as e:  # noqa: BLE001 - what a local folder's files cause: missing, damaged, foreign
            damaged = damaged_json(path) if path.is_dir() else None
            why = f"{damaged}; restore the file or export the model again" if damaged else _first_line(e)
            raise CheckpointError(f"{field}={name}: cannot load from this folder: {why}") from None
    if name.startswith(("/", "./", "../", "~")):
        raise CheckpointError(f"{field}={name}: no such file or folder")
    reason = hub_offline_reason()
    try:
        # Offline, only the local Hugging Face cache is consulted: no retries, no 30 s hang.
        return load(name, local_files_only=reason is not None, **kwargs)
    except (OSError, ValueError) as e:
        why = f"{reason}, and it is not in the local Hugging Face cache" if reason else _first_line(e)
        raise CheckpointError(
            f"{field}={name}: cannot load {name!r} from the Hugging Face hub ({why}). "
            f"Fix: set {field} to a local folder (e.g. an lmlab export dir) or go online."
        ) from None


def damaged_json(folder: Path) -> str | None:
    """The first JSON file of ``folder`` that does not parse, and where (``config.json`` cut short), or None."""
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"{path} is damaged ({e})"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if not isinstance(error, OSError) or not first else first
