"""Classification evaluation: dev metrics of every evaluation set and GLUE submission files for the test sets."""

from __future__ import annotations

import logging
from typing import Any

from lmlab.data.classification_datamodule import ClassificationDataModule
from lmlab.evaluation import EvalContext
from lmlab.tasks.classification import SequenceClassificationModule

log = logging.getLogger(__name__)


def evaluate_classification(ctx: EvalContext) -> tuple[dict[str, float], dict[str, Any]]:
    cfg, model, tokenizer = ctx.cfg, ctx.model, ctx.tokenizer
    datamodule = ctx.datamodule("validation", "test", "predict", kind=ClassificationDataModule)
    module = SequenceClassificationModule(model, tokenizer, spec=datamodule.spec)
    trainer = ctx.trainer()
    metrics: dict[str, float] = {}
    for result in trainer.validate(
        module, dataloaders=datamodule.eval_loader("validation", cfg.batch_size), verbose=False
    ):
        metrics.update({k: float(v) for k, v in result.items()})
    if datamodule.has_stage("test"):
        for result in trainer.test(
            module, dataloaders=datamodule.eval_loader("test", cfg.batch_size), verbose=False
        ):
            metrics.update({k: float(v) for k, v in result.items()})
    if datamodule.has_stage("predict"):
        trainer.predict(
            module, dataloaders=datamodule.eval_loader("predict", cfg.batch_size), return_predictions=False
        )
    log.info(
        "Dev metrics of %s: %s", datamodule.source.describe(), {k: round(v, 4) for k, v in metrics.items()}
    )
    summary = {
        "data": datamodule.source.describe(),
        "predictions": [f"predictions/{name}" for name in datamodule.spec.predict_files],
        "truncated": datamodule.truncated,
    }
    return metrics, summary
