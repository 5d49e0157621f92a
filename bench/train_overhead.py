"""Training throughput: lmlab's `python train.py` against a hand-written loop and a nanoGPT-equivalent.

    OMP_NUM_THREADS=1 python bench/train_overhead.py --shape tiny [--repeats 3] [--json out.json]
    OMP_NUM_THREADS=1 python bench/train_overhead.py --shape small
    OMP_NUM_THREADS=1 python bench/train_overhead.py --shape micro   # each loop's fixed cost per step
    python bench/train_overhead.py --shape micro --steps 3000 --print-command ours-native   # a profiling command

Data: char-level tiny Shakespeare (../shared/data/tinyshakespeare/input.txt; first 90% train, last 10%
validation, as nanoGPT's prepare.py), tokenized once by lmlab into its token cache, which every system reads.
Shapes: tiny = 4 layers x 128 wide (4 heads), context 64, batch 12; small = 6 x 384 (6 heads), context 256,
batch 8; micro = 1 x 16, context 8, batch 1 (almost no math: a step's time is the loop's own). No dropout,
fp32, AdamW lr 1e-3 (0.9, 0.95), weight decay 0.1 on >= 2-D weights, clipping at 1.0.

Systems, each a fresh process, run in rotating order within every repeat:
  ours-hf / ours-native  `python train.py experiment=clm_text_files ...` with model.implementation=hf|native:
                         the real path, with the CSV logger, progress bar, learning-rate monitor,
                         throughput and learning-curve callbacks, best and periodic checkpoints (every 100
                         steps) on
  hand-hf / hand-native  bench/hand_loop.py: the same model, data, optimizer (AdamW, fused CPU kernel, as
                         lmlab picks it) and precision, nothing else
  nanogpt                bench/nanogpt_ref.py: a re-implementation of nanoGPT's model and loop (no compile,
                         nanoGPT's default bias=False, PyTorch's default AdamW kernel), for comparison only
  ours-before            (extra) ours-hf with optimizer.fused=false: lmlab as it was before issue 7
  hand-hf-default        (extra) hand-hf with PyTorch's default AdamW: the loop most users write
  hf-trainer             (extra) bench/hf_trainer_clm.py: the Hugging Face Trainer, run_clm-style
  nanogpt-bias           (extra) nanogpt with GPT-2's biases (nanoGPT's bias=True): the same model as ours
  ours-nobias            (extra) ours-native with model.config.bias=false: nanoGPT's bias-free architecture
  hand-nobias            (extra) hand-native, bias-free
Tokens/s is measured from the end of the warm-up steps to the end of the last step (process start-up,
validation and export are outside the window), by the wall clock and by the process's CPU time (on a
shared, loaded machine the CPU time is the steadier measure of the work each system does). Ratios are
taken within each repeat; the tables show the median and the range over the repeats.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import (
    ROOT,
    SHARED_DATA,
    fmt,
    load_now,
    machine_facts,
    print_facts,
    run_child,
    summary,
    tokens_per_sec,
)

SHAPES = {  # layers, width, heads, context, batch, steps, warm-up steps
    "tiny": dict(layers=4, width=128, heads=4, block=64, batch=12, steps=200, warmup=30),
    "small": dict(layers=6, width=384, heads=6, block=256, batch=8, steps=36, warmup=6),
    # next to no compute (a step is ~1 ms of math): the time per step is each loop's fixed cost
    "micro": dict(layers=1, width=16, heads=1, block=8, batch=1, steps=1000, warmup=100),
}
SYSTEMS = ("ours-hf", "hand-hf", "ours-native", "hand-native", "nanogpt")
# lmlab before issue 7; the loop most users write (default AdamW); the HF Trainer (run_clm-style); nanoGPT + biases
EXTRA = ("ours-before", "hand-hf-default", "hf-trainer", "nanogpt-bias", "ours-nobias", "hand-nobias")


def prepare(work: Path, text_file: Path) -> tuple[dict[str, Path], int, list[str]]:
    """Train/val files, a char-level tokenizer and lmlab's token cache.

    Returns the token cache folder of each split, the vocabulary size and the ``train.py`` overrides."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from lmlab.data import LMDataModule, TextFilesSource
    from lmlab.data.tokenizer import PretrainedTokenizer

    text = text_file.read_text()
    cut = int(0.9 * len(text))
    (work / "train.txt").write_text(text[:cut])
    (work / "val.txt").write_text(text[cut:])
    vocab = {c: i for i, c in enumerate(sorted(set(text)))}
    vocab["<|endoftext|>"] = len(vocab)
    chars = Tokenizer(models.BPE(vocab=vocab, merges=[]))  # no merges: one token per character
    PreTrainedTokenizerFast(tokenizer_object=chars, eos_token="<|endoftext|>").save_pretrained(work / "chars")
    files = {"train": str(work / "train.txt"), "validation": str(work / "val.txt")}
    source = TextFilesSource(files, doc_boundary="file")
    splits = {"train": "train", "validation": "validation"}
    dm = LMDataModule(source, PretrainedTokenizer(str(work / "chars")), str(work / "cache"), splits=splits)
    dm.prepare_data()
    overrides = [
        "experiment=clm_text_files",
        f"data.source.files.train={files['train']}",
        f"data.source.files.validation={files['validation']}",
        "data.source.doc_boundary=file",
        "tokenizer=pretrained",
        f"tokenizer.name_or_path={work / 'chars'}",
        f"paths.cache_dir={work / 'cache'}",
    ]
    return dict(dm.cache_folders), len(vocab), overrides


def ours_cmd(system: str, shape: dict, data_overrides: list[str], run_dir: Path, out: Path) -> list[str]:
    L, W, H, T, B = (shape[k] for k in ("layers", "width", "heads", "block", "batch"))
    impl = "native" if system in ("ours-native", "ours-nobias") else "hf"
    before = ["optimizer.fused=false"] if system == "ours-before" else []  # lmlab before issue 7
    nobias = ["model.config.bias=false"] if system == "ours-nobias" else []  # nanoGPT's architecture
    return [
        sys.executable, "train.py", *data_overrides, "model=gpt_small", "optimizer=adamw", "scheduler=cosine",
        *before, *nobias,
        f"model.implementation={impl}", f"model.config.n_layer={L}", f"model.config.n_embd={W}",
        f"model.config.n_head={H}", f"model.config.n_positions={T}", "model.config.resid_pdrop=0.0",
        "model.config.embd_pdrop=0.0", "model.config.attn_pdrop=0.0", "model.pad_vocab_multiple=1",
        f"data.block_size={T}", f"data.batch_size={B}", "trainer.accelerator=cpu",
        f"trainer.max_steps={shape['steps']}", f"trainer.val_check_interval={shape['steps']}",
        "trainer.limit_val_batches=4", "run_test=false", "export.enabled=false", "logger=csv",
        f"hydra.run.dir={run_dir}",
        "+callbacks.step_clock._target_=step_clock.StepClock", f"+callbacks.step_clock.out={out}",
    ]  # fmt: skip


def baseline_cmd(system: str, shape: dict, tokens: Path, vocab: int, out: Path) -> list[str]:
    if system == "hf-trainer":
        cmd = [sys.executable, "bench/hf_trainer_clm.py"]
    elif system == "nanogpt-bias":  # nanoGPT's loop on GPT-2's architecture (biases): the same model as ours
        cmd = [sys.executable, "bench/hand_loop.py", "--system", "nanogpt", "--bias"]
    elif system == "hand-nobias":  # the hand loop on nanoGPT's architecture (no biases), lmlab's lean GPT-2
        cmd = [sys.executable, "bench/hand_loop.py", "--system", "hand", "--impl", "native", "--no-bias", "--fused"]  # fmt: skip
    else:
        kind, impl = system.split("-")[:2] if "-" in system else (system, "hf")
        cmd = [sys.executable, "bench/hand_loop.py", "--system", kind, "--impl", impl]
        if kind == "hand" and not system.endswith("-default"):
            cmd.append("--fused")  # the AdamW kernel lmlab picks on CPUs (lmlab.optim.fused_on_cpu)
    cmd += ["--tokens", str(tokens), "--vocab", str(vocab)]
    for name in ("layers", "width", "heads", "block", "batch", "steps"):
        cmd += [f"--{name}", str(shape[name])]
    return [*cmd, "--out", str(out)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, help="override the shape's step count")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {SYSTEMS + EXTRA}")
    p.add_argument("--text", type=Path, default=SHARED_DATA / "tinyshakespeare" / "input.txt")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--print-command", metavar="SYSTEM", help="prepare the data in --work-dir, print a py-spy command "
        "that profiles the train.py run of an ours-* system, and exit",
    )  # fmt: skip
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "lmlab-bench")
    args = p.parse_args()
    shape = dict(SHAPES[args.shape], **({"steps": args.steps} if args.steps else {}))
    if args.print_command:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        work = args.work_dir.resolve()
        _, _, data_overrides = prepare(work, args.text)
        cmd = ours_cmd(args.print_command, shape, data_overrides, work / "run", work / "steps.json")
        profile = f"py-spy record -r 500 --format raw -o {work / 'profile.txt'} --"
        print(f"cd {ROOT} && PYTHONPATH=bench OMP_NUM_THREADS=1 {profile} " + " ".join(cmd))
        return
    systems = args.systems.split(",")
    facts = machine_facts()
    print_facts(facts)
    print(f"shape {args.shape}: {shape}; systems {systems}; {args.repeats} repeats", flush=True)
    env = {"PYTHONPATH": str(ROOT / "bench"), "TOKENIZERS_PARALLELISM": "false"}
    wall: dict[str, list[float]] = {s: [] for s in systems}  # tokens per wall-clock second
    cpu: dict[str, list[float]] = {s: [] for s in systems}  # tokens per CPU second of the process
    loads = []
    with tempfile.TemporaryDirectory(prefix="lmlab-bench-") as tmp:
        work = Path(tmp)
        folders, vocab, data_overrides = prepare(work, args.text)
        tokens = folders["train"]
        tokens_per_step = shape["block"] * shape["batch"]
        for r in range(args.repeats):
            order = systems[r % len(systems) :] + systems[: r % len(systems)]  # rotate: no fixed position
            for system in order:
                out = work / f"{system}-{r}.json"
                if system.startswith("ours-"):
                    cmd = ours_cmd(system, shape, data_overrides, work / "runs" / f"{system}-{r}", out)
                else:
                    cmd = baseline_cmd(system, shape, tokens, vocab, out)
                clocks = run_child(cmd, out, env)
                wall[system].append(tokens_per_sec(clocks["step_ends"], shape["warmup"], tokens_per_step))
                cpu[system].append(tokens_per_sec(clocks["cpu_ends"], shape["warmup"], tokens_per_step))
                loads.append(load_now())
                print(
                    f"repeat {r} {system:12s} {wall[system][-1]:9,.0f} tokens/s, {cpu[system][-1]:9,.0f} "
                    f"tokens/CPU-s (load {loads[-1]})",
                    flush=True,
                )
    pairs = [("ours-hf", "hand-hf"), ("ours-native", "hand-native"), ("ours-native", "hand-hf"),
             ("ours-native", "nanogpt"), ("ours-hf", "nanogpt"), ("hand-hf", "nanogpt"),
             ("ours-native", "ours-before"), ("ours-before", "nanogpt"), ("hand-hf-default", "nanogpt"),
             ("ours-before", "hand-hf-default"), ("ours-hf", "hf-trainer"), ("ours-native", "hf-trainer"),
             ("ours-before", "hf-trainer"),
             ("ours-native", "nanogpt-bias"), ("hand-native", "nanogpt-bias"), ("nanogpt", "nanogpt-bias"),
             ("ours-nobias", "nanogpt"), ("ours-nobias", "hand-nobias"), ("hand-nobias", "nanogpt"),
             ("ours-nobias", "ours-native")]  # fmt: skip
    result = {"machine": facts, "shape": args.shape, "config": shape, "loads": loads}
    for clock, tps in (("wall", wall), ("cpu", cpu)):
        result[clock] = {
            "tokens_per_sec": tps,
            "summary": {s: summary(v) for s, v in tps.items()},
            "ratios": {
                f"{a} / {b}": summary([x / y for x, y in zip(tps[a], tps[b], strict=True)])
                for a, b in pairs
                if a in tps and b in tps
            },
        }
    n = args.repeats
    print(
        f"\n| system | tokens/s (wall clock), median (range over {n}) | tokens per CPU-second | ms per step |"
        "\n|---|---:|---:|---:|"
    )
    for s in systems:
        ms = 1000 * tokens_per_step / result["wall"]["summary"][s]["median"]
        print(
            f"| {s} | {fmt(result['wall']['summary'][s])} | {fmt(result['cpu']['summary'][s])} | {ms:.2f} |"
        )
    print("\n| ratio | wall clock, median (range) | CPU time, median (range) |\n|---|---:|---:|")
    for k in result["wall"]["ratios"]:
        print(f"| {k} | {fmt(result['wall']['ratios'][k], 3)} | {fmt(result['cpu']['ratios'][k], 3)} |")
    print(f"\nload average (1 min) during the runs: {min(loads)}-{max(loads)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
