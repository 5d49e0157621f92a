"""What every benchmark of issue 7 shares: machine facts, statistics, and running one system in a child.

Absolute numbers on a shared 2-core machine drift with the other jobs, so the benchmarks compare systems by
ratios of runs made next to each other (alternating, in rotating order) and report the median and range.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_id() -> str:
    """Family, model, stepping, cache and vector extensions: what tells apart two VMs of the same CPU name."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.machine()
    flags = set(info.get("flags", "").split())
    ext = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return (
        f"family {info.get('cpu family')} model {info.get('model')} stepping {info.get('stepping')}, "
        f"cache {info.get('cache size')}, {'+'.join(ext) or 'no avx2'}"
    )


def machine_facts() -> dict[str, Any]:
    """CPU, cores, threads, library versions, date and the load average (the machine is shared)."""
    import lightning
    import torch
    import transformers

    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_name(),
        "cpu_id": cpu_id(),
        "cores": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "transformers": transformers.__version__,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def print_facts(facts: dict[str, Any]) -> None:
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()), flush=True)


def load_now() -> float:
    return round(os.getloadavg()[0], 2)


def summary(values: list[float]) -> dict[str, float]:
    """Median and range (min, max) of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict[str, float], digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"


def run_child(cmd: list[str], out_json: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Any:
    """Run a command in a fresh process; return the JSON it wrote to ``out_json`` (stderr shown on failure)."""
    out_json.unlink(missing_ok=True)
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    if proc.returncode != 0 or not out_json.exists():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {' '.join(cmd[:6])} ...")
    return json.loads(out_json.read_text())


def tokens_per_sec(step_ends: list[float], warmup: int, tokens_per_step: int) -> float:
    """Throughput over the steps after ``warmup``: from the end of step ``warmup`` to the end of the last."""
    measured = len(step_ends) - warmup
    if measured < 1:
        raise ValueError(f"only {len(step_ends)} steps recorded, warm-up {warmup}")
    return measured * tokens_per_step / (step_ends[-1] - step_ends[warmup - 1])
