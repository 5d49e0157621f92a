"""Classification evaluation: dev metrics of every evaluation set and GLUE submission files for the test sets."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch import Trainer
from omegaconf import open_dict

from lmlab.data.tokenizer import GivenTokenizer
from lmlab.evaluation import EvalContext
from lmlab.tasks.classification import SequenceClassificationModule

log = logging.getLogger(__name__)


def evaluate_classification(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, data_cfg, model, tokenizer, device = ctx.cfg, ctx.data_cfg, ctx.model, ctx.tokenizer, ctx.device
    data_cfg = data_cfg.copy()
    with open_dict(data_cfg):
        data_cfg.eval_batch_size = cfg.batch_size
    datamodule = instantiate(data_cfg, _partial_=True)(tokenizer=GivenTokenizer(tokenizer))
    datamodule.check(need_train=False)
    datamodule.setup(splits=("eval", "test", "predict"))
    module = SequenceClassificationModule(model, tokenizer, spec=datamodule.spec)
    trainer = Trainer(
        accelerator="gpu" if device == "cuda" else device,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=cfg.paths.output_dir,
    )
    metrics: dict[str, float] = {}
    for result in trainer.validate(module, dataloaders=datamodule.val_dataloader(), verbose=False):
        metrics.update({k: float(v) for k, v in result.items()})
    if datamodule.has_stage("test"):
        for result in trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False):
            metrics.update({k: float(v) for k, v in result.items()})
    if datamodule.has_stage("predict"):
        trainer.predict(module, dataloaders=datamodule.predict_dataloader(), return_predictions=False)
    log.info(
        "Dev metrics of %s: %s", datamodule.source.describe(), {k: round(v, 4) for k, v in metrics.items()}
    )
    summary = {
        "data": datamodule.source.describe(),
        "predictions": [f"predictions/{name}" for name in datamodule.spec.predict_files],
        "truncated": datamodule.truncated,
    }
    return metrics, summary
