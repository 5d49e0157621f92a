"""What to write instead, when an AdamW key (``optimizer.lr=...``) meets the Muon optimizer, the pretraining default.

Hydra rejects such an override while composing the config, before any lmlab code runs, and suggests
``+optimizer.lr=...``, which would add a key that Muon ignores. ``train.py`` calls :func:`muon_override_hint`
when Hydra has exited with an error, and prints the hint instead of leaving the user with that advice.
"""

from __future__ import annotations

import re
from pathlib import Path

ADAMW_KEY = re.compile(r"^(?:\+\+)?optimizer\.(lr|betas|eps|weight_decay|fused)=")


def _first_values(args: list[str]) -> list[str]:
    """The overrides of one job of a sweep, so that the config can be composed as a single run: a grid
    (``a,b``, ``range(...)``) at its first value, an Optuna distribution (``tag(log, interval(...))``) as null
    (the key must still exist)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for override in OverridesParser.create().parse_overrides(args):
        if override.is_discrete_sweep():
            out.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
        elif override.is_sweep_override():
            out.append(f"{override.get_key_element()}=null")
        else:
            out.append(override.input_line)
    return out


def muon_override_hint(argv: list[str], config_dir: Path, config_name: str = "train") -> str | None:
    """The message for ``optimizer.<AdamW key>=...`` where the composed optimizer has no such key (Muon), or
    None when that is not why the command failed."""
    keys = sorted({m.group(1) for a in argv if (m := ADAMW_KEY.match(a))})
    if not keys:
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        overrides = _first_values([a for a in argv if not a.startswith("-")])
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(config_dir), version_base="1.3"):
            compose(config_name, overrides=overrides)
    except Exception as e:  # noqa: BLE001 - only the one composition error below earns the hint
        if not any(f"Could not override 'optimizer.{key}'" in str(e) for key in keys):
            return None
    else:
        return None
    given = ", ".join(f"optimizer.{key}" for key in keys)
    return (
        f"{given}: the optimizer is optimizer=muon (the pretraining default), which has a learning rate and "
        "weight decay per group: optimizer.muon.lr and optimizer.muon.weight_decay for the hidden matrices, "
        "optimizer.adamw.lr, .betas, .eps and .weight_decay for the embeddings, output layer and norms "
        "(conf/optimizer/muon.yaml). For one AdamW over all weights, add optimizer=adamw "
        "(and scheduler=cosine for the GPT-2 recipe of earlier versions)."
    )
