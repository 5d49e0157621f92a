"""The two-stage workflow in one command: pretrain a language model, fine-tune its export on a GLUE task.

    python scripts/seed_workflow.py --task rte
    python scripts/seed_workflow.py --task sst2 --pretrain experiment=clm_wikitext2 --finetune data.max_train_samples=2000

Each stage is a normal `python train.py` run (its own run folder, logs and checkpoints) under
logs/seed_workflow/<date_time>/; the fine-tuning stage starts from `<pretrain run>/export` through
`model.pretrained`. At the end, both stages' metrics are printed and written to summary.json there.
Extra `--pretrain`/`--finetune` arguments are Hydra overrides for that stage (repeatable; `--both` for both).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_stage(overrides: list[str], run_dir: Path) -> dict:
    cmd = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
    print("+", " ".join(cmd[1:]), flush=True)
    result = subprocess.run(cmd)
    if result.returncode != 0:
        sys.exit(f"stage failed (exit code {result.returncode}): see {run_dir}/train.log")
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="rte", help="GLUE task to fine-tune on (default: rte)")
    parser.add_argument("--pretrain", nargs="*", default=[], help="overrides of the pretraining stage")
    parser.add_argument("--finetune", nargs="*", default=[], help="overrides of the fine-tuning stage")
    parser.add_argument(
        "--both", nargs="*", default=[], help="overrides of both stages (e.g. paths.data_dir=...)"
    )
    parser.add_argument(
        "--out", default=None, help="workflow folder (default logs/seed_workflow/<date_time>)"
    )
    args = parser.parse_args()

    out = Path(args.out or ROOT / "logs" / "seed_workflow" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    pretrain_overrides = ["experiment=mlm_wikitext2", *args.both, *args.pretrain]
    pretrain = run_stage(pretrain_overrides, out / "pretrain")
    finetune_overrides = [f"experiment=glue/{args.task}", f"model.pretrained={out / 'pretrain' / 'export'}"]
    finetune = run_stage([*finetune_overrides, *args.both, *args.finetune], out / f"finetune_{args.task}")

    summary = {
        "pretrain": pretrain["metrics"],
        f"finetune_{args.task}": finetune["metrics"],
        "folder": str(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"\nSeed workflow in {out}")
    for stage in ("pretrain", f"finetune_{args.task}"):
        shown = {
            k: round(v, 4)
            for k, v in sorted(summary[stage].items())
            if k.startswith(("val/", "test/", "best/"))
        }
        print(f"  {stage}: {shown}")


if __name__ == "__main__":
    main()
