"""Generation through the entry points, as a user runs them: train.py with W&B (offline), then evaluate.py."""

import json

import pytest
from conftest import compose
from gen_fixtures import copy_task_overrides, write_copy_task
from test_cli import run_cli

from lmlab.errors import ConfigError
from lmlab.stages.evaluate import evaluate


@pytest.mark.slow  # the same path runs in-process in tests/test_gen_train.py
def test_train_and_evaluate_a_generation_recipe(tmp_path):
    data = write_copy_task(tmp_path / "copy")
    run_dir = tmp_path / "run"
    args = [
        "experiment=gen/translation_t5", "model=t5_tiny", *copy_task_overrides(data, tmp_path / "cache"),
        "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "~callbacks.model_summary",
        "data.max_test_samples=12", "task.val_generate_samples=6", "task.log_examples=3", "logger=many",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    result = run_cli("train.py", args, tmp_path, WANDB_API_KEY=None)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "val generation on 6 examples (beam 4, max_new_tokens=16)" in log  # settings logged with scores
    tables = sorted(
        p.name for p in (run_dir / "wandb").glob("offline-run-*/files/media/table/**/*.table.json")
    )
    assert any(t.startswith("generations") for t in tables), tables  # val and test tables
    table = json.loads(
        next((run_dir / "wandb").glob("offline-run-*/files/media/table/test/*.json")).read_text()
    )
    assert table["columns"] == ["index", "source", "reference", "prediction"] and len(table["data"]) == 3

    eval_dir = tmp_path / "eval"
    args = [
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "generation.num_beams=1",
        f"hydra.run.dir={eval_dir}",
    ]
    result = run_cli("evaluate.py", args, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((eval_dir / "metrics.json").read_text())
    assert summary["generation"]["num_beams"] == 1 and summary["examples"] == 64  # the whole split
    assert {"test/bleu", "test/rougeLsum", "test/gen_len", "test/distinct_1"} <= set(summary["metrics"])

    # contradictory settings: one clear message (exit code 2 from the entry point, as for every user error)
    cfg = compose([args[0], "generation.top_p=2", "logger=none"], tmp_path / "bad", config_name="evaluate")
    with pytest.raises(ConfigError, match=r"generation.top_p=2 must be in \(0, 1\]"):
        evaluate(cfg)


@pytest.mark.slow
def test_ddp_scores_every_example_once(tmp_path):
    """Two CPU processes (gloo) generate for their halves of an odd-sized test split; the scores equal those of
    one process with the same weights (a learning rate of 0 keeps the initial weights)."""
    data = write_copy_task(tmp_path / "copy")
    base = [
        "experiment=gen/translation_t5", "model=t5_tiny", *copy_task_overrides(data, tmp_path / "cache"),
        "trainer.max_steps=1", "optimizer.lr=0", "scheduler.warmup_steps=0", "trainer.val_check_interval=1",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "~callbacks.model_summary",
        "data.max_test_samples=13", "data.max_eval_samples=13", "data.eval_batch_size=4", "logger=csv",
        "task.generation.num_beams=1", "task.generation.max_new_tokens=6", "export.enabled=false",
    ]  # fmt: skip
    results = {}
    for name, extra in (("single", []), ("ddp", ["trainer=ddp_cpu", "data.batch_size=16"])):
        logs = tmp_path / name
        result = run_cli("train.py", [*base, *extra, f"paths.log_dir={logs}"], tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (run,) = list((logs / "translation_t5" / "runs").iterdir())
        records = [json.loads(x) for x in (run / "predictions" / "test.jsonl").read_text().splitlines()]
        results[name] = (json.loads((run / "metrics.json").read_text())["metrics"], records)
    (single, single_records), (ddp, ddp_records) = results["single"], results["ddp"]
    assert [r["index"] for r in ddp_records] == list(range(13))  # 14 generated (7 per rank), 13 scored
    assert [r["prediction"] for r in ddp_records] == [r["prediction"] for r in single_records]
    for key in ("test/bleu", "test/rouge1", "test/rougeLsum", "test/gen_len", "test/distinct_2", "val/bleu"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-6), key
