"""Prepared token shards: a local folder or an object-store prefix written by ``prepare_data.py``.

The layout is litdata's, one optimized dataset per split, plus what lmlab records beside it::

    <location>/lmlab_shards.json     what the shards hold: tokenizer, token dtype, splits and their chunks
    <location>/tokenizer/            the tokenizer the shards were made with (save_pretrained files)
    <location>/<split>/              litdata's index.json + chunk-*.bin (TokensLoader: flat token ids)

``lmlab_shards.json`` is written last, so a location without it holds no finished shards. Remote prefixes
(``s3://``, ``gs://``, ``r2://``) are read and written through litdata's own storage clients; each scheme
needs its client library, which is checked before anything else is done.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock
from transformers import PreTrainedTokenizerBase

from lmlab.data.tokenizer import PretrainedTokenizer, TokenizerSpec, TrainedTokenizer, tokenizer_fingerprint
from lmlab.errors import ConfigError, DataError
from lmlab.utils.io import atomic_write_json

MANIFEST = "lmlab_shards.json"
TOKENIZER_DIR = "tokenizer"
PROGRESS = "lmlab_progress.json"  # a preparation under way: the parts of each split done so far
FORMAT_VERSION = 1
# scheme -> (the module litdata needs for it, the package that provides it)
REMOTE_SCHEMES = {
    "s3": ("boto3", "boto3"),
    "r2": ("boto3", "boto3"),
    "gs": ("google.cloud.storage", "google-cloud-storage"),
}


class ShardLocation:
    """Where shards live, and the small files lmlab keeps there (manifest, progress, tokenizer).

    Args:
        location: a local folder or ``s3://bucket/prefix`` (also ``gs://``, ``r2://``).
        field: the config field that set it, for messages.
        storage_options: passed to litdata's storage clients (credentials, endpoint URL, ...).
    """

    def __init__(self, location: str, field: str, storage_options: dict[str, Any] | None = None) -> None:
        location = str(location or "").strip()
        if not location:
            raise ConfigError(f"{field} is not set: give the folder (or s3:// prefix) that holds the shards")
        self.field, self.storage_options = field, dict(storage_options or {})
        scheme = location.split("://", 1)[0].lower() if "://" in location else None
        if scheme == "file":
            location, scheme = location.split("://", 1)[1], None
        if scheme is None:
            self.url: str | None = None
            self.root = str(Path(location).expanduser().resolve())
            return
        if scheme not in REMOTE_SCHEMES:
            known = ", ".join(f"{s}://" for s in REMOTE_SCHEMES)
            raise ConfigError(
                f"{field}={location}: litdata cannot read or write {scheme}:// locations; use a local folder "
                f"or one of {known}"
            )
        module, package = REMOTE_SCHEMES[scheme]
        if _missing(module):
            raise ConfigError(
                f"{field}={location}: litdata reads {scheme}:// through the {package} package, which is not "
                f"installed. Fix: pip install {package}"
            )
        self.url, self.root = location.rstrip("/"), location.rstrip("/")

    @property
    def remote(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        return self.root

    def join(self, *parts: str) -> str:
        """A path (or URL) inside the location."""
        return "/".join([self.root, *parts]) if self.remote else str(Path(self.root, *parts))

    # ------------------------------------------------------------------ small files
    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the location, or None where there is none."""
        if not self.remote:
            path = Path(self.join(name))
            if not path.is_file():
                return None
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise DataError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp, "file.json")
            if not self._fs().exists(self.join(name)):
                return None
            self._fs().download_file(self.join(name), str(local))
            return json.loads(local.read_text())

    def write_json(self, name: str, obj: dict[str, Any]) -> None:
        """Write a JSON file of the location (atomically where it is a local folder)."""
        if not self.remote:
            atomic_write_json(self.join(name), obj)
            return
        with tempfile.TemporaryDirectory() as tmp:
            atomic_write_json(Path(tmp, "file.json"), obj)
            self._fs().upload_file(str(Path(tmp, "file.json")), self.join(name))

    def delete(self, name: str) -> None:
        """Remove a file or folder of the location (nothing happens where there is none)."""
        if self.remote:
            self._fs().delete_file_or_directory(self.join(name))
            return
        path = Path(self.join(name))
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def put_folder(self, local: Path, name: str) -> None:
        """Copy the files of a local folder into ``name`` (a subfolder of the location)."""
        for file in sorted(p for p in local.iterdir() if p.is_file()):
            if self.remote:
                self._fs().upload_file(str(file), self.join(name, file.name))
            else:
                Path(self.join(name)).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, self.join(name, file.name))

    def get_folder(self, name: str, files: Sequence[str], local: Path) -> Path:
        """``files`` of the subfolder ``name`` as a local folder (downloaded into ``local`` if remote)."""
        if not self.remote:
            return Path(self.join(name))
        local.mkdir(parents=True, exist_ok=True)
        for file in files:
            if not (
                local / file
            ).is_file():  # downloaded under another name first: a kill leaves no half file
                self._fs().download_file(self.join(name, file), str(local / f".{file}.part"))
                os.replace(local / f".{file}.part", local / file)
        return local

    def _fs(self) -> Any:
        from litdata.streaming.fs_provider import _get_fs_provider

        return _get_fs_provider(self.root, self.storage_options)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


class ShardSource:
    """The splits of prepared shards (see the module docstring), as a data source of ``StreamingDataModule``.

    Args:
        location: the folder or ``s3://``/``gs://``/``r2://`` prefix given to ``prepare_data.py location=...``.
        storage_options: for remote locations, passed to litdata's storage clients.
    """

    FIELD = "data.source.location"

    def __init__(self, location: str, storage_options: dict[str, Any] | None = None) -> None:
        self.location = ShardLocation(location, self.FIELD, storage_options)
        self._manifest: dict[str, Any] | None = None

    def manifest(self) -> dict[str, Any]:
        """``lmlab_shards.json``; a DataError naming the location where there are no finished shards."""
        if self._manifest is None:
            manifest = self.location.read_json(MANIFEST)
            if manifest is None:
                progress = self.location.read_json(PROGRESS)
                state = "an unfinished preparation (run the same prepare_data.py command again to finish it)"
                raise DataError(
                    f"{self.FIELD}={self.location}: no prepared shards there (no {MANIFEST}"
                    + (f"; it holds {state})" if progress else ")")
                    + ". Fix: python prepare_data.py data=<your text data> location=<folder>, then train "
                    "with data.source.location=<that folder>"
                )
            if manifest.get("format") != FORMAT_VERSION:
                raise DataError(
                    f"{self.location.join(MANIFEST)} has format {manifest.get('format')!r}; this lmlab reads "
                    f"format {FORMAT_VERSION}: prepare the shards again with this version"
                )
            self._manifest = manifest
        return self._manifest

    def split_names(self) -> list[str]:
        return list(self.manifest()["splits"])

    def split(self, split: str) -> dict[str, Any]:
        splits = self.manifest()["splits"]
        if split not in splits:
            raise DataError(
                f"{self.FIELD}={self.location} has no {split!r} split (it has {sorted(splits)}); name one of "
                f"those in data.splits, or set the stage to null (e.g. data.splits.test=null)"
            )
        return splits[split]

    def check(self, splits: Sequence[str]) -> None:
        for split in splits:
            self.split(split)

    def dataset_dir(self, split: str) -> str:
        """The litdata dataset of a split (what ``StreamingDataset(input_dir=...)`` reads)."""
        self.split(split)
        return self.location.join(split)

    def chunk_cache(self, split: str, cache_dir: str | Path) -> str | None:
        """Where chunks of a remote split are downloaded to (None for a local folder: read in place)."""
        if not self.location.remote:
            return None
        key = hashlib.sha256(self.location.join(split).encode()).hexdigest()[:16]
        return str(Path(cache_dir) / "shards" / key)

    def tokenizer_dir(self, cache_dir: str | Path) -> Path:
        """The folder of the tokenizer saved with the shards (downloaded to the cache if remote)."""
        files = self.manifest()["tokenizer"]["files"]
        key = hashlib.sha256(self.location.root.encode()).hexdigest()[:16]
        local = Path(cache_dir) / "shards" / key / TOKENIZER_DIR
        if not self.location.remote:
            return self.location.get_folder(TOKENIZER_DIR, files, local)
        local.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(local) + ".lock"):  # the ranks of a machine download it once
            return self.location.get_folder(TOKENIZER_DIR, files, local)

    def check_tokenizer_spec(self, spec: TokenizerSpec) -> None:
        """The run's tokenizer settings against the preparation's (cheap: nothing is loaded or trained)."""
        made = self.manifest()["tokenizer"]
        if (
            isinstance(spec, TrainedTokenizer)
            and made.get("trained") != tokenizer_record(spec, None)["trained"]
        ):
            raise tokenizer_mismatch(str(self.location), made, tokenizer_record(spec, None))

    def check_tokenizer(self, tokenizer: PreTrainedTokenizerBase, spec: TokenizerSpec) -> None:
        """The run's tokenizer must produce the ids the shards hold: the same fingerprint."""
        made = self.manifest()["tokenizer"]
        if tokenizer_fingerprint(tokenizer) != made["fingerprint"]:
            raise tokenizer_mismatch(str(self.location), made, tokenizer_record(spec, tokenizer))

    def fingerprint(self, split: str) -> str:
        made = json.dumps([self.manifest()["settings"], self.split(split)["chunks"]], sort_keys=True)
        return f"shards-{hashlib.sha256(f'{self.location}|{split}|{made}'.encode()).hexdigest()[:16]}"

    def describe(self, split: str) -> str:
        info = self.split(split)
        return f"shards {self.location.join(split)} ({info['tokens']} tokens in {len(info['chunks'])} chunks)"


# ---------------------------------------------------------------------------------------- tokenizer
TRAINED_SETTINGS = ("kind", "vocab_size", "min_frequency", "lowercase", "max_lines", "atomic_tokens")


def tokenizer_record(spec: TokenizerSpec, tokenizer: PreTrainedTokenizerBase | None) -> dict[str, Any]:
    """How a run's config asks for its tokenizer (what the manifest records beside the tokenizer's files)."""
    if isinstance(spec, TrainedTokenizer):
        return {"trained": {key: getattr(spec, key) for key in TRAINED_SETTINGS}}
    if isinstance(spec, PretrainedTokenizer):
        return {"pretrained": spec.name_or_path}
    return {"name_or_path": getattr(tokenizer, "name_or_path", "")}


def tokenizer_mismatch(location: str, made: dict[str, Any], asked: dict[str, Any]) -> ConfigError:
    """The error for a run whose tokenizer is not the one the shards were made with."""
    if "trained" in made and "trained" in asked:
        keys = [k for k in TRAINED_SETTINGS if made["trained"].get(k) != asked["trained"].get(k)]
        theirs = " ".join(f"tokenizer.{k}={_value(made['trained'].get(k))}" for k in keys)
        mine = " ".join(f"tokenizer.{k}={_value(asked['trained'].get(k))}" for k in keys)
    else:
        theirs, mine = _overrides(made), _overrides(asked)
    return ConfigError(
        f"{ShardSource.FIELD}={location}: the shards were made with another tokenizer ({theirs}) than this "
        f"run's ({mine}). Train with the shards' tokenizer ({theirs}), or prepare shards with this tokenizer: "
        "python prepare_data.py <your text data and tokenizer settings> location=<a new folder>"
    )


def _overrides(record: dict[str, Any]) -> str:
    if "trained" in record:
        settings = record["trained"]
        return f"tokenizer={'wordpiece' if settings['kind'] == 'wordpiece' else 'bpe'} " + " ".join(
            f"tokenizer.{k}={_value(settings[k])}" for k in TRAINED_SETTINGS if k != "kind"
        )
    if "pretrained" in record:
        return f"tokenizer=pretrained tokenizer.name_or_path={record['pretrained']}"
    return f"the tokenizer of {record.get('name_or_path') or 'a checkpoint'}"


def _value(value: Any) -> str:
    """A value as a command-line override writes it."""
    return json.dumps(value) if isinstance(value, (bool, type(None), list)) else str(value)
