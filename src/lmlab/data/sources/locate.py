"""Finding a split's data, for every source: local files first, then the Hugging Face hub.

Each source knows where its own files may be; what they share lives here: picking the first existing file,
loading a hub split, the one "no data found" error that lists everything tried (so a missing dataset is
fixed in one go, offline or not), and the fingerprints that key the caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lmlab.data.text_io import check_file
from lmlab.errors import DataError
from lmlab.utils.network import hub_offline_reason


def first_file(candidates: Iterable[Path], what: str) -> Path | None:
    """The first candidate that is a file (checked not to be empty: ``what`` names it in errors), or None."""
    found = next((p for p in candidates if p.is_file()), None)
    return None if found is None else check_file(found, what)


def no_data_error(what: str, tried: list[str], fix: str) -> DataError:
    """One error for a split that was found nowhere: every place tried, then the fix."""
    return DataError(f"{what}: no data found. Tried:\n  - " + "\n  - ".join(tried) + f"\nFix: {fix}")


def load_hub_split(path: str, name: str | None, split: str, what: str, tried: list[str]) -> Any:
    """Load one split of a hub dataset, or raise one DataError listing everything that was tried."""
    reason = hub_offline_reason()
    if reason is None:
        try:
            import datasets

            return datasets.load_dataset(path, name, split=split)
        except Exception as e:  # noqa: BLE001 - datasets raises many kinds; all mean "not available"
            reason = f"{type(e).__name__}: {e}"
    raise no_data_error(
        what,
        [*tried, f"hub dataset {path!r} (config {name!r}, split {split!r}): {reason}"],
        "put the files under paths.data_dir (or set the LMLAB_DATA_DIR environment variable / the "
        "paths.data_dir override to the folder that holds them), or go online so the hub can be used.",
    )


def file_fingerprint(paths: Iterable[Path]) -> str:
    """Path, size and modification time of each file: cheap, and changes when a file is edited."""
    parts = [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def hub_fingerprint(dataset: Any) -> str:
    """The ``datasets`` fingerprint of a loaded hub split: it changes whenever the split's content does.

    ``_fingerprint`` is private in ``datasets`` but is what its own cache is keyed by; reading it in this
    one place keeps a rename there a one-line fix here.
    """
    return dataset._fingerprint
