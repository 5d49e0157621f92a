"""One row per trial, whichever sweeper ran it: from an Optuna study or from the job folders of a multirun."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmlab.sweeps.outcome import read_json

JOB_INFO = "job.json"  # written into every multirun job folder by lmlab.sweeps.callback.SweepCallback


@dataclass
class TrialRecord:
    number: int
    status: str  # completed | failed | running
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float | None = None
    job_dir: str | None = None


def parse_value(text: str) -> Any:
    """An override value as a number where it is one (for sorting, plots and means), else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a multirun: those Hydra saved overrides in (any ``hydra.sweep.subdir``)."""
    found = [p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml") if ".submitit" not in p.parts]
    return sorted(found, key=lambda d: (len(d.parts), _number_or_none(d.name) or 0, d.name))


def records_from_job_dirs(sweep_dir: Path, metric: str | None) -> list[TrialRecord]:
    """Records of a (grid) multirun, from each job's ``job.json`` and ``metrics.json``.

    The parameters are the overrides whose values differ between jobs: what the sweep varied.
    """
    rows = []
    for index, job_dir in enumerate(job_dirs(sweep_dir)):
        info = read_json(job_dir / JOB_INFO)
        summary = read_json(job_dir / "metrics.json")
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
        value = info.get("value")
        if value is None and metric:
            value = summary.get("metrics", {}).get(metric)
        status = info.get("status") or ("completed" if summary.get("status") == "completed" else "running")
        number = info.get("job_num", _number_or_none(job_dir.name))
        rows.append(
            (
                TrialRecord(
                    number=index if number is None else int(number),
                    status=status,
                    value=value if status == "completed" else None,
                    error=info.get("error"),
                    duration_s=info.get("duration_s"),
                    job_dir=str(job_dir),
                ),
                dict(_split_override(o) for o in overrides),
            )
        )
    varied = _varied_keys([overrides for _, overrides in rows])
    for record, overrides in rows:
        record.params = {k: parse_value(v) for k, v in overrides.items() if k in varied}
    return sorted((record for record, _ in rows), key=lambda r: r.number)


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _varied_keys(overrides: list[dict[str, str]]) -> list[str]:
    keys: dict[str, set[str]] = {}
    for item in overrides:
        for key, value in item.items():
            keys.setdefault(key, set()).add(value)
    return [k for k, values in keys.items() if len(values) > 1 or any(k not in o for o in overrides)]


def _number_or_none(name: str) -> int | None:
    return int(name) if name.isdigit() else None
