"""Scaling out: DDP equals one process at the same global batch; batch arithmetic; compile; FSDP; MFU."""

import csv
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY, compose
from omegaconf import OmegaConf
from transformers import GPT2Config, GPT2LMHeadModel

from lmlab.errors import ConfigError
from lmlab.scale.batching import accumulation_steps
from lmlab.scale.flops import training_flops_per_token
from lmlab.scale.fsdp import TransformerBlockPolicy
from lmlab.scale.precision import auto_precision
from lmlab.stages.train import train

DDP_RUN = [
    "trainer.max_steps=12",
    "trainer.val_check_interval=4",
    "trainer.limit_val_batches=null",
    "run_test=false",
]


def run_cli(args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=os.environ, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def val_curve(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [(int(r["step"]), float(r["val/loss"])) for r in csv.DictReader(f) if r.get("val/loss")]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(wikitext_dir, tmp_path):
    base = [*TINY, *DDP_RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    single = run_cli([*base, "data.batch_size=8", f"hydra.run.dir={tmp_path / 'single'}"], tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    # same global batch: 2 processes x 4 sequences; the run folder comes from the default (timestamped) rule
    ddp = run_cli(
        [*base, "trainer=ddp_cpu", "data.batch_size=4", f"paths.log_dir={tmp_path / 'logs'}"], tmp_path
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    runs = list((tmp_path / "logs" / "clm_wikitext2" / "runs").iterdir())
    assert len(runs) == 1, "one output folder for all ranks"
    assert len(list((tmp_path / "logs").rglob("metrics.json"))) == 1
    a, b = val_curve(tmp_path / "single"), val_curve(runs[0])
    assert [s for s, _ in a] == [s for s, _ in b] == [3, 7, 11]
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-5)
    assert "x 2 device(s)" in ddp.stdout + ddp.stderr


@pytest.mark.slow
def test_ddp_inside_a_multirun(wikitext_dir, tmp_path):
    args = ["-m", *TINY, *DDP_RUN, "trainer=ddp_cpu", "data.batch_size=4", "optimizer.lr=1e-3,2e-3"]
    args += [
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    result = run_cli([*args, "logger=many"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = sorted((tmp_path / "logs").rglob("metrics.json"))
    assert len(metrics) == 2 and {p.parent.name for p in metrics} == {"0", "1"}
    assert not (tmp_path / "logs" / "clm_wikitext2" / "runs").exists()  # workers started no runs of their own
    # nothing mixed: each job folder holds its own config, logs of both ranks, export and one W&B run
    ids = set()
    for job, lr in zip(sorted(p.parent for p in metrics), (1e-3, 2e-3), strict=True):
        assert OmegaConf.load(job / "config_resolved.yaml").optimizer.lr == lr
        assert (job / "train.log").is_file() and (job / "train_rank1.log").is_file()
        assert (job / "export" / "model.safetensors").is_file() and (job / "csv" / "metrics.csv").is_file()
        (run,) = (job / "wandb").glob("offline-run-*")
        ids.add(run.name.rsplit("-", 1)[-1])
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("global_batch", "tokens", "micro", "world", "expected"),
    [(64, None, 8, 2, 4), (16, None, 8, 2, 1), (None, 4096, 8, 2, 2), (None, None, 8, 4, 3)],
)
def test_accumulation_is_derived(global_batch, tokens, micro, world, expected):
    configured = 3 if global_batch is None and tokens is None else 1
    assert accumulation_steps(micro, world, global_batch, tokens, 128, configured) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"global_batch": 60},
            r"not a multiple of data.batch_size=8 x 2 device\(s\) = 16: choose a global batch of e.g. 64",
        ),
        ({"global_batch": 8}, "not a multiple"),
        ({"global_batch_tokens": 4000}, "not a multiple of the sequence length 128"),
        ({"global_batch": 64, "configured": 2}, "contradicts the global batch"),
        ({"global_batch": 64, "global_batch_tokens": 4096}, "not both"),
    ],
)
def test_batch_arithmetic_errors(kwargs, message):
    args = {"micro_batch": 8, "world_size": 2, "sequence_length": 128, **kwargs}
    with pytest.raises(ConfigError, match=message):
        accumulation_steps(**args)


def test_global_batch_sets_accumulation(tiny_overrides, tmp_path):
    train(
        compose(
            [*tiny_overrides, "global_batch_size=16", "trainer.max_steps=2", "run_test=false"],
            tmp_path / "run",
        )
    )
    summary = (tmp_path / "run" / "metrics.json").read_text()
    assert '"tokens_per_step": 512' in summary  # 16 sequences x 32 tokens: batch 8 x accumulation 2


def test_compiled_and_uncompiled_checkpoints_are_interchangeable(tiny_overrides, tmp_path):
    eager = ["task.compile={backend: eager}"]  # dynamo without code generation: the wrapper, quickly
    train(compose([*tiny_overrides, *eager, "trainer.max_steps=4", "run_test=false"], tmp_path / "compiled"))
    ckpt = tmp_path / "compiled" / "checkpoints" / "last.ckpt"
    keys = torch.load(ckpt, weights_only=True)["state_dict"].keys()
    assert not [k for k in keys if "_orig_mod" in k]
    # compiled -> uncompiled, then uncompiled -> compiled
    train(
        compose(
            [*tiny_overrides, "trainer.max_steps=6", f"ckpt_path={ckpt}", "run_test=false"],
            tmp_path / "plain",
        )
    )
    plain = tmp_path / "plain" / "checkpoints" / "last.ckpt"
    assert torch.load(plain, weights_only=True)["global_step"] == 6
    train(
        compose(
            [*tiny_overrides, *eager, "trainer.max_steps=8", f"ckpt_path={plain}", "run_test=false"],
            tmp_path / "again",
        )
    )
    assert torch.load(tmp_path / "again" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "again" / "export")  # the export loads too


@pytest.mark.parametrize("name", ["ddp", "ddp_cpu", "fsdp", "fsdp_cpu", "deepspeed", "mps", "gpu", "cpu"])
def test_trainer_configs_compose(name, tmp_path):
    cfg = compose([f"trainer={name}"], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if name == "fsdp":
        assert cfg.trainer.strategy.auto_wrap_policy._target_ == "lmlab.scale.fsdp.TransformerBlockPolicy"
    if name in ("cpu", "ddp_cpu", "mps"):
        assert cfg.trainer.precision == "32-true"


def test_fsdp_policy_wraps_each_transformer_block():
    model = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=32, n_head=2, vocab_size=100))
    policy = TransformerBlockPolicy()
    assert policy(model, recurse=True, nonwrapped_numel=0)  # the root teaches it the block names
    wrapped = [m for m in model.modules() if policy(m, recurse=False, nonwrapped_numel=0)]
    assert len(wrapped) == 3 and all(type(m).__name__ == "GPT2Block" for m in wrapped)


def test_precision_auto_on_cpu():
    assert auto_precision("cpu") == "32-true"
    if not torch.cuda.is_available():
        assert auto_precision("auto") == "32-true"


def test_flops_per_token_of_gpt2_small():
    """PaLM/nanoGPT accounting for GPT-2 small at T=1024: 6 x 124M params (without positions) + attention."""
    config = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
    flops = training_flops_per_token(GPT2LMHeadModel(config), 1024)
    assert flops == 6 * (124_439_808 - 1024 * 768) + 12 * 12 * 768 * 1024


def test_mfu_is_logged_with_a_known_peak(tiny_overrides, tmp_path):
    cfg = compose(
        [*tiny_overrides, "callbacks.throughput.peak_tflops=0.001", "trainer.max_steps=4"], tmp_path / "run"
    )
    train(cfg)
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        mfu = [float(r["perf/mfu"]) for r in csv.DictReader(f) if r.get("perf/mfu")]
    assert mfu and all(m > 0 for m in mfu)
