"""GLUE loaders read every task's real file layout; bad rows and missing splits give clear errors."""

import csv

import pytest

from lmlab.data.sources import GlueSource, TableSource
from lmlab.data.sources.glue import read_tsv
from lmlab.data.sources.glue_tasks import GLUE_TASKS, Columns, glue_task
from lmlab.errors import ConfigError, DataError

EXPECTED_COLUMNS = {  # Hugging Face run_glue task_to_keys
    "cola": ("sentence", None), "mnli": ("premise", "hypothesis"), "mrpc": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"), "qqp": ("question1", "question2"), "rte": ("sentence1", "sentence2"),
    "sst2": ("sentence", None), "stsb": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2"),
}  # fmt: skip


def test_task_table_matches_the_reference():
    assert set(GLUE_TASKS) == set(EXPECTED_COLUMNS)
    for name, task in GLUE_TASKS.items():
        assert task.hub_columns == EXPECTED_COLUMNS[name]
    assert GLUE_TASKS["stsb"].is_regression and GLUE_TASKS["stsb"].num_labels == 1
    assert GLUE_TASKS["mnli"].labels == ("entailment", "neutral", "contradiction")  # nyu-mll/glue label ids
    assert [p.submission for p in GLUE_TASKS["mnli"].predict_sets] == ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]


@pytest.mark.parametrize("task", sorted(GLUE_TASKS))
def test_each_loader_reads_its_layout(task, glue_dir):
    source = GlueSource(task, str(glue_dir))
    source.check()
    train = source.train()
    assert len(train) == 400
    first = train[0]
    assert first.text_a and (first.text_b is not None) == (EXPECTED_COLUMNS[task][1] is not None)
    if task == "stsb":
        assert isinstance(first.label, float)
    else:
        assert first.label in range(GLUE_TASKS[task].num_labels)
    evals = source.eval_sets()
    assert [suffix for suffix, _ in evals] == (["", "_mm"] if task == "mnli" else [""])
    assert all(len(rows) == 80 for _, rows in evals)
    predict = source.predict_sets()
    assert all(len(rows) == 40 and rows[0].label is None for _, rows in predict)
    assert [r.idx for r in predict[0][1]] == list(range(40))


def test_mrpc_bom_and_literal_quotes(glue_dir):
    first = GlueSource("mrpc", str(glue_dir)).train()[0]
    assert first.text_a.startswith('"') and first.text_a.endswith(
        '" he said'
    )  # quotes are text, not CSV quoting
    assert first.text_b.endswith('"quoted')


def test_cola_has_no_header(glue_dir):
    rows = GlueSource("cola", str(glue_dir)).train()
    raw = (glue_dir / "glue_data" / "CoLA" / "train.tsv").read_text().splitlines()
    assert rows[0].text_a == raw[0].split("\t")[3] and rows[0].label == int(raw[0].split("\t")[1])


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(
        ConfigError, match="not a GLUE task; valid: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"
    ):
        glue_task("sst3")


def test_missing_split_names_the_file(glue_dir, tmp_path):
    folder = tmp_path / "glue_data" / "RTE"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text((glue_dir / "glue_data" / "RTE" / "train.tsv").read_text())
    with pytest.raises(DataError, match=r"RTE/dev.tsv not found \(evaluation split\)"):
        GlueSource("rte", str(tmp_path)).check()


def write_rte(tmp_path, lines):
    path = tmp_path / "train.tsv"
    path.write_text("index\tsentence1\tsentence2\tlabel\n" + "\n".join(lines) + "\n")
    return path


def test_bad_rows_stop_or_are_skipped_and_counted(tmp_path, caplog):
    path = write_rte(
        tmp_path,
        ["0\ta\tb\tentailment", "1\tonly three\tfields", "2\ta\tb\tentailed", "3\ta\tb\tnot_entailment"],
    )
    columns, labels = GLUE_TASKS["rte"].train_columns, GLUE_TASKS["rte"].labels
    with pytest.raises(DataError, match=r"train.tsv:3: 3 fields, expected 4.*data.bad_rows=skip"):
        read_tsv(path, columns, labels, "error")
    rows = read_tsv(path, columns, labels, "skip")
    assert [r.label for r in rows] == [0, 1]  # rows 0 and 3
    assert "skipped 2 bad row(s)" in caplog.text and "label 'entailed' is not one of" in caplog.text


def test_label_outside_the_set_is_an_error(tmp_path):
    path = write_rte(tmp_path, ["0\ta\tb\tmaybe"])
    with pytest.raises(
        DataError,
        match=r"train.tsv:2: label 'maybe' is not one of the task's labels \['entailment', 'not_entailment'\]",
    ):
        read_tsv(path, GLUE_TASKS["rte"].train_columns, GLUE_TASKS["rte"].labels, "error")


def test_missing_header_column(tmp_path):
    path = write_rte(tmp_path, ["0\ta\tb\tentailment"])
    with pytest.raises(DataError, match="no column 'premise'"):
        read_tsv(path, Columns("premise", "sentence2", label="label"), GLUE_TASKS["rte"].labels, "error")


def test_table_source_csv_and_jsonl(tmp_path):
    train = tmp_path / "train.csv"
    with open(train, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows([["great, really", "5"], ['said "fine"', "3"], ["awful", "1"]])
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"review": "ok", "stars": 3}\n')
    source = TableSource({"train": str(train), "validation": str(dev)}, ["review"], "stars")
    assert source.labels == ("1", "3", "5")
    rows = source.train()
    assert rows[0].text_a == "great, really" and rows[0].label == 2 and rows[1].text_a == 'said "fine"'
    assert source.eval_sets()[0][1][0].label == 1
    with pytest.raises(DataError, match=r"no column\(s\) \['title'\] \(found \['review', 'stars'\]\)"):
        TableSource({"train": str(train), "validation": str(dev)}, ["title"], "stars").check()
