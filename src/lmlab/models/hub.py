"""Load anything ``from_pretrained`` (model, config, tokenizer) from a local folder or the Hugging Face hub.

Offline, only the local Hugging Face cache is consulted, so a missing model fails at once instead of after
network retries; every failure becomes a ``CheckpointError`` naming the config field to fix.
"""

from __future__ import annotations

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
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{field}={name}: cannot load from this folder: {e}") from None
    if name.startswith(("/", "./", "../", "~")):
        raise CheckpointError(f"{field}={name}: no such file or folder")
    reason = hub_offline_reason()
    try:
        # Offline, only the local Hugging Face cache is consulted: no retries, no 30 s hang.
        return load(name, local_files_only=reason is not None, **kwargs)
    except (OSError, ValueError) as e:
        why = f"{reason}, and it is not in the local Hugging Face cache" if reason else str(e).splitlines()[0]
        raise CheckpointError(
            f"{field}={name}: cannot load {name!r} from the Hugging Face hub ({why}). "
            f"Fix: set {field} to a local folder (e.g. an lmlab export dir) or go online."
        ) from None
