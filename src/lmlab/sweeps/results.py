"""The results of one sweep (``SweepSummary``): its trial records, what they optimized, and views of them.

Every output of a sweep is drawn from this one value: the summary files (``lmlab.sweeps.summary``), the
plots (``lmlab.sweeps.plots``) and the W&B copy (``lmlab.sweeps.wandb_summary``). It sits below all of
them, so that they import it and never each other for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.sweeps.aggregate import ConfigStats, best_trial, group_over_seeds
from lmlab.sweeps.records import TrialRecord


@dataclass
class SweepSummary:
    name: str
    sweep_dir: Path
    metric: str | None
    direction: str
    records: list[TrialRecord]
    log_params: set[str] = field(default_factory=set)
    plots: list[Path] = field(default_factory=list)

    @property
    def metric_label(self) -> str:
        return self.metric or "value"

    @property
    def param_names(self) -> list[str]:
        names: dict[str, None] = {}
        for record in self.records:
            names.update(dict.fromkeys(record.params))
        return list(names)

    @property
    def best(self) -> TrialRecord | None:
        return best_trial(self.records, self.direction)

    @property
    def groups(self) -> list[ConfigStats]:
        """Configurations over seeds, when at least one of them ran with two seeds or more."""
        groups = group_over_seeds(self.records)
        return groups if any(g.n >= 2 for g in groups) else []

    def counts(self) -> Counter:
        return Counter(r.status for r in self.records)
