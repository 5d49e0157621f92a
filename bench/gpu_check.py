"""GPU check: GPT-2-124M training through `train.py` on one device, DDP and FSDP; tokens/s, MFU, peak memory.

    python bench/gpu_check.py             # on a GPU machine: about 5-7 minutes on one H200, at most --time-budget
    python bench/gpu_check.py --smoke     # the same plumbing on CPUs: 2 layers x 64, context 64, fp32, no compile

What runs: per configuration (single = `trainer=gpu`; ddp = `trainer=ddp` and fsdp = `trainer=fsdp`, each on all
visible GPUs; --smoke: `trainer=cpu`, `ddp_cpu`, `fsdp_cpu` with 2 processes) one child
`python train.py model=gpt2_124m task.compile=true trainer.precision=bf16-mixed data.block_size=1024 ...`, so the
measured path is the one users run: Hydra config, the model factory, `CausalLMModule` (loss, non-finite check,
logging), the Lightning strategy, AdamW with the cosine schedule and clipping, the project's callbacks
(Throughput, learning curves, learning-rate monitor) and the CSV logger. Left out, as one-off costs: checkpoints,
validation, test, export. Two pieces come from `bench/gpu_check_parts.py` (`bench/` is on the child's
PYTHONPATH):

- `SyntheticTokens` (`data._target_`): random token ids under a 50,257-token vocabulary (GPT-2's size), so the
  model is GPT-2-124M exactly: 124,439,808 parameters with tied embeddings (`model.pad_vocab_multiple=1`),
  asserted in every run. (A BPE trained on a small file has fewer tokens, hence fewer parameters.)
- `SegmentClock` (a callback): after --warmup-steps (torch.compile and the first steps; the first step is
  reported as `compile s`, the whole warm-up as `warm-up s`) it times segments of --segment-steps steps between
  device syncs, switching `task.on_nonfinite_loss` between `stop` (the default: one host-device sync a step)
  and `off` from one segment to the next, in the same process with the same compiled graphs; and it records
  `torch.cuda.max_memory_allocated` per segment on every rank (on CPUs: the peak RSS).

Reported per configuration and check setting: tokens/s (median over segments, all devices), MFU per device
(PaLM's 6N + 12LdT model FLOPs per token over `lmlab.scale.flops.PEAK_TFLOPS`), the MFU the run logged itself
(`perf/mfu` of the Throughput callback, same windows: a cross-check), peak memory per device. The machine facts
and the table go to stdout and bench/results/gpu_check.{json,md} (--smoke: gpu_check_smoke.*). A configuration
that fails or outlives the time budget has its error in the table; the others still run; the exit code is 1.

Time on one H200 (estimated; no GPU has run it yet), per configuration: ~20 s start-up, ~40-90 s compile,
50 + 2 x 4 x 25 = 250 steps of 32 x 1024 tokens (~70-110 ms each, ~20-30 s), so ~1.5-2.5 min and ~5-7 min for
all three. --time-budget (470 s) bounds the whole: a configuration gets the time left and is killed at the
deadline; one that would start with under 45 s left is skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
GPT2_VOCAB = 50257
GPT2_124M_PARAMS = 124_439_808
MFU_GOAL = 0.45  # on one H200 (issue: scale out)


def gpt2_params(vocab: int, positions: int, layers: int, width: int) -> int:
    """GPT-2 parameters with tied embeddings: token + position embeddings, blocks, final LayerNorm."""
    return vocab * width + positions * width + layers * (12 * width * width + 13 * width) + 2 * width


# ------------------------------------------------------------------------------ inside the train.py child
def configurations(args: argparse.Namespace) -> list[tuple[str, int, list[str] | None, str]]:
    """(name, devices, trainer overrides or None when skipped, note)."""
    if args.smoke:
        fsdp = (ROOT / "conf" / "trainer" / "fsdp_cpu.yaml").is_file()
        return [
            ("single", 1, ["trainer=cpu"], ""),
            ("ddp", 2, ["trainer=ddp_cpu", "trainer.devices=2"], ""),
            ("fsdp", 2, ["trainer=fsdp_cpu", "trainer.devices=2"] if fsdp else None,
             "" if fsdp else "skipped: conf/trainer/fsdp_cpu.yaml is not there (FSDP on CPUs needs it)"),
        ]  # fmt: skip
    n = torch.cuda.device_count()
    return [
        ("single", 1, ["trainer=gpu"], ""),
        ("ddp", n, ["trainer=ddp", f"trainer.devices={n}"], ""),
        ("fsdp", n, ["trainer=fsdp", f"trainer.devices={n}"], ""),
    ]


def shape(args: argparse.Namespace) -> dict[str, Any]:
    """The model and run shape: GPT-2-124M in bf16 with compile, or the tiny CPU shape of --smoke."""
    if args.smoke:
        model = {"layers": 2, "width": 64, "heads": 2}
        run = {"precision": "32-true", "compile": False, "peak_tflops": args.peak_tflops or 1.0}
    else:
        model = {"layers": 12, "width": 768, "heads": 12}
        run = {"precision": "bf16-mixed", "compile": True, "peak_tflops": args.peak_tflops or "auto"}
    return {**model, "positions": 1024, "vocab": GPT2_VOCAB, "block": args.block, "batch": args.batch, **run,
            "warmup_steps": args.warmup_steps, "segment_steps": args.segment_steps, "segments": args.segments}  # fmt: skip


def child_command(
    s: dict[str, Any], trainer: list[str], run_dir: Path, work: Path, extra: list[str]
) -> list[str]:
    steps = s["warmup_steps"] + 2 * s["segments"] * s["segment_steps"]
    clock = "+callbacks.gpu_check"
    expected = gpt2_params(s["vocab"], s["positions"], s["layers"], s["width"])
    return [
        sys.executable, str(ROOT / "train.py"), "model=gpt2_124m", "optimizer=adamw", "scheduler=cosine",
        "model.pad_vocab_multiple=1",
        f"model.config.n_layer={s['layers']}", f"model.config.n_embd={s['width']}",
        f"model.config.n_head={s['heads']}", f"model.config.n_positions={s['positions']}",
        f"task.compile={str(s['compile']).lower()}", "data._target_=gpu_check_parts.SyntheticTokens", "data.source=null",
        f"+data.vocab_size={s['vocab']}", f"data.block_size={s['block']}", f"data.batch_size={s['batch']}", *trainer,
        f"trainer.precision={s['precision']}", f"trainer.max_steps={steps}",
        f"trainer.log_every_n_steps={s['segment_steps']}", "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "logger=csv", "run_test=false",
        "run_predict=false", "export.enabled=false", "callbacks.model_checkpoint=null",
        "callbacks.periodic_checkpoint=null", f"callbacks.throughput.peak_tflops={s['peak_tflops']}",
        f"{clock}._target_=gpu_check_parts.SegmentClock", f"{clock}.out_dir={run_dir / 'clock'}",
        f"{clock}.warmup_steps={s['warmup_steps']}", f"{clock}.segment_steps={s['segment_steps']}",
        f"{clock}.segments={s['segments']}", f"{clock}.expected_params={expected}",
        f"{clock}.peak_tflops={s['peak_tflops']}", f"hydra.run.dir={run_dir}", f"paths.cache_dir={work / 'cache'}",
        *extra,
    ]  # fmt: skip


def run_child(cmd: list[str], run_dir: Path, timeout: float) -> tuple[list[dict], str | None, float]:
    """Run one configuration (its DDP/FSDP workers in its process group); its per-rank records or an error."""
    shutil.rmtree(run_dir, ignore_errors=True)  # no stale records from an earlier run with this --work-dir
    run_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")])),
    }
    env.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with open(run_dir / "child.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=timeout)
            error = None if proc.returncode == 0 else f"exit code {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # SIGKILL: a SIGTERM would make the run save a checkpoint
            proc.wait()
            error = (
                f"timed out after {timeout:.0f} s (lower --segments/--warmup-steps or raise --time-budget)"
            )
    wall = time.perf_counter() - start
    records = [json.loads(p.read_text()) for p in sorted((run_dir / "clock").glob("rank*.json"))]
    complete = [r for r in records if {seg["mode"] for seg in r["segments"]} == {"stop", "off"}]
    if error is None and (not complete or len(complete) != complete[0]["world_size"]):
        error = f"{len(complete)} complete rank record(s) written"
    if error:
        text = (run_dir / "child.log").read_text(errors="replace").splitlines()
        reason = [ln for ln in text if ln.startswith("error: ") or re.match(r"^\w+(Error|Exception)\b", ln)]
        error = f"{error}: {reason[-1][:300]}" if reason else error
        print("\n".join(text[-30:]), file=sys.stderr)
    return sorted(records, key=lambda r: r["rank"]), error, wall


def logged_mfu(run_dir: Path, segments: list[dict], every: int) -> dict[str, list[float]]:
    """``perf/mfu`` as the run logged it (Throughput, one value per logging window = per segment), by mode."""
    path = run_dir / "csv" / "metrics.csv"
    ends = {seg["first_step"] + every: seg["mode"] for seg in segments}
    out: dict[str, list[float]] = {"stop": [], "off": []}
    if path.is_file():
        with open(path) as f:
            for row in csv.DictReader(f):
                mode = ends.get(int(row["step"]) + 1) if row.get("perf/mfu") else None
                if mode:
                    out[mode].append(float(row["perf/mfu"]))
    return out


def table_rows(name: str, devices: int, records: list[dict], error: str | None, wall: float,
               run_dir: Path, every: int) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    r0 = records[0] if records and not error else None
    logged = logged_mfu(run_dir, r0["segments"], every) if r0 else {}
    for mode, check in (("stop", "on"), ("off", "off")):
        row: dict[str, Any] = {"config": name, "devices": devices, "nonfinite_check": check,
                               "status": error or "ok", "wall_s": round(wall, 1)}  # fmt: skip
        if r0:
            segs = [s for s in r0["segments"] if s["mode"] == mode]
            tps = statistics.median(s["tokens"] / s["seconds"] for s in segs)
            peak, world = r0["peak_tflops"], r0["world_size"]
            mfu = tps / world * r0["flops_per_token"] / (peak * 1e12) if peak else None
            mem = [max(s["peak_mem_bytes"] for s in r["segments"] if s["mode"] == mode) / 2**30 for r in records]  # fmt: skip
            row.update(
                devices=world, params=r0["params"], tokens_per_sec=round(tps), tokens_per_sec_per_device=round(tps / world),
                tokens_per_sec_range=[round(s["tokens"] / s["seconds"]) for s in segs],
                step_ms=round(statistics.median(1e3 * s["seconds"] / s["steps"] for s in segs), 2),
                mfu=round(mfu, 4) if mfu is not None else None,
                logged_mfu=round(statistics.median(logged[mode]), 4) if logged.get(mode) else None,
                peak_mem_gib=round(max(mem), 3), peak_mem_gib_per_device=[round(m, 3) for m in mem],
                peak_mem_source=r0["peak_mem_source"], compile_s=round(r0.get("first_step_s", 0.0), 1),
                warmup_s=round(r0.get("warmup_s", 0.0), 1), wall_s=round(wall, 1), device_name=r0["device_name"],
                peak_tflops=peak, flops_per_token=r0["flops_per_token"],
            )  # fmt: skip
        rows.append(row)
    return rows


COLUMNS = [("config", "config"), ("devices", "devices"), ("nonfinite_check", "non-finite check"),
           ("tokens_per_sec", "tokens/s"), ("tokens_per_sec_per_device", "tokens/s/device"), ("step_ms", "step ms"),
           ("mfu", "MFU"), ("logged_mfu", "logged MFU"), ("peak_mem_gib", "peak mem GiB/device"),
           ("compile_s", "compile s"), ("warmup_s", "warm-up s"), ("wall_s", "wall s"), ("status", "status")]  # fmt: skip


def markdown(rows: list[dict[str, Any]]) -> str:
    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key in ("mfu", "logged_mfu"):
            return f"{100 * value:.1f}%"
        return f"{value:,}" if isinstance(value, (int, float)) else str(value)

    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(k, row.get(k)) for k, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine facts of bench/common.py plus the GPUs (name, count, driver, CUDA)."""
    from common import machine_facts

    facts = machine_facts()
    facts.update(
        cuda=torch.version.cuda, gpu_count=torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    try:  # nvidia-smi, not torch: the parent creates no CUDA context on the GPUs it measures
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        gpus = subprocess.run(
            query, capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()
        facts.update(gpu=sorted(set(g.split(",")[0].strip() for g in gpus)),
                     driver=gpus[0].split(",")[1].strip(), gpu_memory=gpus[0].split(",")[2].strip())  # fmt: skip
    except (OSError, subprocess.SubprocessError, IndexError):
        facts.update(gpu=None, driver=None)
    return facts


# flag: (GPU default, --smoke default)
DEFAULTS = {"batch": (32, 4), "block": (1024, 64), "warmup_steps": (50, 2), "segment_steps": (25, 2),
            "segments": (4, 2)}  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add(
        "--smoke", action="store_true", help="tiny model on CPUs: 2 layers x 64, context 64, fp32, no compile"
    )
    add("--configs", default="single,ddp,fsdp", help="a comma-separated subset of single,ddp,fsdp")
    add("--batch", type=int, help="sequences per device and step (default 32; smoke 4)")
    add("--block", type=int, help="context length (default 1024; smoke 64)")
    add("--warmup-steps", type=int, help="untimed first steps, a multiple of --segment-steps (50; smoke 2)")
    add("--segment-steps", type=int, help="steps per timed segment = per logging window (25; smoke 2)")
    add("--segments", type=int, help="timed segments per non-finite check setting (4; smoke 2)")
    add("--peak-tflops", type=float, help="device peak for MFU (default: lmlab.scale.flops; smoke 1.0)")
    add("--time-budget", type=float, default=470.0, help="seconds for all configurations together (470)")
    add("--work-dir", type=Path, help="run folders and child logs (default: a new temporary folder)")
    add("--results-dir", type=Path, default=ROOT / "bench" / "results")
    add("--override", action="append", default=[], help="a train.py override for every run (repeatable)")
    args = p.parse_args()
    for key, (full, tiny) in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.smoke else full)
    if (
        min(args.warmup_steps, args.segment_steps, args.segments) < 1
        or args.warmup_steps % args.segment_steps
    ):
        p.error(
            "--warmup-steps must be a positive multiple of --segment-steps (one logging window a segment)"
        )
    return args


def main() -> None:
    args = parse_args()
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU (or run --smoke on CPUs)")
    s = shape(args)
    if not args.smoke:
        assert gpt2_params(s["vocab"], s["positions"], s["layers"], s["width"]) == GPT2_124M_PARAMS
    facts = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()), flush=True)
    print("shape: " + ", ".join(f"{k}={v}" for k, v in s.items()), flush=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    wanted = set(args.configs.split(","))
    deadline = time.monotonic() + args.time_budget
    rows: list[dict[str, Any]] = []
    for name, devices, trainer, note in configurations(args):
        if name not in wanted:
            continue
        left = deadline - time.monotonic()
        if trainer is None or left < 45:
            note = note or f"skipped: time budget spent (--time-budget {args.time_budget:.0f})"
            print(f"[{name}] {note}", flush=True)
            rows += [
                {"config": name, "devices": devices, "nonfinite_check": c, "status": note}
                for c in ("on", "off")
            ]
            continue
        run_dir = work / name
        print(f"[{name}] running (at most {left:.0f} s); log: {run_dir / 'child.log'}", flush=True)
        records, error, wall = run_child(
            child_command(s, trainer, run_dir, work, args.override), run_dir, left
        )
        rows += table_rows(name, devices, records, error, wall, run_dir, args.segment_steps)
        print(markdown(rows[-2:]), flush=True)
    report(rows, facts, s, args, work)
    failed = [r for r in rows if r["status"] != "ok" and not r["status"].startswith("skipped")]
    sys.exit(1 if failed else 0)


def report(rows: list[dict[str, Any]], facts: dict, s: dict, args: argparse.Namespace, work: Path) -> None:
    """Print the table, the parameter count and the MFU goal; write bench/results/gpu_check{,_smoke}.{json,md}."""
    params = next((r["params"] for r in rows if r.get("params")), None)
    expected = gpt2_params(s["vocab"], s["positions"], s["layers"], s["width"])
    print(f"\nparameters: {params or 0:,} (expected {expected:,}, checked in every run)")
    print(markdown(rows))
    single = {
        r["nonfinite_check"]: r["mfu"] for r in rows if r["config"] == "single" and r.get("mfu") is not None
    }
    goal = None if args.smoke else {check: mfu >= MFU_GOAL for check, mfu in single.items()}
    if goal is not None:
        print(
            f"goal MFU >= {MFU_GOAL:.0%} on one device (by non-finite check setting): {goal or 'not measured'}"
        )
    stem = "gpu_check_smoke" if args.smoke else "gpu_check"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    result = {"machine": facts, "shape": s, "overrides": args.override, "params": params, "goal_mfu": MFU_GOAL,
              "goal_met": goal, "work_dir": str(work), "rows": rows}  # fmt: skip
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    nominal = f" (--smoke: CPU plumbing only; MFU against a nominal {s['peak_tflops']} TFLOP/s)"
    title = "GPU check" + (nominal if args.smoke else "")
    lines = [f"# {title}", "", *(f"- {k}: {v}" for k, v in facts.items()),
             f"- shape: {', '.join(f'{k}={v}' for k, v in s.items())}", f"- overrides: {args.override or 'none'}",
             f"- parameters: {params or 0:,}", "", markdown(rows), "",
             "MFU: model FLOPs (6N + 12LdT per token) per device over the peak; logged MFU: the run's own perf/mfu "
             "(Throughput callback) over the same windows. Peak memory: torch.cuda.max_memory_allocated, the "
             "largest device; on CPUs the peak RSS."]  # fmt: skip
    (args.results_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"written: {args.results_dir / stem}.json, .md; run folders: {work}")


if __name__ == "__main__":
    main()
