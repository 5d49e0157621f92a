"""The best trial, and mean ± std over seeds of configurations that differ only in their seed."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmlab.sweeps.records import TrialRecord

SEED_KEY = "seed"


@dataclass
class ConfigStats:
    """The completed trials of one configuration (all parameters but the seed equal)."""

    params: dict[str, Any]
    values: list[float] = field(default_factory=list)
    seeds: list[Any] = field(default_factory=list)
    failed: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1): the spread a new seed would show; None below two seeds."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def describe(self, digits: int = 4) -> str:
        if self.mean is None:
            return "n/a"
        spread = f" ± {self.std:.{digits}f}" if self.std is not None else ""
        return f"{self.mean:.{digits}f}{spread} (n={self.n})"


def is_completed(record: TrialRecord) -> bool:
    return record.status == "completed" and record.value is not None


def completed(records: list[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if is_completed(r)]


def pick_better(direction: str) -> Callable[..., Any]:
    """``min`` for a minimized metric, else ``max``: picks the better of values (or of items, with a key)."""
    return min if direction == "minimize" else max


def best_trial(records: list[TrialRecord], direction: str) -> TrialRecord | None:
    done = completed(records)
    return pick_better(direction)(done, key=lambda r: r.value) if done else None


def group_over_seeds(records: list[TrialRecord], seed_key: str = SEED_KEY) -> list[ConfigStats]:
    """One entry per configuration when the seed is among the searched parameters, else none."""
    if not any(seed_key in r.params for r in records):
        return []
    groups: dict[tuple, ConfigStats] = {}
    for record in records:
        params = {k: v for k, v in record.params.items() if k != seed_key}
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        stats = groups.setdefault(key, ConfigStats(params))
        if is_completed(record):
            stats.values.append(record.value)  # type: ignore[arg-type]
            stats.seeds.append(record.params.get(seed_key))
        elif record.status == "failed":
            stats.failed += 1
    return list(groups.values())


def best_config(groups: list[ConfigStats], direction: str) -> ConfigStats | None:
    scored = [g for g in groups if g.mean is not None]
    return pick_better(direction)(scored, key=lambda g: g.mean) if scored else None
