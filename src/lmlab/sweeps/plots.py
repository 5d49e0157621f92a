"""Summary plots as PNG files: the optimization history and the metric against each parameter.

Figures are drawn with matplotlib's object API and the Agg renderer (no pyplot state, no display).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from lmlab.sweeps.aggregate import completed, pick_better
from lmlab.sweeps.results import SweepSummary

_SAFE = re.compile(r"[^\w.-]+")  # parameter names as file names
_FEW = 6  # at most this many distinct values: plotted as labelled columns


def write_plots(summary: SweepSummary, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_history(summary, out_dir / "optimization_history.png")]
    for name in summary.param_names:
        path = _against_param(summary, name, out_dir / f"param_{_SAFE.sub('_', name)}.png")
        if path is not None:
            paths.append(path)
    return paths


def _history(summary: SweepSummary, path: Path) -> Path:
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    done = sorted(completed(summary.records), key=lambda r: r.number)
    if done:
        ax.scatter([r.number for r in done], [r.value for r in done], s=22, label="trial", zorder=3)
        pick = pick_better(summary.direction)
        best, running = [], None
        for r in done:
            running = r.value if running is None else pick(running, r.value)
            best.append(running)
        ax.step([r.number for r in done], best, where="post", color="tab:orange", label="best so far")
    failed = [r.number for r in summary.records if r.status == "failed"]
    if failed:
        # Failed trials have no value: mark them along the bottom edge.
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(
            failed, [0.03] * len(failed), marker="x", color="tab:red", transform=bottom, label="failed"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(summary.metric_label)
    ax.set_title(f"{summary.name}: {summary.metric_label} ({summary.direction})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    return path


def _against_param(summary: SweepSummary, name: str, path: Path) -> Path | None:
    points = [(r.params[name], r.value) for r in completed(summary.records) if name in r.params]
    if not points:
        return None
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    xs: list[Any] = [x for x, _ in points]
    ys = [y for _, y in points]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    if numeric and len(set(xs)) > _FEW:
        ax.scatter(xs, ys, s=22)
        if name in summary.log_params or (min(xs) > 0 and max(xs) / min(xs) >= 100):
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(6))
    else:  # a handful of values (a grid, choices): one column each, labelled with the value
        labels = sorted(set(xs)) if numeric else sorted({str(x) for x in xs})
        ax.scatter([labels.index(x if numeric else str(x)) for x in xs], ys, s=22)
        ax.set_xticks(range(len(labels)), [f"{x:.3g}" if isinstance(x, float) else str(x) for x in labels])
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(name)
    ax.set_ylabel(summary.metric_label)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path
