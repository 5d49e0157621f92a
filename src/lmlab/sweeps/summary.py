"""The end-of-sweep summary in the sweep folder, the same for every sweeper.

``summary.csv`` and ``summary.md`` (every trial: number, status, metric, duration, parameters, error),
``best.yaml`` (best parameters and value; with seeds, also the best mean over seeds) and ``plots/``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmlab.sweeps.aggregate import ConfigStats, best_config, best_trial, group_over_seeds
from lmlab.sweeps.records import TrialRecord
from lmlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)


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


def write_summary(
    records: list[TrialRecord],
    sweep_dir: str | Path,
    *,
    name: str,
    metric: str | None,
    direction: str,
    log_params: Iterable[str] = (),
    plots: bool = True,
) -> SweepSummary:
    """Write the summary files (``plots=False``: the tables only, cheap enough after every job)."""
    summary = SweepSummary(name, Path(sweep_dir), metric, direction, records, set(log_params))
    if plots and records:
        from lmlab.sweeps.plots import write_plots  # matplotlib only when plots are drawn

        summary.plots = write_plots(summary, summary.sweep_dir / "plots")
    atomic_write_text(summary.sweep_dir / "summary.csv", to_csv(summary))
    atomic_write_text(summary.sweep_dir / "summary.md", to_markdown(summary))
    atomic_write_text(summary.sweep_dir / "best.yaml", yaml.safe_dump(best_dict(summary), sort_keys=False))
    return summary


def log_summary(summary: SweepSummary) -> None:
    status = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts().items()))
    log.info("Sweep %s: %d trials (%s). Summary: %s", summary.name, len(summary.records), status,
             summary.sweep_dir / "summary.md")  # fmt: skip
    best = summary.best
    if best is not None:
        log.info(
            "Best %s = %.4f (trial %d): %s",
            summary.metric_label,
            best.value,
            best.number,
            _params_text(best.params),
        )


def to_csv(summary: SweepSummary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["number", "status", summary.metric_label, "duration_s", *summary.param_names, "error", "job_dir"]
    )
    for r in summary.records:
        params = [r.params.get(p, "") for p in summary.param_names]
        duration = "" if r.duration_s is None else f"{r.duration_s:.1f}"
        writer.writerow(
            [r.number, r.status, _blank(r.value), duration, *params, r.error or "", r.job_dir or ""]
        )
    return out.getvalue()


def to_markdown(summary: SweepSummary) -> str:
    counts, best, label = summary.counts(), summary.best, summary.metric_label
    lines = [f"# Sweep {summary.name}", ""]
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"`{label}` ({summary.direction}): {len(summary.records)} trials ({status}).")
    if best is not None:
        lines += ["", f"**Best: {best.value:.4f}** (trial {best.number}): {_params_text(best.params)}"]
    failures = Counter(
        (r.error or "unknown error").splitlines()[0] for r in summary.records if r.status == "failed"
    )
    if failures:
        lines += ["", "## Failed trials", ""]
        lines += [f"- {n} × {_cell(error, 300)}" for error, n in failures.most_common()]
    groups = summary.groups
    if groups:
        lines += ["", "## Mean ± std over seeds", ""] + _groups_table(groups, label, summary.direction)
    lines += ["", "## Trials", ""] + _trials_table(summary)
    if summary.plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(summary.sweep_dir).as_posix()})" for p in summary.plots]
    return "\n".join(lines) + "\n"


def best_dict(summary: SweepSummary) -> dict[str, Any]:
    counts, best = summary.counts(), summary.best
    out: dict[str, Any] = {"name": summary.name, "metric": summary.metric, "direction": summary.direction}
    out["trials"] = {"total": len(summary.records), **{k: counts[k] for k in sorted(counts)}}
    if best is not None:
        out.update(value=best.value, trial=best.number, params=dict(best.params), job_dir=best.job_dir)
    top = best_config(summary.groups, summary.direction)
    if top is not None:
        out["best_over_seeds"] = {
            "params": top.params,
            "mean": top.mean,
            "std": top.std,
            "n": top.n,
            "seeds": top.seeds,
        }
    return out


def _trials_table(summary: SweepSummary) -> list[str]:
    names = summary.param_names
    header = ["#", "status", summary.metric_label, "duration (s)", *names, "error"]
    rows = []
    for r in summary.records:
        duration = "" if r.duration_s is None else f"{r.duration_s:.1f}"
        value = "" if r.value is None else f"{r.value:.4f}"
        params = [_fmt(r.params[p]) if p in r.params else "" for p in names]
        rows.append([str(r.number), r.status, value, duration, *params, _cell(r.error or "", 80)])
    return _table(header, rows)


def _groups_table(groups: list[ConfigStats], label: str, direction: str) -> list[str]:
    names = list(dict.fromkeys(k for g in groups for k in g.params))
    reverse = direction == "maximize"
    ordered = sorted(groups, key=lambda g: (g.mean is None, -(g.mean or 0) if reverse else (g.mean or 0)))
    header = [*names, f"{label} mean ± std", "n", "seeds", "failed"]
    rows = [
        [
            *(_fmt(g.params.get(k, "")) for k in names),
            g.describe(),
            str(g.n),
            ", ".join(map(str, g.seeds)),
            str(g.failed),
        ]
        for g in ordered
    ]
    return _table(header, rows)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={_fmt(v)}`" for k, v in params.items()) or "(no parameters)"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(text: str, width: int) -> str:
    first = text.splitlines()[0] if text else ""
    first = first if len(first) <= width else first[: width - 1] + "…"
    return first.replace("|", "\\|")


def _blank(value: Any) -> Any:
    return "" if value is None else value
