"""The end-of-sweep summary in the sweep folder, the same for every sweeper.

``summary.csv`` and ``summary.md`` (every trial: number, status, metric, duration, parameters, error),
``best.yaml`` (best parameters and value; with seeds, also the best mean over seeds) and ``plots/``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from lmlab.sweeps.aggregate import ConfigStats, best_config
from lmlab.sweeps.records import TrialRecord
from lmlab.sweeps.results import SweepSummary
from lmlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)
# A summary that cannot be written is reported by the sweep itself, as the sweep's other messages are.
_sweep_log = logging.getLogger("lmlab.sweeps")


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


def write_summary_safely(
    write: Callable[[], SweepSummary], sweep_dir: Path, *, final: bool = True
) -> SweepSummary | None:
    """Run ``write`` (read the records, then ``write_summary``) for any sweeper, and log the ``final``
    summary. Never raises: the error is logged and None returned."""
    try:
        summary = write()
    # A summary problem must neither turn finished jobs into a failure nor hide the sweep's own outcome:
    # the job folders (or the Optuna study) hold every result.
    except Exception:  # noqa: BLE001
        _sweep_log.exception("The sweep summary could not be written to %s", sweep_dir)
        return None
    if final:
        log_summary(summary)
    return summary


def log_summary(summary: SweepSummary) -> None:
    log.info("Sweep %s: %d trials (%s). Summary: %s", summary.name, len(summary.records),
             _status_text(summary.counts()), summary.sweep_dir / "summary.md")  # fmt: skip
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
        writer.writerow(
            [r.number, r.status, _blank(r.value), _duration(r), *params, r.error or "", r.job_dir or ""]
        )
    return out.getvalue()


def to_markdown(summary: SweepSummary) -> str:
    counts, best, label = summary.counts(), summary.best, summary.metric_label
    lines = [f"# Sweep {summary.name}", ""]
    lines.append(f"`{label}` ({summary.direction}): {len(summary.records)} trials ({_status_text(counts)}).")
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
        value = "" if r.value is None else f"{r.value:.4f}"
        params = [_fmt(r.params[p]) if p in r.params else "" for p in names]
        rows.append([str(r.number), r.status, value, _duration(r), *params, _cell(r.error or "", 80)])
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


def _status_text(counts: Counter) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _duration(record: TrialRecord) -> str:
    return "" if record.duration_s is None else f"{record.duration_s:.1f}"


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
