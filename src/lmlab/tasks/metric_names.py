"""The names of the metrics a task module logs, from the run's config alone: no tokenizer, data or model.

``TaskModule.logged_metrics()`` answers once the module is built, after the tokenizer is trained and the
data prepared. A sweep needs the answer before its first trial trains, to refuse an ``optimized_metric``
that no trial will return (``lmlab.sweeps.returned``). ``task_metric_names(cfg)`` computes it from the task
and data configs: ``logged`` is what ``logged_metrics()`` of cfg's task module returns, ``unlisted`` what
the module logs beyond it (classification: its scored test sets and its auxiliary LM loss).
tests/test_sweep_parts.py checks both against built modules and a real run.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from lmlab.data.sources import ClassificationSpec
from lmlab.metrics.generated_text import GENERATION_METRICS
from lmlab.tasks.classification import SequenceClassificationModule
from lmlab.tasks.lm import LanguageModelModule
from lmlab.tasks.seq2seq import Seq2SeqModule


@dataclass(frozen=True)
class TaskMetricNames:
    task: str  # the task module's class name, for messages
    logged: list[str]  # what module.logged_metrics() returns
    unlisted: list[str]  # what the module logs beyond them

    @property
    def all(self) -> list[str]:
        return [*self.logged, *self.unlisted]


def task_metric_names(cfg: DictConfig) -> TaskMetricNames | None:
    """The metrics cfg's task module logs; None for a task module these names are not known for."""
    cls = get_class(cfg.task._target_)
    owner = next((klass for klass in cls.__mro__ if "logged_metrics" in vars(klass)), None)
    if owner is LanguageModelModule:
        logged = owner.eval_metric_names("acc") + ["train/loss", "train/acc"]
        return TaskMetricNames(cls.__name__, logged, [])
    if owner is Seq2SeqModule:
        return TaskMetricNames(
            cls.__name__, owner.eval_metric_names(*GENERATION_METRICS) + ["train/loss"], []
        )
    if owner is SequenceClassificationModule:
        spec = classification_spec(cfg)
        unlisted = _classification_names(spec, "test", spec.test_suffixes)
        if cfg.task.get("aux_lm_weight"):
            unlisted.append("train/aux_lm_loss")
        logged = _classification_names(spec, "val", spec.eval_suffixes) + ["train/loss"]
        return TaskMetricNames(cls.__name__, logged, unlisted)
    return None


def classification_spec(cfg: DictConfig) -> ClassificationSpec:
    """The labels, metrics and evaluation sets of the data source (a GLUE task: from its name; a table:
    from its settings and the header of its test file)."""
    return instantiate(cfg.data.source).spec


def _classification_names(spec: ClassificationSpec, stage: str, suffixes: tuple[str, ...]) -> list[str]:
    names = [*spec.metrics, "loss"] + (["combined_score"] if len(spec.metrics) > 1 else [])
    return [f"{stage}/{n}{s}" for s in suffixes for n in names]
