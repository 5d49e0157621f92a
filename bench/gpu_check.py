"""GPU check (issue: scale out): GPT-2-124M-shaped training with bf16 and torch.compile, tokens/s and MFU,
then the same through the DDP code path on one device.

    python bench/gpu_check.py [--steps 300] [--data-dir ../shared/data] [--batch 16] [--block 1024]

Runs `train.py` twice as a user would (the real path: Lightning, callbacks, logging) on WikiText-2 from
--data-dir (train on valid.txt), and prints the median tokens/s and MFU of the logged windows after the
first 25% of steps (compile and warm-up excluded), the device, the peak it was measured against, and the
peak memory. Needs a CUDA GPU; MFU uses lmlab.scale.flops.PEAK_TFLOPS (H200/H100: 989 dense bf16 TFLOP/s).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(label: str, extra: list[str], args, work: Path) -> dict:
    run_dir = work / label
    cmd = [
        sys.executable, str(ROOT / "train.py"), "model=gpt2_124m", "task.compile=true",
        f"data.block_size={args.block}", f"data.batch_size={args.batch}", f"trainer.max_steps={args.steps}",
        f"trainer.val_check_interval={args.steps}", "trainer.limit_val_batches=4", "trainer.log_every_n_steps=10",
        "tokenizer.vocab_size=50257", f"paths.data_dir={args.data_dir}", "data.splits.train=valid",
        "data.splits.validation=test", "run_test=false", "export.enabled=false", "logger=csv",
        "callbacks.periodic_checkpoint.every_n_train_steps=100000", f"paths.cache_dir={work / 'cache'}",
        f"hydra.run.dir={run_dir}", *(extra or ["trainer=gpu"]),
    ]  # fmt: skip
    print("+", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("perf/tokens_per_sec")]
    steady = [r for r in rows if int(r["step"]) >= args.steps // 4]
    tps = statistics.median(float(r["perf/tokens_per_sec"]) for r in steady)
    mfu = [float(r["perf/mfu"]) for r in steady if r.get("perf/mfu")]
    return {
        "run": label,
        "tokens_per_sec": round(tps),
        "mfu": round(statistics.median(mfu), 4) if mfu else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = p.parse_args()
    import torch

    from lmlab.scale.flops import device_peak_tflops

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU")
    print(
        f"device: {torch.cuda.get_device_name()}, peak {device_peak_tflops()} TFLOP/s, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            run("single", [], args, Path(tmp)),
            run("ddp_1gpu", ["trainer=ddp", "trainer.devices=1"], args, Path(tmp)),
        ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
