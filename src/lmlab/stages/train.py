"""The training stage: config -> data -> model -> Lightning Trainer -> checkpoints, export, metrics."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf

from lmlab.callbacks.history import ValidationHistory
from lmlab.checkpoints import (
    RunMetadata,
    checkpoint_metadata,
    checkpoint_step,
    export_hf,
    find_resume_checkpoint,
    full_model_state_dict,
    load_best_weights,
    read_checkpoint,
)
from lmlab.config.checks import check_types, check_writable
from lmlab.config.secrets import scrub, scrub_files
from lmlab.config.tree import print_config_tree, resolve
from lmlab.errors import ConfigError
from lmlab.models import aux_lm_head, count_parameters
from lmlab.reliability.signals import SaveOnSigterm
from lmlab.scale.batching import accumulation_steps
from lmlab.scale.hydra_ddp import LaunchEnvironment
from lmlab.scale.hydra_ddp import install as install_hydra_ddp
from lmlab.scale.precision import enable_tf32
from lmlab.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 143  # 128 + SIGTERM, what schedulers expect from a job stopped by SIGTERM


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume with ``ckpt_path``), test, export; return the metrics dict (sweeps optimize from it)."""
    print_config_tree(cfg)
    check_types(cfg)
    install_hydra_ddp()  # DDP workers of a Hydra job (run or multirun) get this job's overrides and folder
    enable_tf32(cfg.get("tf32", True))
    config = scrub(resolve(cfg))  # what is logged and saved: secrets masked
    output_dir = check_writable(cfg.paths.output_dir, "paths.output_dir (hydra.run.dir)")
    check_writable(cfg.paths.cache_dir, "paths.cache_dir")
    scrub_files(output_dir / ".hydra")
    atomic_write_text(output_dir / "config_resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))

    # Cheap checks first: a wrong path or an incompatible model must fail before any data preparation.
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") == "auto" and not ckpt_path:
        ckpt_path = find_resume_checkpoint(output_dir)
        log.info(
            "resume=auto: %s",
            f"continuing from {ckpt_path}" if ckpt_path else f"no checkpoint in {output_dir}, starting",
        )
    elif cfg.get("resume") not in (None, "auto"):
        raise ConfigError(
            f"resume={cfg.resume!r}: use resume=auto, or ckpt_path=<file.ckpt> for a given checkpoint"
        )
    resume_meta: dict[str, Any] = {}
    if ckpt_path:
        resume_meta = checkpoint_metadata(read_checkpoint(ckpt_path), ckpt_path)
    L.seed_everything(cfg.seed, workers=True)
    module_cls = get_class(cfg.task._target_)
    datamodule = instantiate(cfg.data, _partial_=True)(tokenizer=instantiate(cfg.tokenizer))
    factory = instantiate(cfg.model)
    # The data layout may depend on the model head (generation: encoder-decoder or decoder-only sequences).
    if hasattr(datamodule, "set_head"):
        datamodule.set_head(module_cls.HEAD)
    datamodule.check()
    factory.check(module_cls.HEAD, datamodule.sequence_length, datamodule.length_field)
    if hasattr(module_cls, "check_config"):  # task settings (e.g. generation) fail here, not after data prep
        module_cls.check_config(cfg.task)

    # Tokenizer (trained once and cached), token caches (once per machine), then the model.
    tokenizer = datamodule.prepare_tokenizer()
    module_cls.check_tokenizer(tokenizer)
    datamodule.prepare_data()
    # Task-specific fields of the model config (e.g. num_labels), known once the data is read.
    head_config = datamodule.head_config() if hasattr(datamodule, "head_config") else None
    model = factory.build(module_cls.HEAD, tokenizer, head_config)
    # What the module must know about the data (e.g. labels and metrics of a GLUE task).
    extra = datamodule.module_kwargs() if hasattr(datamodule, "module_kwargs") else {}
    if cfg.task.get("aux_lm_weight"):
        extra["aux_lm"] = aux_lm_head(factory, model, tokenizer)
    # Runtime objects are passed to a partial, not through Hydra (which would turn them into configs).
    module = instantiate(cfg.task, _partial_=True)(
        model=model,
        tokenizer=tokenizer,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        **extra,
    )
    known = module.logged_metrics()
    monitor = (cfg.get("monitor") or {}).get("metric")
    if known is not None and monitor and monitor not in known:
        raise ConfigError(
            f"monitor.metric={monitor!r} is not logged by {module_cls.__name__}; it logs: {', '.join(known)}"
        )

    metadata = RunMetadata(config, module_cls.HEAD, tokenizer)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    loggers = build_loggers(cfg, ckpt_path, resume_meta.get("wandb_run_id"))
    sigterm = SaveOnSigterm(str(output_dir / "checkpoints"))
    trainer = instantiate(
        cfg.trainer, callbacks=[*callbacks, metadata, sigterm, ValidationHistory()], logger=loggers or False
    )
    metadata.wandb_run_id = _wandb_run_id(loggers)
    fixed_length = datamodule.sequence_length if datamodule.length_field == "data.block_size" else None
    trainer.accumulate_grad_batches = accumulation_steps(
        datamodule.batch_size, trainer.world_size, cfg.get("global_batch_size"), cfg.get("global_batch_tokens"),
        fixed_length, trainer.accumulate_grad_batches,
    )  # fmt: skip

    counts = count_parameters(model)
    length = datamodule.sequence_length
    tokens_per_step = datamodule.batch_size * length * trainer.accumulate_grad_batches * trainer.world_size
    log.info(
        "Model: %s, %.2fM parameters (%.2fM without embeddings). Tokens per optimizer step: %s%d "
        "(batch %d x length %d x accumulation %d x %d device(s)).",
        factory.describe(), counts["params/total"] / 1e6, counts["params/non_embedding"] / 1e6,
        "at most " if datamodule.length_field != "data.block_size" else "", tokens_per_step,
        datamodule.batch_size, length, trainer.accumulate_grad_batches, trainer.world_size,
    )  # fmt: skip
    for lg in loggers:
        lg.log_hyperparams({**config, **counts, "tokens_per_step": tokens_per_step})

    summary: dict[str, Any] = {"output_dir": str(output_dir), **counts, "tokens_per_step": tokens_per_step}
    # The launcher's environment is restored afterwards, for the next job of a multirun in this process.
    with LaunchEnvironment():
        try:
            return _fit_test_export(
                cfg, trainer, module, datamodule, tokenizer, config, output_dir, summary, ckpt_path
            )
        except SIGTERMException:
            summary.update(status="preempted", checkpoint=str(sigterm.saved))
            _write_metrics(trainer, output_dir, _float_metrics(trainer.callback_metrics), summary)
            raise SystemExit(EXIT_PREEMPTED) from None
        except BaseException as e:
            summary.update(status="failed", error=f"{type(e).__name__}: {e}")
            _write_metrics(trainer, output_dir, _float_metrics(trainer.callback_metrics), summary)
            raise


def _fit_test_export(
    cfg, trainer, module, datamodule, tokenizer, config, output_dir, summary, ckpt_path
) -> dict:
    module_cls = type(module)
    history = next(cb for cb in trainer.callbacks if isinstance(cb, ValidationHistory))
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

    if cfg.get("run_test") and _has_stage(datamodule, "test"):
        trainer.test(module, datamodule=datamodule)
        metrics.update(_float_metrics(trainer.callback_metrics))
    # Predictions on unlabeled data (e.g. GLUE test sets): the module writes them in on_predict_epoch_end.
    if cfg.get("run_predict", True) and _has_stage(datamodule, "predict"):
        trainer.predict(module, datamodule=datamodule, return_predictions=False)

    if cfg.export.get("enabled", True):
        state = full_model_state_dict(trainer, module)  # every rank takes part (FSDP, ZeRO-3 gather)
        if trainer.is_global_zero:
            export_dir = output_dir / "export"
            export_hf(module.model, tokenizer, export_dir, module_cls.HEAD, config, metrics, state_dict=state)
            summary["export_dir"] = str(export_dir)
    summary["status"] = "completed"
    _write_metrics(trainer, output_dir, metrics, summary)
    return metrics


def _has_stage(datamodule, stage: str) -> bool:
    """Whether the datamodule serves this stage (it may say so with ``has_stage``; else: has a loader)."""
    if hasattr(datamodule, "has_stage"):
        return datamodule.has_stage(stage)
    return is_overridden(f"{stage}_dataloader", datamodule)


def build_loggers(cfg: DictConfig, resumed_from: str | None = None, wandb_run_id: str | None = None) -> list:
    """The configured loggers. A resumed run continues its W&B run (same id, no step logged twice) and writes
    file logs (CSV, TensorBoard) next to, not over, those of the first segment."""
    history = [str(Path(resumed_from).resolve().parents[1])] if resumed_from else []
    loggers = []
    for name, lg_cfg in (cfg.get("logger") or {}).items():
        if not lg_cfg or "_target_" not in lg_cfg:
            continue
        extra: dict[str, Any] = {}
        if name == "wandb" and wandb_run_id:
            extra = {"id": wandb_run_id, "history_dirs": history}
        elif resumed_from and lg_cfg.get("version") == "":
            extra = {"version": f"resumed-{time.strftime('%Y%m%d-%H%M%S')}"}
        loggers.append(instantiate(lg_cfg, **extra))
    return loggers


def _wandb_run_id(loggers: list) -> str | None:
    """The W&B run id (starting the run now, on rank zero), so that checkpoints can carry it."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            run_id = getattr(lg.experiment, "id", None)
            return str(run_id) if isinstance(run_id, str) else None
    return None


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
