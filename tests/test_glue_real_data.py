"""The GLUE loaders on the real release files in ../shared/data/glue, and one short fine-tune on them.

Every task present there loads with its documented split sizes (the GLUE paper's Table 1 and the
``nyu-mll/glue`` dataset card; the label counts documented in ../shared/data/SOURCES.md) and only the labels
of its set; a small BERT trained from scratch on RTE runs through ``train.py`` and writes a submission file
in the GLUE format. Slow; skipped when the folder is absent.
"""

import csv
import json
from collections import Counter

import pytest
from conftest import GLUE_TINY, SHARED_DATA
from test_cli import run_cli

from lmlab.data.sources import GlueSource
from lmlab.data.sources.glue_tasks import GLUE_TASKS

GLUE = SHARED_DATA / "glue"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GLUE.is_dir(), reason="../shared/data/glue is absent"),
]

# Rows per split as released: train, then each evaluation file, then each test file (GLUE_TASKS order).
SIZES = {
    "cola": {"train.tsv": 8_551, "dev.tsv": 1_043, "test.tsv": 1_063},
    "sst2": {"train.tsv": 67_349, "dev.tsv": 872, "test.tsv": 1_821},
    "mrpc": {"train.tsv": 3_668, "dev.tsv": 408, "test.tsv": 1_725},
    "stsb": {"train.tsv": 5_749, "dev.tsv": 1_500, "test.tsv": 1_379},
    "qqp": {"train.tsv": 363_846, "dev.tsv": 40_430, "test.tsv": 390_965},
    "mnli": {
        "train.tsv": 392_702, "dev_matched.tsv": 9_815, "dev_mismatched.tsv": 9_832,
        "test_matched.tsv": 9_796, "test_mismatched.tsv": 9_847, "diagnostic.tsv": 1_104,
    },
    "qnli": {"train.tsv": 104_743, "dev.tsv": 5_463, "test.tsv": 5_463},
    "rte": {"train.tsv": 2_490, "dev.tsv": 277, "test.tsv": 3_000},
    "wnli": {"train.tsv": 635, "dev.tsv": 71, "test.tsv": 146},
}  # fmt: skip
# Label counts documented for the files (SOURCES.md), by label value as written in the files.
LABEL_COUNTS = {
    ("sst2", "train.tsv"): {"1": 37_569, "0": 29_780},
    ("sst2", "dev.tsv"): {"1": 444, "0": 428},
    ("rte", "train.tsv"): {"entailment": 1_249, "not_entailment": 1_241},
    ("rte", "dev.tsv"): {"entailment": 146, "not_entailment": 131},
    ("qnli", "dev.tsv"): {"entailment": 2_702, "not_entailment": 2_761},
}


def present(task) -> bool:
    return (GLUE / task.folder).is_dir()


@pytest.mark.parametrize("name", sorted(GLUE_TASKS))
def test_every_present_task_loads_with_its_documented_sizes_and_labels(name):
    task = GLUE_TASKS[name]
    if not present(task):
        pytest.skip(f"{GLUE / task.folder} is absent")
    source = GlueSource(name, str(SHARED_DATA))  # bad_rows=error: one malformed row fails the test
    labeled = [(s.file, rows) for s, (_, rows) in zip(task.eval_sets, source.eval_sets(), strict=True)]
    if (GLUE / task.folder / "train.tsv").is_file():
        labeled.insert(0, ("train.tsv", source.train()))
    assert labeled, f"{task.folder} has no labeled file"
    for file, rows in labeled:
        assert len(rows) == SIZES[name][file], file
        labels = [r.label for r in rows]
        if task.is_regression:
            assert all(isinstance(y, float) and 0.0 <= y <= 5.0 for y in labels), file
        else:  # every label of the task's set occurs, and nothing else
            assert set(labels) == set(range(task.num_labels)), file
        if (name, file) in LABEL_COUNTS:
            assert dict(Counter(task.labels[y] for y in labels)) == LABEL_COUNTS[(name, file)]
        assert all(r.text_a.strip() for r in rows) and all(
            (r.text_b is not None) == (task.hub_columns[1] is not None) for r in rows
        )
    for (file, rows), p in zip(source.predict_sets(), source.available_predict_sets(), strict=True):
        assert len(rows) == SIZES[name][p.file], file
        assert all(r.label is None for r in rows)
        assert sorted(r.idx for r in rows) == list(range(len(rows)))  # the submission's index column


def test_a_short_finetune_from_scratch_writes_a_valid_submission(tmp_path):
    if not (GLUE / "RTE" / "train.tsv").is_file():
        pytest.skip("../shared/data/glue/RTE is incomplete")
    run_dir = tmp_path / "run"
    args = [
        "experiment=glue/rte",
        *[o for o in GLUE_TINY if not o.startswith(("tokenizer.", "trainer.log_every_n_steps"))],
        "tokenizer.vocab_size=2000",
        "trainer.log_every_n_steps=1",
        "data.max_train_samples=64",
        "data.max_length=64",
        f"paths.data_dir={SHARED_DATA}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli("train.py", args, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and 0.0 <= summary["metrics"]["val/accuracy"] <= 1.0
    assert summary["metrics"]["train/loss"] > 0
    lines = (run_dir / "predictions" / "RTE.tsv").read_text().splitlines()
    with open(GLUE / "RTE" / "test.tsv", encoding="utf-8", newline="") as f:
        test_index = [row[0] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]
    assert lines[0] == "index\tprediction"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 2 for row in rows)
    assert [i for i, _ in rows] == test_index  # one row per test example, in the file's order
    assert {label for _, label in rows} <= set(GLUE_TASKS["rte"].labels)
