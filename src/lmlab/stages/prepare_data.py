"""The data preparation stage (``prepare_data.py``): a text corpus -> token shards that training streams.

The corpus and the tokenizer are configured exactly as for ``train.py`` (``data=...``, ``tokenizer=...``), so the
tokenizer is the one a training run on that text would use (a trained one: trained once on the training
split and cached); it is saved with the shards, and training from them (``data=streaming``) uses it.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from lmlab.config.checks import check_types, check_writable
from lmlab.config.tree import print_config_tree
from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.shard_writer import ShardSettings, default_workers, write_shards
from lmlab.data.sources.shards import ShardLocation, tokenizer_record
from lmlab.errors import ConfigError, config_stage

log = logging.getLogger(__name__)


def prepare_data(cfg: DictConfig) -> dict[str, Any]:
    """Tokenize every split of ``cfg.data`` into shards at ``cfg.location``; return token counts per split."""
    print_config_tree(cfg)
    check_types(cfg)
    location = ShardLocation(cfg.location, "location", cfg.get("storage_options"))
    settings = ShardSettings(
        chunk_tokens=int(cfg.chunk_tokens),
        part_mb=float(cfg.part_mb),
        num_workers=int(cfg.num_workers or default_workers()),
        start_method=str(cfg.start_method),
    )
    settings.check()
    with config_stage("tokenizer"):
        spec = instantiate(cfg.tokenizer)
    with config_stage("data"):
        datamodule = instantiate(cfg.data, _partial_=True)(tokenizer=spec)
    if not isinstance(datamodule, LMDataModule):
        raise ConfigError(
            f"prepare_data.py reads a text corpus (data=wikitext2, data=text_files, ...); "
            f"{cfg.data.get('_target_')} is not one"
        )
    datamodule.check()  # every split is found before the tokenizer is trained
    if not location.remote:
        check_writable(location.root, "location")
    with config_stage("tokenizer"):
        tokenizer = datamodule.prepare_tokenizer()
    manifest = write_shards(
        datamodule.source, datamodule.splits, tokenizer, tokenizer_record(spec, tokenizer), location, settings,
        overwrite=bool(cfg.get("overwrite")),
    )  # fmt: skip
    log.info("Shards ready. Train on them: python train.py data=streaming data.source.location=%s", location)
    return {f"{stage}/tokens": float(info["tokens"]) for stage, info in manifest["splits"].items()}
