"""Validation loss at equal tokens: lmlab's recipe (`python train.py`) against the nanoGPT reference.

    OMP_NUM_THREADS=1 python bench/val_loss_nanogpt.py --shape tiny --steps 1500 --seeds 0,1,2 [--json out.json]

Both systems train the same shape (bench/train_overhead.py's SHAPES) on char-level tiny Shakespeare for the
same number of steps of the same batch (so the same number of tokens), with the same peak learning rate,
AdamW betas, weight decay, clipping and warmup, each with its own data order, initialization and schedule
code:
  ours     `python train.py experiment=clm_text_files model.implementation=native ...`: shuffled
           non-overlapping packed blocks, Hugging Face GPT-2 initialization, warmup + cosine to 0.1 x peak;
           the weights at the last step are exported (export.weights=last) and evaluated
  nanogpt  bench/nanogpt_ref.py (its default bias=False): random windows, its initialization and schedule
Then ONE evaluator scores both final models on the same windows of the validation split (every token of it
but the first, in non-overlapping windows of ``context`` inputs, each predicting the next token): mean
cross-entropy in nats per character. Each seed pairs one run of each system (run order alternates).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from common import SHARED_DATA, fmt, load_now, machine_facts, print_facts, run_child, summary, tokens_per_sec
from train_overhead import SHAPES, baseline_cmd, ours_cmd, prepare

from lmlab.data.token_cache import load_tokens


@torch.no_grad()
def val_loss(logits_of, tokens, context: int, batch: int = 64) -> float:
    """Mean next-token cross-entropy over non-overlapping windows of ``context`` inputs (the tail is dropped)."""
    ids = torch.from_numpy(tokens.astype("int64"))
    n = (len(ids) - 1) // context
    x = ids[: n * context].view(n, context)
    y = ids[1 : n * context + 1].view(n, context)
    total = 0.0
    for i in range(0, n, batch):
        logits = logits_of(x[i : i + batch])
        total += F.cross_entropy(
            logits.flatten(0, 1).float(), y[i : i + batch].flatten(), reduction="sum"
        ).item()
    return total / y.numel()


def ours_loss(export_dir: Path, tokens, context: int) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(export_dir).eval()
    return val_loss(lambda x: model(input_ids=x).logits, tokens, context)


def nanogpt_loss(state_file: Path, shape: dict, vocab: int, tokens) -> float:
    from nanogpt_ref import NanoGPTRef

    model = NanoGPTRef(vocab, shape["block"], shape["layers"], shape["heads"], shape["width"], bias=False)
    model.load_state_dict(torch.load(state_file, weights_only=True))
    model.eval()
    return val_loss(lambda x: model(x, x)[0], tokens, shape["block"])


def replace(cmd: list[str], **overrides: str) -> list[str]:
    """``cmd`` with the Hydra overrides ``key=value`` replaced or added (Hydra refuses duplicates)."""
    keys = {k.replace("__", "."): v for k, v in overrides.items()}
    kept = [a for a in cmd if a.split("=", 1)[0] not in keys]
    return kept + [f"{k}={v}" for k, v in keys.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--text", type=Path, default=SHARED_DATA / "tinyshakespeare" / "input.txt")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    shape = dict(SHAPES[args.shape], steps=args.steps)
    seeds = [int(s) for s in args.seeds.split(",")]
    facts = machine_facts()
    print_facts(facts)
    print(f"shape {args.shape}: {shape}; seeds {seeds}", flush=True)
    env = {"PYTHONPATH": str(Path(__file__).parent), "TOKENIZERS_PARALLELISM": "false"}
    losses: dict[str, list[float]] = {"ours": [], "nanogpt": []}
    speed: dict[str, list[float]] = {"ours": [], "nanogpt": []}
    loads = []
    with tempfile.TemporaryDirectory(prefix="lmlab-bench-") as tmp:
        work = Path(tmp)
        folders, vocab, data_overrides = prepare(work, args.text)
        val_tokens = load_tokens(folders["validation"])
        for i, seed in enumerate(seeds):
            for system in ("ours", "nanogpt") if i % 2 == 0 else ("nanogpt", "ours"):
                out = work / f"{system}-{seed}.json"
                if system == "ours":
                    run_dir = work / "runs" / str(seed)
                    cmd = ours_cmd("ours-native", shape, data_overrides, run_dir, out)
                    cmd = replace(
                        cmd, seed=str(seed), export__enabled="true", export__weights="last",
                        trainer__limit_val_batches="1",
                    )  # fmt: skip
                    clocks = run_child(cmd, out, env)
                    loss = ours_loss(run_dir / "export", val_tokens, shape["block"])
                else:
                    state = work / f"nanogpt-{seed}.pt"
                    cmd = baseline_cmd("nanogpt", shape, folders["train"], vocab, out)
                    clocks = run_child([*cmd, "--seed", str(seed), "--save", str(state)], out, env)
                    loss = nanogpt_loss(state, shape, vocab, val_tokens)
                losses[system].append(loss)
                speed[system].append(
                    tokens_per_sec(clocks["step_ends"], shape["warmup"], shape["block"] * shape["batch"])
                )
                loads.append(load_now())
                print(
                    f"seed {seed} {system:8s} val loss {loss:.4f}, {speed[system][-1]:,.0f} tokens/s (load {loads[-1]})",
                    flush=True,
                )
    diffs = [a - b for a, b in zip(losses["ours"], losses["nanogpt"], strict=True)]
    result = {
        "machine": facts, "shape": args.shape, "config": shape, "seeds": seeds, "loads": loads,
        "tokens": shape["steps"] * shape["block"] * shape["batch"],
        "val_loss": {s: {"values": v, **summary(v)} for s, v in losses.items()},
        "tokens_per_sec": {s: {"values": v, **summary(v)} for s, v in speed.items()},
        "ours_minus_nanogpt": {"values": diffs, **summary(diffs)},
    }  # fmt: skip
    print(
        f"\n{result['tokens']:,} tokens per run; val loss (nats/char), median (range over {len(seeds)} seeds):"
    )
    for s in losses:
        sd = statistics.stdev(losses[s]) if len(seeds) > 1 else 0.0
        print(
            f"| {s} | {fmt(result['val_loss'][s], 4)} | sd {sd:.4f} | {fmt(result['tokens_per_sec'][s])} tokens/s |"
        )
    print(f"| ours - nanogpt | {fmt(result['ours_minus_nanogpt'], 4)} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
