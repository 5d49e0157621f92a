"""The entry points as a user runs them: `python train.py ...` then `python evaluate.py ...` (subprocesses)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY


def run_cli(script: str, args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "HOME": str(tmp_path / "home"), **env}
    environ = {k: v for k, v in environ.items() if v is not None}
    environ.pop("WANDB_SERVICE", None)  # never attach to a W&B service this test process started
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=tmp_path,
        env=environ,
        stdin=subprocess.DEVNULL,  # as in CI: a login prompt would crash, not hang
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, wikitext_dir):
    """One tiny pretraining run through train.py, with the default W&B logger and no credentials."""
    tmp = tmp_path_factory.mktemp("cli")
    run_dir = tmp / "run"
    args = [
        *[o for o in TINY if not o.startswith("logger=")],
        "logger=many",
        "trainer.limit_val_batches=null",
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli("train.py", args, tmp, WANDB_MODE=None, WANDB_API_KEY=None)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result, tmp, wikitext_dir


def test_train_writes_checkpoints_metrics_and_export(trained_run):
    run_dir, result, _, _ = trained_run
    output = result.stdout + result.stderr
    assert "wandb sync" in output  # no credentials: offline, with the command to upload later
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert "Tokens per optimizer step: 256 (batch 8 x length 32" in output
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("step*.ckpt"))) == 1  # the best one
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert {"val/loss", "val/ppl", "test/loss", "train/loss", "train/tokens"} <= summary["metrics"].keys()
    assert (run_dir / "config_resolved.yaml").is_file() and (run_dir / "train.log").is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run_dir / "export")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "export")
    assert (run_dir / "export" / "model.safetensors").is_file()
    ids = tokenizer(" alpha bravo", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3


def test_evaluate_reproduces_validation_loss(trained_run):
    run_dir, _, tmp, data_dir = trained_run
    summary = json.loads((run_dir / "metrics.json").read_text())
    # Non-overlapping windows of the training block size are the validation blocks.
    losses = {}
    for name, ckpt in (("export", run_dir / "export"), ("ckpt", summary["best_checkpoint"])):
        out = tmp / f"eval_{name}"
        args = [f"ckpt_path={ckpt}", "split=validation", "stride=32", f"paths.data_dir={data_dir}"]
        args += [f"paths.cache_dir={tmp / 'cache'}", f"hydra.run.dir={out}"]
        result = run_cli("evaluate.py", args, tmp)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        evaluation = json.loads((out / "metrics.json").read_text())
        assert evaluation["context_length"] == 32 and evaluation["stride"] == 32
        losses[name] = evaluation["metrics"]["validation/loss"]
    assert losses["export"] == pytest.approx(losses["ckpt"], rel=1e-5)
    assert losses["export"] == pytest.approx(summary["metrics"]["best/val/loss"], rel=0.02)


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    result = run_cli("train.py", ["experiment=nope"], tmp_path)
    assert result.returncode != 0
    assert "Could not find 'experiment/nope'" in result.stderr
    assert "clm_wikitext2" in result.stderr and "mlm_wikitext2" in result.stderr


def test_checkpoint_loads_with_weights_only(trained_run):
    run_dir, _, _, _ = trained_run
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["lmlab"]["head"] == "causal_lm"
    assert "tokenizer.json" in ckpt["lmlab"]["tokenizer_files"]
