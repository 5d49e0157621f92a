"""The training stage: config -> data -> model -> Lightning Trainer -> checkpoints, export, metrics.

It reads as the stages of a run, each a function below: check the config and find the checkpoint to resume;
build the data and the model (cheap checks first, then tokenizer and data preparation); build the Trainer;
fit, test, predict and export. What a DataModule and a task module offer is written down in
``lmlab.data.base.BaseDataModule`` and ``lmlab.tasks.base.TaskModule``.

Everything built from the config is built inside ``lmlab.errors.config_stage(<group>)``: a value that a
library rejects (torch, transformers, Lightning, Hydra's instantiate) is reported as ``<stage>: <its
message>`` naming the config group, not as a traceback. A checkpoint to resume from is compared with what the
run builds (``lmlab.checkpoints.compat``) before any weight is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from lmlab.callbacks.history import ValidationHistory
from lmlab.checkpoints import (
    ResumeCheckpoint,
    RunMetadata,
    checkpoint_step,
    export_hf,
    find_resume_checkpoint,
    full_model_state_dict,
    load_best_weights,
)
from lmlab.config.checks import check_types, check_writable
from lmlab.config.secrets import scrub, scrub_files
from lmlab.config.tree import print_config_tree, resolve
from lmlab.data.base import BaseDataModule
from lmlab.errors import ConfigError, config_stage
from lmlab.models import FineTuning, aux_lm_head, count_parameters
from lmlab.optim import check_optimizer
from lmlab.reliability.signals import SaveOnSignal
from lmlab.reliability.slurm import requeue_job, trainer_plugins
from lmlab.scale.batching import accumulation_steps
from lmlab.scale.hydra_ddp import LaunchEnvironment
from lmlab.scale.hydra_ddp import install as install_hydra_ddp
from lmlab.scale.launch import agree, global_rank
from lmlab.scale.precision import enable_tf32
from lmlab.tasks.base import TaskModule
from lmlab.tracking.loggers import build_loggers, wandb_run_id
from lmlab.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 143  # 128 + SIGTERM, what schedulers expect from a job stopped by SIGTERM


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume with ``ckpt_path``), test, export; return the metrics dict (sweeps optimize from it)."""
    config, output_dir = _start_run(cfg)
    resume = _resume_checkpoint(cfg, output_dir)
    ckpt_path = resume.path if resume else None
    L.seed_everything(cfg.seed, workers=True)
    datamodule, module = _build_data_and_module(cfg, resume)
    trainer, sigterm = _build_trainer(cfg, config, module, datamodule, resume, output_dir)
    summary = _describe_run(trainer, module, datamodule, config, output_dir)
    # The launcher's environment is restored afterwards, for the next job of a multirun in this process.
    with LaunchEnvironment(), sigterm.listening():
        try:
            return _fit_test_export(cfg, trainer, module, datamodule, config, output_dir, summary, ckpt_path)
        except SIGTERMException:
            summary.update(status="preempted", checkpoint=str(sigterm.saved))
            if sigterm.requeue and global_rank() == 0:  # saved on every rank: now give the job back to SLURM
                summary["requeued"] = requeue_job()
            _write_metrics(trainer, output_dir, _float_metrics(trainer.callback_metrics), summary)
            raise SystemExit(EXIT_PREEMPTED) from None
        except BaseException as e:
            summary.update(status="failed", error=f"{type(e).__name__}: {e}")
            _write_metrics(trainer, output_dir, _float_metrics(trainer.callback_metrics), summary)
            raise


def _start_run(cfg: DictConfig) -> tuple[dict[str, Any], Path]:
    """Show and type-check the config, check the folders, save the resolved config (secrets masked)."""
    print_config_tree(cfg)
    check_types(cfg)
    install_hydra_ddp()  # DDP workers of a Hydra job (run or multirun) get this job's overrides and folder
    enable_tf32(cfg.get("tf32", True))
    config = scrub(resolve(cfg))  # what is logged and saved: secrets masked
    output_dir = check_writable(cfg.paths.output_dir, "paths.output_dir (hydra.run.dir)")
    check_writable(cfg.paths.cache_dir, "paths.cache_dir")
    if global_rank() == 0:  # one record per run, whatever launched the ranks
        scrub_files(output_dir / ".hydra")
        atomic_write_text(output_dir / "config_resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))
    return config, output_dir


def _resume_checkpoint(cfg: DictConfig, output_dir: Path) -> ResumeCheckpoint | None:
    """The checkpoint to continue from (``ckpt_path``, or the newest good one with ``resume=auto``): its
    lmlab metadata and weight shapes, read now, so a wrong path fails before any data preparation."""
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") == "auto" and not ckpt_path:
        # under torchrun/srun, rank 0 chooses and every rank continues from the same checkpoint
        ckpt_path = agree("resume_checkpoint", lambda: str(find_resume_checkpoint(output_dir) or "")) or None
        log.info(
            "resume=auto: %s",
            f"continuing from {ckpt_path}" if ckpt_path else f"no checkpoint in {output_dir}, starting",
        )
    elif cfg.get("resume") not in (None, "auto"):
        raise ConfigError(
            f"resume={cfg.resume!r}: use resume=auto, or ckpt_path=<checkpoint file or folder> for a given checkpoint"
        )
    if not ckpt_path:
        return None
    return ResumeCheckpoint.read(ckpt_path)


def _build_data_and_module(
    cfg: DictConfig, resume: ResumeCheckpoint | None
) -> tuple[BaseDataModule, TaskModule]:
    """Cheap checks first (data paths, model against data, task settings, the checkpoint to resume against
    the architecture), then the tokenizer (trained once and cached), the data preparation (once per
    machine), the model, the task module and its optimizer."""
    with config_stage("task"):
        module_cls: type[TaskModule] = get_class(cfg.task._target_)
    with config_stage("tokenizer"):
        tokenizer_spec = instantiate(cfg.tokenizer)
    with config_stage("data"):
        datamodule: BaseDataModule = instantiate(cfg.data, _partial_=True)(tokenizer=tokenizer_spec)
    with config_stage("model"):
        factory = instantiate(cfg.model)
    datamodule.set_head(module_cls.HEAD)  # the data layout may depend on the head (generation)
    datamodule.check()
    datamodule.check_loader_settings()
    with config_stage("model"):
        factory.check(module_cls.HEAD, datamodule.sequence_length, datamodule.length_field)
    with config_stage("finetune"):  # which weights train: all, or LoRA adapters (checked on the meta model)
        finetuning: FineTuning = instantiate(cfg.finetune) if cfg.get("finetune") else FineTuning()
        finetuning.check(factory, module_cls.HEAD)
    if finetuning.is_lora and cfg.task.get("aux_lm_weight"):
        raise ConfigError(
            "task.aux_lm_weight trains a second head in full; with finetune=lora set task.aux_lm_weight=0"
        )
    with config_stage("task"):
        module_cls.check_config(cfg.task)
    with config_stage("optimizer"):
        check_optimizer(instantiate(cfg.optimizer), lambda: factory.meta_model(module_cls.HEAD))
    if resume:
        resume.check_plan(cfg.task._target_, module_cls.HEAD, factory.hf_config().to_dict())

    with config_stage("tokenizer"):
        tokenizer = datamodule.prepare_tokenizer()
    module_cls.check_tokenizer(tokenizer)
    with config_stage("data"):
        datamodule.prepare_data()
    with config_stage("model"):
        model = factory.build(module_cls.HEAD, tokenizer, datamodule.head_config())
        model = finetuning.apply(model, factory, module_cls.HEAD)
        extra = datamodule.module_kwargs()
        if cfg.task.get("aux_lm_weight"):
            extra["aux_lm"] = aux_lm_head(factory.pretrained, model, tokenizer)
    with config_stage("optimizer"):
        optimizer = instantiate(cfg.optimizer)
    with config_stage("scheduler"):
        scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    # Runtime objects are passed to a partial, not through Hydra (which would turn them into configs).
    with config_stage("task"):
        module = instantiate(cfg.task, _partial_=True)(
            model=model, tokenizer=tokenizer, optimizer=optimizer, scheduler=scheduler, **extra
        )
    module.build_optimizer()  # once now: values torch rejects fail before the Trainer starts
    if resume:
        resume.check_module(module)  # weights and tokenizer, before Lightning loads any weight
    known = module.logged_metrics()
    monitor = (cfg.get("monitor") or {}).get("metric")
    if known is not None and monitor and monitor not in known:
        raise ConfigError(
            f"monitor.metric={monitor!r} is not logged by {module_cls.__name__}; it logs: {', '.join(known)}"
        )
    log.info("Model: %s", factory.describe())
    return datamodule, module


def _build_trainer(cfg, config, module, datamodule, resume, output_dir):
    """The Trainer with the configured callbacks and loggers, plus lmlab's own (checkpoint metadata, SIGTERM
    saves, validation history), and the gradient accumulation derived from the global batch."""
    metadata = RunMetadata(config, module.HEAD, module.tokenizer)
    callbacks = []
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and "_target_" in callback:
            with config_stage(f"callbacks.{name}"):
                callbacks.append(instantiate(callback))
    with config_stage("logger"):
        loggers = build_loggers(
            cfg, resume.path if resume else None, resume.meta.get("wandb_run_id") if resume else None
        )
    slurm, requeue_signal = trainer_plugins(cfg)  # on SLURM: lmlab's requeue, not Lightning's
    sigterm = SaveOnSignal(str(output_dir / "checkpoints"), requeue_signal)
    no_validation = {} if datamodule.has_stage("validation") else {"limit_val_batches": 0}
    if no_validation:
        log.info("No validation data (data.splits.validation is not set): training runs without validation")
    with config_stage("trainer"):
        trainer = instantiate(
            cfg.trainer,
            callbacks=[*callbacks, metadata, sigterm, ValidationHistory()],
            logger=loggers or False,
            **no_validation,
            **slurm,
        )
    if resume:
        resume.check_strategy(trainer.strategy)  # a sharded folder needs the strategy that wrote it
    metadata.wandb_run_id = wandb_run_id(loggers)
    trainer.accumulate_grad_batches = accumulation_steps(
        datamodule.batch_size, trainer.world_size, cfg.get("global_batch_size"), cfg.get("global_batch_tokens"),
        datamodule.sequence_length if datamodule.fixed_length else None, trainer.accumulate_grad_batches,
    )  # fmt: skip
    return trainer, sigterm


def _describe_run(trainer, module, datamodule, config, output_dir) -> dict[str, Any]:
    """Log the model size and the tokens per optimizer step; the start of the run's summary."""
    counts = count_parameters(module.model)
    length = datamodule.sequence_length
    tokens_per_step = datamodule.batch_size * length * trainer.accumulate_grad_batches * trainer.world_size
    log.info(
        "%.2fM parameters (%.2fM without embeddings). Tokens per optimizer step: %s%d "
        "(batch %d x length %d x accumulation %d x %d device(s)).",
        counts["params/total"] / 1e6, counts["params/non_embedding"] / 1e6,
        "" if datamodule.fixed_length else "at most ", tokens_per_step,
        datamodule.batch_size, length, trainer.accumulate_grad_batches, trainer.world_size,
    )  # fmt: skip
    for lg in trainer.loggers:
        lg.log_hyperparams({**config, **counts, "tokens_per_step": tokens_per_step})
    data = datamodule.describe_data()
    for stage, where in data.items():
        log.info("Data (%s): %s", stage, where)
    return {"output_dir": str(output_dir), "data": data, **counts, "tokens_per_step": tokens_per_step}


def _fit_test_export(cfg, trainer, module, datamodule, config, output_dir, summary, ckpt_path) -> dict:
    """Fit; load the best weights; test and predict where the data has those stages; export; metrics.json."""
    history = next(cb for cb in trainer.callbacks if isinstance(cb, ValidationHistory))
    # Settings Lightning itself refuses only once it runs (a validation interval longer than an epoch)
    with config_stage("training", "trainer", kinds=(ValueError, TypeError), library_only=True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = _float_metrics(trainer.callback_metrics)

    if trainer.interrupted:
        log.warning(
            "Training was interrupted: no export is written; resume with ckpt_path=<run>/checkpoints/last.ckpt"
        )
        summary["status"] = "interrupted"
        _write_metrics(trainer, output_dir, metrics, summary)
        return metrics

    checkpoint_cb = trainer.checkpoint_callback
    if isinstance(checkpoint_cb, ModelCheckpoint) and checkpoint_cb.best_model_path:
        summary["best_checkpoint"] = checkpoint_cb.best_model_path
        if checkpoint_cb.best_model_score is not None:
            metrics[f"best/{checkpoint_cb.monitor}"] = float(checkpoint_cb.best_model_score)
        # every validation metric of the best checkpoint, from the validation it was saved at
        best_step = checkpoint_step(Path(checkpoint_cb.best_model_path))
        for name, value in history.at(best_step).items() if best_step is not None else ():
            metrics.setdefault(f"best/{name}", value)
        if cfg.export.get("weights", "best") == "best":
            load_best_weights(trainer, module, checkpoint_cb.best_model_path, datamodule)
            log.info("Loaded the best weights (%s) for testing and export", checkpoint_cb.best_model_path)

    if cfg.get("run_test") and datamodule.has_stage("test"):
        trainer.test(module, datamodule=datamodule)
        metrics.update(_float_metrics(trainer.callback_metrics))
    # Predictions on unlabeled data (e.g. GLUE test sets): the module writes them in on_predict_epoch_end.
    if cfg.get("run_predict", True) and datamodule.has_stage("predict"):
        trainer.predict(module, datamodule=datamodule, return_predictions=False)

    if cfg.export.get("enabled", True):
        state = full_model_state_dict(trainer, module)  # every rank takes part (FSDP, ZeRO-3 gather)
        if trainer.is_global_zero:
            export_dir = output_dir / "export"
            export_hf(
                module.model, module.tokenizer, export_dir, module.HEAD, config, metrics,
                state_dict=state, data=summary["data"],
            )  # fmt: skip
            summary["export_dir"] = str(export_dir)
    summary["status"] = "completed"
    _write_metrics(trainer, output_dir, metrics, summary)
    return metrics


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1 or isinstance(v, (int, float)):
            out[k] = float(v)
    return out


def _write_metrics(trainer, output_dir: Path, metrics: dict[str, float], summary: dict[str, Any]) -> None:
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", {"metrics": metrics, **summary})
        log.info("Metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
