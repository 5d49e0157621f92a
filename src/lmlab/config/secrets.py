"""Keep secrets out of logged configs and run folders.

A value is secret if its key names one (``api_key``, ``token``, ``hf_token``, ``password``, ``secret``, ...;
not tokenizer fields such as ``pad_token``) or if it contains the value of an environment variable whose
name says KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL (``WANDB_API_KEY``, ``HF_TOKEN``, ...), as happens when
a config interpolates ``${oc.env:...}`` or a value is given on the command line.
"""

from __future__ import annotations

import os
import re
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
MASK = "***"


def is_secret_key(key: Any) -> bool:
    key = str(key).rsplit(".", 1)[-1]
    return bool(SECRET_KEY.match(key)) and not NOT_SECRET.match(key)


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_ENV.search(k) and v and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def scrub(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of a (nested) config with secret values replaced by ``***``."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(obj, dict):
        return {
            k: MASK if is_secret_key(k) and v not in (None, "") else scrub(v, secrets) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub(v, secrets) for v in obj)
    if isinstance(obj, str):
        if "=" in obj and is_secret_key(obj.split("=", 1)[0].lstrip("+~")):  # a command-line override
            return obj.split("=", 1)[0] + "=" + MASK
        for value in secrets:
            obj = obj.replace(value, MASK)
    return obj


def scrub_files(folder: str | Path, secrets: list[str] | None = None) -> None:
    """Rewrite YAML files (Hydra's ``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) with secrets masked."""
    for path in Path(folder).glob("*.yaml"):
        original = yaml.safe_load(path.read_text())
        cleaned = scrub(original, secrets)
        if cleaned != original:
            path.write_text(yaml.safe_dump(cleaned, sort_keys=False))
