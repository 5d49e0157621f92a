"""Decide quickly whether the Hugging Face hub can be reached, so offline runs fail at once instead of hanging."""

from __future__ import annotations

import os
import socket

_TRUE = {"1", "true", "yes", "on"}


def hub_offline_reason(host: str = "huggingface.co", timeout: float = 3.0) -> str | None:
    """Return why the hub cannot be used (offline flag or no connection), or None if it looks reachable."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}=1 is set, so the hub is not contacted"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as e:
        return f"cannot reach {host} ({e.__class__.__name__}: {e}); you appear to be offline"
