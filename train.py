"""Train: `python train.py [experiment=<recipe>] [key=value ...]` (see README.md and conf/train.yaml)."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("LMLAB_ROOT", str(Path(__file__).resolve().parent))

from lmlab.stages.runner import run_stage, set_runtime_defaults  # noqa: E402

set_runtime_defaults()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from lmlab.stages.train import train

    return run_stage(train, cfg)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            from lmlab.config.override_hints import muon_override_hint

            hint = muon_override_hint(sys.argv[1:], Path(__file__).resolve().parent / "conf")
            if hint:
                print(f"\nerror: {hint}", file=sys.stderr)
                sys.exit(2)
        raise
