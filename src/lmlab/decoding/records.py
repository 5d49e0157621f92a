"""Generated examples: collected per rank, merged across DDP ranks, scored once, written and shown.

Under DDP each rank generates for its shard, and the distributed sampler pads shards by repeating
examples; records carry the example's index, so after gathering every example is counted exactly once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch.distributed as dist

from lmlab.metrics.generated_text import TextMetricOptions, generation_scores
from lmlab.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class GenerationRecord:
    index: int
    source: str
    references: list[str]
    prediction: str
    gen_len: int


class RecordCollector:
    """Records of one evaluation: ``add`` on each rank, ``gather`` to get all of them on every rank."""

    def __init__(self) -> None:
        self.records: list[GenerationRecord] = []

    def add(self, records: list[GenerationRecord]) -> None:
        self.records.extend(records)

    def reset(self) -> None:
        self.records = []

    def gather(self) -> list[GenerationRecord]:
        """All ranks' records, one per example index, sorted by index."""
        parts: list[Any] = [self.records]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self.records)
        return dedupe(r for part in parts for r in part)


def dedupe(records) -> list[GenerationRecord]:
    by_index: dict[int, GenerationRecord] = {}
    for record in records:
        by_index.setdefault(record.index, record)
    return [by_index[i] for i in sorted(by_index)]


def score_records(
    records: list[GenerationRecord], options: TextMetricOptions
) -> tuple[dict[str, float], str]:
    """Generation metrics of the records and the sacreBLEU signature."""
    return generation_scores(
        [r.prediction for r in records],
        [r.references for r in records],
        [r.gen_len for r in records],
        options,
    )


def write_predictions(
    path: str | Path, records: list[GenerationRecord], metrics: dict[str, float], info: dict[str, Any]
) -> Path:
    """``<path>.jsonl`` (one record per line) and ``<path>.json`` (metrics + the settings behind them)."""
    path = Path(path)
    lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(path.with_suffix(".jsonl"), lines)
    atomic_write_json(path.with_suffix(".json"), {"metrics": metrics, "examples": len(records), **info})
    return path.with_suffix(".jsonl")


def log_examples_table(
    loggers: list, key: str, records: list[GenerationRecord], rows: int, step: int | None = None
) -> None:
    """A W&B table (index, source, reference, prediction) of the first ``rows`` examples, if W&B is logging;
    training logs it at each generating validation and the test, ``evaluate.py`` once per evaluation."""
    if rows <= 0:
        return
    from lightning.pytorch.loggers import WandbLogger

    data = [[r.index, r.source, "\n".join(r.references), r.prediction] for r in records[:rows]]
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.log_table(
                key=key, columns=["index", "source", "reference", "prediction"], data=data, step=step
            )
