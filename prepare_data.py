"""Prepare data: `python prepare_data.py [data=<corpus>] location=<folder | s3://...>` (see conf/prepare_data.yaml)."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("LMLAB_ROOT", str(Path(__file__).resolve().parent))

from lmlab.stages.runner import run_stage, set_runtime_defaults  # noqa: E402

set_runtime_defaults()


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare_data")
def main(cfg: DictConfig) -> float | None:
    from lmlab.stages.prepare_data import prepare_data

    return run_stage(prepare_data, cfg)


if __name__ == "__main__":
    main()
