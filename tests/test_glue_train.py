"""GLUE fine-tuning learns, writes submission files, and joins the pretraining stage through its export."""

import json
import logging

import pytest
from conftest import CONF, GLUE_TINY, TINY, compose

from lmlab.data.sources.glue_tasks import GLUE_TASKS
from lmlab.stages.evaluate import evaluate
from lmlab.stages.train import train

# From scratch, a tiny post-LN BERT sometimes sits on a plateau for a while: enough steps that no seed fails.
LEARN = ["trainer.max_epochs=6", "data.batch_size=8", "optimizer.lr=1e-3", "scheduler.warmup_ratio=0.1"]


def finetune(task, glue_dir, tmp_path, extra=(), name="run"):
    overrides = [
        f"experiment=glue/{task}",
        *GLUE_TINY,
        f"paths.data_dir={glue_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    return train(compose([*overrides, *extra], tmp_path / name))


def test_every_glue_recipe_exists_and_composes(tmp_path):
    names = sorted(p.stem for p in (CONF / "experiment" / "glue").glob("[!_]*.yaml"))
    assert names == sorted(GLUE_TASKS)
    for task in names:
        cfg = compose([f"experiment=glue/{task}"], tmp_path)
        assert cfg.data.source.task == task and cfg.model.pretrained == "bert-base-cased"
        assert cfg.optimizer.lr == 2e-5 and cfg.data.batch_size == 32 and cfg.trainer.max_epochs == 3
        assert cfg.data.max_length == 128 and cfg.scheduler.name == "linear"
        assert cfg.monitor.mode == "max" and cfg.optimized_metric == f"best/{cfg.monitor.metric}"


def test_learns_a_keyword_task_and_writes_predictions(glue_dir, tmp_path):
    metrics = finetune("sst2", glue_dir, tmp_path, LEARN)
    assert metrics["val/accuracy"] >= 0.95 and metrics["best/val/accuracy"] >= 0.95
    lines = (tmp_path / "run" / "predictions" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 41
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}


def test_mnli_reports_matched_and_mismatched_and_writes_ax(glue_dir, tmp_path):
    metrics = finetune("mnli", glue_dir, tmp_path, LEARN)
    assert metrics["val/accuracy"] > 0.8 and metrics["val/accuracy_mm"] > 0.8
    files = sorted(p.name for p in (tmp_path / "run" / "predictions").iterdir())
    assert files == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]
    labels = {
        line.split("\t")[1]
        for line in (tmp_path / "run" / "predictions" / "AX.tsv").read_text().splitlines()[1:]
    }
    assert labels <= {"entailment", "neutral", "contradiction"}


def test_stsb_is_regression_with_combined_score(glue_dir, tmp_path):
    metrics = finetune("stsb", glue_dir, tmp_path, ["trainer.max_epochs=1", "optimizer.lr=1e-3"])
    assert {"val/pearson", "val/spearmanr", "val/combined_score"} <= metrics.keys()
    # all metrics of the best checkpoint, not only the monitored one
    assert {"best/val/pearson", "best/val/spearmanr", "best/val/combined_score"} <= metrics.keys()
    assert metrics["val/combined_score"] == pytest.approx(
        (metrics["val/pearson"] + metrics["val/spearmanr"]) / 2, abs=1e-6
    )
    value = (tmp_path / "run" / "predictions" / "STS-B.tsv").read_text().splitlines()[1].split("\t")[1]
    assert float(value) == float(value) and "." in value


def test_truncation_is_counted(glue_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        finetune(
            "rte", glue_dir, tmp_path, ["data.max_length=12", "trainer.max_epochs=1", "run_predict=false"]
        )
    assert "were longer than data.max_length=12 tokens and were truncated" in caplog.text


def test_pretrain_export_finetune_evaluate_round_trip(wikitext_dir, glue_dir, tmp_path, caplog):
    # Stage 1: a masked LM pretrained on text, exported.
    pretrain = [
        *TINY,
        "experiment=mlm_wikitext2",
        "model=bert_tiny",
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp_path / 'c1'}",
    ]
    train(compose(pretrain, tmp_path / "pretrain"))
    export = tmp_path / "pretrain" / "export"
    # Stage 2: fine-tune it on RTE; `model.pretrained` is the one knob joining the stages.
    overrides = [
        "experiment=glue/rte", f"model.pretrained={export}", f"paths.data_dir={glue_dir}",
        f"paths.cache_dir={tmp_path / 'c2'}", *[o for o in GLUE_TINY if not o.startswith(("model", "tokenizer"))], *LEARN,
    ]  # fmt: skip
    with caplog.at_level(logging.INFO):
        metrics = train(compose(overrides, tmp_path / "finetune"))
    assert "newly initialized weights" in caplog.text  # the classification head is new, and the log says so
    assert metrics["val/accuracy"] > 0.5
    # Stage 3: evaluate the fine-tuned export: dev metrics and the submission file.
    result = evaluate(
        compose(
            [f"ckpt_path={tmp_path / 'finetune' / 'export'}", "logger=none"], tmp_path / "eval", "evaluate"
        )
    )
    assert result["val/accuracy"] == pytest.approx(metrics["best/val/accuracy"], abs=1e-6)
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["evaluation"] == "classification" and summary["predictions"] == ["predictions/RTE.tsv"]
    lines = (tmp_path / "eval" / "predictions" / "RTE.tsv").read_text().splitlines()
    assert len(lines) == 41 and {line.split("\t")[1] for line in lines[1:]} <= {
        "entailment",
        "not_entailment",
    }


def test_a_head_with_other_labels_is_reinitialized_on_purpose(glue_dir, tmp_path, caplog):
    finetune("mnli", glue_dir, tmp_path, ["trainer.max_epochs=1", "run_predict=false"], name="three")
    three_way = tmp_path / "three" / "export"
    overrides = [
        "experiment=glue/rte", f"model.pretrained={three_way}", f"paths.data_dir={glue_dir}", "trainer.max_epochs=1",
        "run_predict=false", *[o for o in GLUE_TINY if not o.startswith(("model", "tokenizer"))],
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        train(compose(overrides, tmp_path / "two"))
    assert "re-initialized 2 weight(s) whose shape differs" in caplog.text
    assert "(3, 64) -> (2, 64)" in caplog.text


def test_monitor_must_be_a_logged_metric(glue_dir, tmp_path):
    from lmlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"monitor.metric='val/f1' is not logged .* it logs: val/accuracy"):
        finetune("rte", glue_dir, tmp_path, ["monitor.metric=val/f1"])


@pytest.mark.slow
def test_seed_workflow_command(wikitext_dir, glue_dir, tmp_path):
    """The documented one-command workflow: pretrain, fine-tune, report both stages."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    tiny_glue = [o for o in GLUE_TINY if not o.startswith(("model", "tokenizer"))]
    cmd = [
        sys.executable, str(ROOT / "scripts" / "seed_workflow.py"), "--task", "rte", "--out", str(tmp_path / "wf"),
        "--pretrain", *TINY, "model=bert_tiny", f"paths.data_dir={wikitext_dir}",
        "--finetune", *tiny_glue, f"paths.data_dir={glue_dir}",
        "--both", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "wf" / "summary.json").read_text())
    assert "val/loss" in summary["pretrain"] and "val/accuracy" in summary["finetune_rte"]
    assert "finetune_rte: {" in result.stdout
