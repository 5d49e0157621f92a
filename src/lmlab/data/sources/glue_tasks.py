"""The nine GLUE tasks: columns, labels, metrics and file names, as in the reference implementations.

Columns follow the Hugging Face ``run_glue`` ``task_to_keys``; label orders follow the ``nyu-mll/glue``
hub dataset (so label ids agree whichever source is read); metrics follow the official GLUE scoring
(CoLA: Matthews correlation; MRPC and QQP: F1 of the positive class and accuracy; STS-B: Pearson and
Spearman; MNLI: accuracy on matched and mismatched; the others: accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmlab.data.sources.labeled import LabelSet
from lmlab.errors import ConfigError


@dataclass(frozen=True)
class Columns:
    """Where text, label and index are in a GLUE TSV file: header names, or positions for header-less files."""

    text_a: str | int
    text_b: str | int | None = None
    label: str | int | None = None
    index: str | int | None = None
    header: bool = True


@dataclass(frozen=True)
class EvalSet:
    """A labeled evaluation file (dev) and the suffix of its metric names (``val/accuracy_mm``)."""

    file: str
    hub_split: str
    suffix: str = ""


@dataclass(frozen=True)
class PredictSet:
    """An unlabeled test file and the name of its GLUE submission file."""

    file: str
    hub_split: str
    submission: str
    folder: str | None = None  # another task folder (the diagnostic set AX lives in glue_data/diagnostic)
    hub_config: str | None = None


@dataclass(frozen=True)
class GlueTask(LabelSet):
    name: str
    folder: str
    labels: tuple[str, ...] | None  # label values as written in the files; None: regression (STS-B)
    label_names: tuple[str, ...] | None  # readable names for the model config (id2label)
    metrics: tuple[str, ...]
    train_columns: Columns
    test_columns: Columns
    hub_columns: tuple[str, str | None]
    eval_sets: tuple[EvalSet, ...] = (EvalSet("dev.tsv", "validation"),)
    predict_sets: tuple[PredictSet, ...] = ()
    hub_config: str = ""
    main_metric: str = field(default="")


def _task(
    name, folder, labels, label_names, metrics, train_columns, test_columns, hub_columns, main, **kw
) -> GlueTask:
    kw.setdefault("predict_sets", (PredictSet("test.tsv", "test", f"{folder}.tsv"),))
    return GlueTask(name, folder, labels, label_names, metrics, train_columns, test_columns, hub_columns,
                    hub_config=name, main_metric=main, **kw)  # fmt: skip


BINARY = ("0", "1")
NLI2 = ("entailment", "not_entailment")
PAIR_TEST = Columns("sentence1", "sentence2", index="index")

GLUE_TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        _task("cola", "CoLA", BINARY, ("unacceptable", "acceptable"), ("matthews_correlation",),
              Columns(3, label=1, header=False), Columns("sentence", index="index"), ("sentence", None),
              "matthews_correlation"),
        _task("sst2", "SST-2", BINARY, ("negative", "positive"), ("accuracy",),
              Columns("sentence", label="label"), Columns("sentence", index="index"), ("sentence", None), "accuracy"),
        _task("mrpc", "MRPC", BINARY, ("not_equivalent", "equivalent"), ("f1", "accuracy"),
              Columns("#1 String", "#2 String", label="Quality"), Columns("#1 String", "#2 String", index="index"),
              ("sentence1", "sentence2"), "combined_score"),
        _task("stsb", "STS-B", None, None, ("pearson", "spearmanr"),
              Columns("sentence1", "sentence2", label="score"), PAIR_TEST, ("sentence1", "sentence2"), "combined_score"),
        _task("qqp", "QQP", BINARY, ("not_duplicate", "duplicate"), ("f1", "accuracy"),
              Columns("question1", "question2", label="is_duplicate"), Columns("question1", "question2", index="id"),
              ("question1", "question2"), "combined_score"),
        _task("mnli", "MNLI", ("entailment", "neutral", "contradiction"), ("entailment", "neutral", "contradiction"),
              ("accuracy",), Columns("sentence1", "sentence2", label="gold_label"), PAIR_TEST, ("premise", "hypothesis"),
              "accuracy",
              eval_sets=(EvalSet("dev_matched.tsv", "validation_matched"),
                         EvalSet("dev_mismatched.tsv", "validation_mismatched", "_mm")),
              predict_sets=(PredictSet("test_matched.tsv", "test_matched", "MNLI-m.tsv"),
                            PredictSet("test_mismatched.tsv", "test_mismatched", "MNLI-mm.tsv"),
                            PredictSet("diagnostic.tsv", "test", "AX.tsv", folder="diagnostic", hub_config="ax"))),
        _task("qnli", "QNLI", NLI2, NLI2, ("accuracy",), Columns("question", "sentence", label="label"),
              Columns("question", "sentence", index="index"), ("question", "sentence"), "accuracy"),
        _task("rte", "RTE", NLI2, NLI2, ("accuracy",), Columns("sentence1", "sentence2", label="label"), PAIR_TEST,
              ("sentence1", "sentence2"), "accuracy"),
        _task("wnli", "WNLI", BINARY, ("not_entailment", "entailment"), ("accuracy",),
              Columns("sentence1", "sentence2", label="label"), PAIR_TEST, ("sentence1", "sentence2"), "accuracy"),
    )
}  # fmt: skip


def glue_task(name: str) -> GlueTask:
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ConfigError(f"data.task={name!r} is not a GLUE task; valid: {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]
