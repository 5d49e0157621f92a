"""Keep secrets out of the console, logged configs, run folders and W&B.

A value is secret if its key names one (``api_key``, ``token``, ``hf_token``, ``password``, ``secret``, ...;
not tokenizer fields such as ``pad_token``) or if it contains the value of an environment variable whose
name says KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL (``WANDB_API_KEY``, ``HF_TOKEN``, ...), as happens when
a config interpolates ``${oc.env:...}`` or a value is given on the command line.

The value of a secret key is masked under its key (in configs, ``key=value`` overrides and lists of them
such as Hydra's ``override_dirname``) and, from ``MIN_KEY_VALUE`` characters on, wherever else it appears:
a ``+hub_token=...`` given on the command line is masked in ``tags=[...]`` too, and in the process
arguments that W&B records (``masked_argv``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

SECRET_KEY = re.compile(
    r"^(.*[_-])?(api[_-]?key|access[_-]?key|secret[_-]?key|secret|password|passwd|credentials?|"
    r"auth[_-]?token|access[_-]?token|hf[_-]?token|hub[_-]?token|token)$",
    re.IGNORECASE,
)
NOT_SECRET = re.compile(r"^(bos|eos|unk|sep|pad|cls|mask)_token$", re.IGNORECASE)
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSW|CREDENTIAL)", re.IGNORECASE)
# `key=value` pairs inside a string (an override, Hydra's comma-joined override_dirname, a URL query)
PAIR = re.compile(r"([+~]*[A-Za-z_][\w.\-]*)=(\[[^\]]*\]|[^,\s&]*)")
MASK = "***"
# Shorter values of secret-looking environment variables are settings (TOKENIZERS_PARALLELISM=false).
MIN_ENV_VALUE = 8
# Shorter values of secret keys are masked under their key only (masking "null" everywhere would garble text).
MIN_KEY_VALUE = 6


def is_secret_key(key: Any) -> bool:
    key = str(key).lstrip("+~").rsplit(".", 1)[-1]
    return bool(SECRET_KEY.match(key)) and not NOT_SECRET.match(key)


def command_line_secrets(argv: Sequence[str] | None = None) -> list[str]:
    """Values given to secret keys on the command line (``+my_api_key=...``), quoted or not."""
    argv = sys.argv[1:] if argv is None else argv
    values = set()
    for arg in argv:
        key, sep, value = str(arg).partition("=")
        if sep and is_secret_key(key):
            values.update(v for v in (value, value.strip("'\"")) if len(v) >= MIN_KEY_VALUE)
    return sorted(values)


def secret_values(environ: dict[str, str] | None = None, argv: Sequence[str] | None = None) -> list[str]:
    """Secret environment variable values and command-line secrets (the process's own by default), longest
    first (so that a secret containing another is masked whole)."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_ENV.search(k) and v and len(v) >= MIN_ENV_VALUE}
    values.update(command_line_secrets(argv))
    return sorted(values, key=len, reverse=True)


def _key_values(obj: Any) -> set[str]:
    """Values held by secret keys anywhere in a nested config."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if is_secret_key(k) and isinstance(v, (str, int)) and not isinstance(v, bool):
                found.update(s for s in (str(v),) if len(s) >= MIN_KEY_VALUE)
            else:
                found |= _key_values(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            found |= _key_values(v)
    return found


def scrub(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of a (nested) config, or a string, with secret values replaced by ``***``.

    ``secrets``: the values to mask wherever they appear (default: ``secret_values()``); the values of the
    secret keys inside ``obj`` are added to them.
    """
    secrets = secret_values() if secrets is None else list(secrets)
    secrets = sorted(set(secrets) | _key_values(obj), key=len, reverse=True)
    return _scrub(obj, secrets)


def scrub_text(text: str, secrets: list[str]) -> str:
    """A string with secret ``key=value`` pairs and the given secret values masked."""
    key, sep, _ = text.partition("=")
    if sep and is_secret_key(key):  # one command-line override: its value may hold spaces or commas
        return key + "=" + MASK
    text = PAIR.sub(lambda m: f"{m[1]}={MASK}" if m[2] and is_secret_key(m[1]) else m[0], text)
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def _scrub(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, dict):
        return {
            k: MASK if is_secret_key(k) and v not in (None, "") else _scrub(v, secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return type(obj)(_scrub(v, secrets) for v in obj)
    if isinstance(obj, str):
        return scrub_text(obj, secrets)
    return obj


def scrub_files(folder: str | Path, secrets: list[str] | None = None) -> None:
    """Rewrite YAML files (Hydra's ``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) with secrets masked."""
    for path in Path(folder).glob("*.yaml"):
        original = yaml.safe_load(path.read_text())
        cleaned = scrub(original, secrets)
        if cleaned != original:
            path.write_text(yaml.safe_dump(cleaned, sort_keys=False))


@contextlib.contextmanager
def masked_argv() -> Iterator[None]:
    """``sys.argv`` with secrets masked for the duration of the block, for libraries that record the process
    arguments (W&B's run metadata). Restored afterwards: DDP workers are started with the real ones."""
    original = sys.argv
    sys.argv = [*original[:1], *scrub(list(original[1:]))]
    try:
        yield
    finally:
        sys.argv = original
