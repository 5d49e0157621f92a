"""Evaluate: `python evaluate.py ckpt_path=<.ckpt | checkpoint folder | export dir | hub name>` (see conf/evaluate.yaml)."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("LMLAB_ROOT", str(Path(__file__).resolve().parent))

from lmlab.stages.runner import run_stage, set_runtime_defaults  # noqa: E402

set_runtime_defaults()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    from lmlab.stages.evaluate import evaluate

    return run_stage(evaluate, cfg)


if __name__ == "__main__":
    main()
