"""Time to a target validation loss: nanoGPT's recipe against lmlab's GPT-2 and Llama-style recipes.

    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus shakespeare|wikitext2 --shape tiny|small
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --quick --corpus wikitext2   # plumbing check, 1.5-2.5 min
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus wikitext2 --shape small --report  # runs kept so far

The target is nanoGPT's final validation loss after its budget (--budget steps), the mean over the seeds (one
number for all seeds: the systems share no initialization or data order, so pairing seeds would add noise).
For every system and seed, the time to target is where its validation curve first reaches the target,
interpolated linearly in loss between the two evaluations around the crossing; tokens likewise. A system's
speed-up is nanoGPT's training time for its whole budget (mean over seeds) over the system's mean time to
target, by the wall clock and by CPU time; the goal is >= 2. Seeds in which a system never reaches the
target are counted ("reached k/n") and left out of its mean. If nanoGPT's curve went lower before it ended
(overfitting), the script says so: its budget then overstates the time it needs.

Data: `shakespeare`: char-level tiny Shakespeare, nanoGPT's 90/10 split (bench/train_overhead.py's
``prepare``); `wikitext2`: lmlab's byte-level BPE (8,192 tokens, conf/tokenizer/bpe.yaml) trained on
WikiText-2 valid (256,295 tokens), evaluated on WikiText-2 test (the shared copy has no train split:
`data.splits.train=valid data.splits.validation=test`, as in the README). Every system reads the same lmlab
token caches. Shapes (train_overhead's SHAPES): tiny = 4 layers x 128, 4 heads, context 64, batch 12
(nanoGPT's README command for CPUs; budget 2,000 steps, its max_iters there); small = 6 x 384, 6 heads,
context 256, batch 8 (budget 1,000 steps). No dropout. Every system trains on batch x context tokens a step.

Systems (each run a fresh process; the order rotates with the seed, so no system always runs first):
  nanogpt      bench/nanogpt_ref.py's model (bias-free) and loop with nanoGPT's shakespeare_char recipe:
               AdamW lr 1e-3, betas (0.9, 0.99), decay 0.1, clipping 1.0, 100 warm-up steps (a tenth of the
               budget below 1,000 steps), cosine to lr / 10 at the budget; PyTorch's default AdamW kernel
  gpt2-adamw   `python train.py model=gpt_tiny optimizer=adamw scheduler=cosine` at the shape, the default
               recipe before 2026-12-01: Hugging Face GPT-2 with biases, AdamW lr 1e-3, betas (0.9, 0.95),
               decay 0.1, clipping 1.0, 5% warm-up, cosine to lr / 10
  llama-adamw  `model=llama_tiny` at the shape (SwiGLU, RoPE, RMSNorm; half as many key/value heads as
               query heads and an MLP 3 x width wide: 12 x width^2 weights a layer, as GPT-2), same AdamW
  llama-muon   the same model with `optimizer=muon scheduler=wsd` as shipped: Muon lr 0.02 on the hidden
               matrices, AdamW lr 3e-3 on the rest; 5% warm-up, 1-sqrt decay over the last 20% down to 0
Learning rates are each system's shipped defaults, not tuned for this benchmark. --lr SYSTEM=VALUE sets one
(`optimizer.lr`; Muon's `optimizer.muon.lr`; nanoGPT's peak), --steps SYSTEM=N gives an lmlab system another
budget (the length of its schedule), --set SYSTEM:KEY=VALUE adds any Hydra override to an lmlab system.

Measurement (bench/loss_clock.py): each system evaluates at step 0, every --eval-every steps (budget / 20 by
default; the same tokens for all) and at its last step, with one evaluator (``val_loss_nanogpt.val_loss``:
mean next-token cross-entropy in nats per token over non-overlapping windows of `context` tokens of the
first --eval-tokens validation tokens, 65,536 by default, 0 for all), on a training clock that stops during
every evaluation and during Lightning's own validation. Process start-up, data loading and model building
are off the clock for all; lmlab's logging, progress bar and periodic checkpoints are on it (the real path).
Tokens: lmlab counts the input ids of its batches; nanoGPT steps x batch x context.

Full runs, 3 seeds each, with the time each took on this 2-core machine (one torch thread, load 1.0; half
as long again at load 3; --quick prints an estimate from its step rates, evaluation speed and start-up times):
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus shakespeare --shape tiny    # about 50 min
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus wikitext2 --shape tiny      # about 1.5 h
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus shakespeare --shape small   # about 7 h 15 min
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus wikitext2 --shape small     # 7-10.5 h (*)
(*) 46-49 min a run (9.5-11.5 min of it evaluating) on the VM of its first sittings, 33-37 min on a later
VM of the same CPU name that is 1.3-1.5x faster; with --jobs 2 its last six runs took 1 h 57 min.
At 2,000 steps the tiny shape sees WikiText-2 valid six times over: watch for the overfitting note. Each run
writes bench/results/time_to_loss_<corpus>_<shape>.json (--json elsewhere; --quick only with --json).
Several sittings: --stop-after MINUTES starts no run after that long and keeps the finished runs in
<json>.partial.json; the same command again (same settings) runs only the missing (system, seed) pairs.
Every run records the machine it ran on (``cpu_id``: family, model, stepping, cache, vector extensions) and
the date; --report prints the table of the runs kept so far without running anything.

Clocks across sittings (bench/ttl_report.py): a cloud VM of the same CPU name can be 1.5x faster than the
one before, so runs made in different sittings, or several at once (--jobs 2: one torch thread each, twice
the runs an hour; the curves are the same, the clocks are not the runs' speed), do not compare by their own
clocks. Tokens to target do not depend on the machine. So the rates are measured apart, every system next
to the others in one quiet sitting, and the report divides each run's tokens to target by its system's rate:
    OMP_NUM_THREADS=1 python bench/time_to_loss.py --corpus wikitext2 --shape small --throughput 60 --repeats 3
(each system 60 steps a run, 3 runs in rotating order, tokens/s over the second half of each run; about
25 min at the small shape) writes <json>_throughput.json; the report prints a second table at those rates
whenever that file exists, and says when the runs' own clocks come from several machines or shared CPUs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, SHARED_DATA, load_now, machine_facts, print_facts, run_child
from train_overhead import SHAPES, prepare
from ttl_report import rate, rates, report

from lmlab.data.token_cache import load_tokens

SYSTEMS = ("nanogpt", "gpt2-adamw", "llama-adamw", "llama-muon")
BUDGETS = {"tiny": 2000, "small": 1000}  # nanoGPT's steps
LR_KEYS = {"gpt2-adamw": "optimizer.lr", "llama-adamw": "optimizer.lr", "llama-muon": "optimizer.muon.lr"}
EVAL_TOKENS = 65_536  # validation tokens evaluated by default: 59% of Shakespeare's, 21% of WikiText-2 test
QUICK = dict(budget=40, eval_every=10, eval_tokens=4096)
THROUGHPUT_EVAL_TOKENS = 4096  # a throughput run evaluates only to put its clock's points on record


def prepare_wikitext2(work: Path) -> tuple[dict[str, Path], int, list[str]]:
    """lmlab's BPE trained on WikiText-2 valid; token caches of valid (train) and test (validation)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    overrides = [
        f"paths.data_dir={SHARED_DATA}", f"paths.cache_dir={work / 'cache'}", "data.splits.train=valid",
        "data.splits.validation=test", "data.splits.test=null",
    ]  # fmt: skip
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = instantiate(cfg.data, _partial_=True)(tokenizer=instantiate(cfg.tokenizer))  # as the train stage
    dm.prepare_data()
    return dict(dm.cache_folders), len(dm.prepare_tokenizer()), overrides


def lmlab_cmd(system: str, shape: dict, steps: int, data: list[str], run_dir: Path, seed: int,
              clock: dict, extra: list[str]) -> list[str]:  # fmt: skip
    L, W, H, T, B = (shape[k] for k in ("layers", "width", "heads", "block", "batch"))
    if system == "gpt2-adamw":
        model = ["model=gpt_tiny", f"model.config.n_layer={L}", f"model.config.n_embd={W}",
                 f"model.config.n_head={H}", f"model.config.n_positions={T}"]  # fmt: skip
    else:  # half the key/value heads and a 3 x width gated MLP: 12 W^2 a layer, as GPT-2's
        kv = H // 2 if H % 2 == 0 else H
        model = ["model=llama_tiny", f"model.config.num_hidden_layers={L}", f"model.config.hidden_size={W}",
                 f"model.config.num_attention_heads={H}", f"model.config.num_key_value_heads={kv}",
                 f"model.config.intermediate_size={3 * W}"]  # fmt: skip
    # every system names its recipe: clm_text_files and clm_wikitext2 default to Muon + WSD
    recipe = (
        ["optimizer=muon", "scheduler=wsd"]
        if system == "llama-muon"
        else ["optimizer=adamw", "scheduler=cosine"]
    )
    args = [
        *data, *model, "model.pad_vocab_multiple=1", *recipe, f"data.block_size={T}", f"data.batch_size={B}",
        "trainer.accelerator=cpu", f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps}",
        "trainer.limit_val_batches=4", "trainer.num_sanity_val_steps=0", "run_test=false",
        "export.enabled=false", "logger=csv", f"seed={seed}", f"hydra.run.dir={run_dir}",
        "+callbacks.loss_clock._target_=loss_clock.LossClock",
        *(f"+callbacks.loss_clock.{k}={v}" for k, v in clock.items() if v is not None), *extra,
    ]  # fmt: skip
    unique = {a.split("=", 1)[0]: a for a in args}  # a later override of a key wins (Hydra refuses twins)
    return [sys.executable, "train.py", *unique.values()]


def nanogpt_cmd(shape: dict, budget: int, folders: dict, vocab: int, seed: int, clock: dict,
                lr: str | None) -> list[str]:  # fmt: skip
    cmd = [sys.executable, "bench/loss_clock.py", "--train-tokens", str(folders["train"]),
           "--val-tokens", clock["val_tokens"], "--vocab", str(vocab), "--steps", str(budget),
           "--every", str(clock["every"]), "--seed", str(seed), "--out", clock["out"],
           "--warmup", str(100 if budget >= 1000 else budget // 10)]  # fmt: skip
    for name in ("layers", "width", "heads", "block", "batch"):
        cmd += [f"--{name}", str(shape[name])]
    if clock.get("eval_tokens"):
        cmd += ["--eval-tokens", str(clock["eval_tokens"])]
    return cmd + (["--lr", lr] if lr else [])


def estimate(runs: dict, full_eval: int, evaluated: int, budget: int, seeds: int) -> float:
    """Seconds a full run would take, from this run's step rates, evaluation speed and start-up times."""
    total = 0.0
    for per_seed in runs.values():
        for r in per_seed.values():
            last = r["points"][-1]
            startup = r["child_wall"] - last["wall"] - r["eval_wall"]
            evals = budget // max(budget // 20, 1) + 1
            eval_s = r["eval_wall"] / len(r["points"]) * full_eval / evaluated
            total += (startup + last["wall"] / last["step"] * budget + evals * eval_s) / len(per_seed)
    return total * seeds


def _settings(config: dict) -> dict:
    """What decides a run's result: the configuration without the command line."""
    return {k: v for k, v in config.items() if k != "command"}


def keyed(pairs: list[str], sep: str = "=") -> dict[str, list[str]]:
    """``["sys=value", ...]`` (``sys:key=value`` for --set) as {system: [values]}, systems checked."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        system, _, value = pair.partition(sep)
        if system not in SYSTEMS or not value:
            raise SystemExit(f"{pair!r}: expected SYSTEM{sep}VALUE with SYSTEM one of {', '.join(SYSTEMS)}")
        out.setdefault(system, []).append(value)
    return out


def rotated(systems: list[str], i: int) -> list[str]:
    """The systems starting at the i-th: no system always runs first."""
    return systems[i % len(systems) :] + systems[: i % len(systems)]


def load_throughput(path: Path | None, config: dict, systems: list[str]) -> dict | None:
    """The side-by-side rates for this corpus and shape, if measured (``--throughput``)."""
    if path is None or not path.exists():
        return None
    measured = json.loads(path.read_text())
    got = (measured["config"]["corpus"], measured["config"]["shape"])
    if got != (config["corpus"], config["shape"]) or not set(systems) <= set(measured["runs"]):
        raise SystemExit(
            f"{path} holds the rates of {got} for {sorted(measured['runs'])}, not of "
            f"{(config['corpus'], config['shape'])} for {systems}: run --throughput again or delete it"
        )
    return measured


def print_kept(json_out: Path, partial: Path | None, throughput: Path | None) -> None:
    """--report: the report of the runs kept in the result (or partial) JSON, with the rates if measured."""
    source = json_out if json_out.exists() else partial
    if source is None or not source.exists():
        raise SystemExit(f"--report: neither {json_out} nor {partial} exists: run the benchmark first")
    kept = json.loads(source.read_text())
    runs = {s: {int(seed): r for seed, r in per.items()} for s, per in kept["runs"].items() if per}
    if "nanogpt" not in runs:
        raise SystemExit(f"--report: {source} has no nanoGPT run yet: the target is its final loss")
    systems = [s for s in kept["config"]["systems"] if s in runs]
    print(f"runs kept in {source}: " + ", ".join(f"{s} {sorted(runs[s])}" for s in systems))
    report(
        systems,
        runs,
        kept.get("machine", {}),
        kept["config"],
        load_throughput(throughput, kept["config"], systems),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["shakespeare", "wikitext2"], default="shakespeare")
    p.add_argument("--shape", choices=sorted(BUDGETS), default="tiny")
    p.add_argument("--seeds", help="comma-separated (default 0,1,2; --quick: 0,1)")
    p.add_argument("--budget", type=int, help="nanoGPT's steps (default: tiny 2000, small 1000)")
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {SYSTEMS}; needs nanogpt"
    )
    p.add_argument("--eval-every", type=int, help="steps between evaluations (default: budget / 20)")
    p.add_argument(
        "--eval-tokens",
        type=int,
        help=f"evaluate the first N validation tokens (default {EVAL_TOKENS}; 0: all)",
    )
    p.add_argument("--lr", action="append", default=[], metavar="SYSTEM=LR", help="a system's peak lr")
    p.add_argument(
        "--steps", action="append", default=[], metavar="SYSTEM=N", help="an lmlab system's budget"
    )
    p.add_argument("--set", action="append", default=[], metavar="SYSTEM:KEY=VALUE", help="Hydra override")
    p.add_argument("--quick", action="store_true", help=f"plumbing check: {QUICK}, seeds 0,1, no JSON")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--stop-after", type=float, metavar="MINUTES", help="start no run after this long; the same command "
        "again continues (finished runs are kept in <json>.partial.json): a long benchmark in several sittings",
    )  # fmt: skip
    p.add_argument(
        "--jobs", type=int, default=1, help="runs at once, one torch thread each: their curves are exact, "
        "their clocks are not their speed, so the report then needs the rates of --throughput",
    )  # fmt: skip
    p.add_argument(
        "--throughput", type=int, metavar="STEPS", help="measure every system's training tokens/s side by side "
        "instead: STEPS steps a run, --repeats times in rotating order, into <json>_throughput.json, which the "
        "report then reads",
    )  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="--throughput: runs of each system (default 3)")
    p.add_argument(
        "--report", action="store_true", help="print the report of the runs kept in <json> and exit"
    )
    args = p.parse_args()
    quick = QUICK if args.quick else {}
    budget = args.budget or quick.get("budget") or BUDGETS[args.shape]
    eval_every = args.eval_every or quick.get("eval_every") or max(budget // 20, 1)
    eval_tokens = quick.get("eval_tokens", EVAL_TOKENS) if args.eval_tokens is None else args.eval_tokens
    seeds = [int(s) for s in (args.seeds or ("0,1" if args.quick else "0,1,2")).split(",")]
    systems = args.systems.split(",")
    if "nanogpt" not in systems or not set(systems) <= set(SYSTEMS):
        raise SystemExit(
            f"--systems={args.systems}: give systems of {SYSTEMS}, nanogpt among them (the target)"
        )
    if args.jobs < 1 or (args.throughput is not None and args.throughput < 2) or args.repeats < 1:
        raise SystemExit("--jobs and --repeats take a positive number, --throughput at least 2 steps")
    lrs = {k: v[-1] for k, v in keyed(args.lr).items()}
    steps = {k: int(v[-1]) for k, v in keyed(args.steps).items()}
    sets = keyed(args.set, ":")
    json_out = args.json or (None if args.quick else ROOT / f"bench/results/time_to_loss_{args.corpus}_{args.shape}.json")  # fmt: skip
    partial = json_out.with_suffix(".partial.json") if json_out else None
    rates_json = json_out.with_name(f"{json_out.stem}_throughput.json") if json_out else None
    if args.report:
        if json_out is None:
            raise SystemExit("--report --quick: name the JSON with --json")
        return print_kept(json_out, partial, rates_json)
    shape = {k: SHAPES[args.shape][k] for k in ("layers", "width", "heads", "block", "batch")}
    config = {"corpus": args.corpus, "shape": args.shape, **shape, "budget": budget, "eval_every": eval_every,
              "eval_tokens": eval_tokens, "seeds": seeds, "systems": systems, "lr": lrs, "steps": steps,
              "set": sets, "command": " ".join(sys.argv)}  # fmt: skip
    if args.throughput:
        config = {k: config[k] for k in ("corpus", "shape", *shape, "systems", "lr", "set", "command")}
        config |= {"steps": args.throughput, "repeats": args.repeats}
    facts = machine_facts()
    print_facts(facts)
    print(f"config: {config}", flush=True)
    env = {"PYTHONPATH": str(ROOT / "bench"), "TOKENIZERS_PARALLELISM": "false"}
    runs: dict[str, dict[int, dict]] = {s: {} for s in systems}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lmlab-ttl-") as tmp:
        work = Path(tmp)
        if args.corpus == "shakespeare":
            folders, vocab, data = prepare(work, SHARED_DATA / "tinyshakespeare" / "input.txt")
        else:
            folders, vocab, data = prepare_wikitext2(work)
        n_val = len(load_tokens(folders["validation"])) - 1
        eval_tokens = min(eval_tokens or n_val, n_val)

        def run(system: str, seed: int, n_steps: int, every: int, evaluated: int, tag: str = "") -> dict:
            """One system's run in a fresh process: its curve, parameters and clocks."""
            out = work / f"{tag}{system}-{seed}.json"
            clock = {"out": str(out), "val_tokens": str(folders["validation"]), "context": shape["block"],
                     "every": every, "eval_tokens": evaluated}  # fmt: skip
            if system == "nanogpt":
                cmd = nanogpt_cmd(shape, n_steps, folders, vocab, seed, clock, lrs.get(system))
            else:
                extra = [f"{LR_KEYS[system]}={lrs[system]}"] if system in lrs else []
                run_dir = work / "runs" / f"{tag}{system}-{seed}"
                cmd = lmlab_cmd(
                    system, shape, n_steps, data, run_dir, seed, clock, extra + sets.get(system, [])
                )
            t0, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M %Z")
            result = run_child(cmd, out, env)
            result["child_wall"], result["load"] = time.perf_counter() - t0, load_now()
            result["machine"] = {"date": date, "cpu_id": facts["cpu_id"], "jobs": args.jobs}
            return result

        if args.throughput:
            return measure_rates(run, systems, args.throughput, args.repeats, rates_json, facts, config)
        config["eval_tokens"] = eval_tokens
        if partial and partial.exists():
            kept = json.loads(partial.read_text())
            if _settings(kept["config"]) != _settings(config):
                raise SystemExit(
                    f"{partial} holds runs of another configuration: delete it, or run its command"
                )
            runs = {s: {int(seed): r for seed, r in kept["runs"][s].items()} for s in systems}
            print(f"continuing {partial}: {sum(map(len, runs.values()))} runs done", flush=True)
        print(f"vocabulary {vocab}; {len(load_tokens(folders['train'])):,} train tokens, {n_val:,} validation "
              f"tokens ({eval_tokens:,} evaluated)", flush=True)  # fmt: skip
        lock, late = threading.Lock(), threading.Event()

        def curve(seed: int, system: str) -> None:
            if args.stop_after is not None and time.perf_counter() - start > args.stop_after * 60:
                late.set()
                return
            r = run(system, seed, budget if system == "nanogpt" else steps.get(system, budget), eval_every,
                    eval_tokens)  # fmt: skip
            last = r["points"][-1]
            with lock:
                runs[system][seed] = r
                print(
                    f"seed {seed} {system:11s} loss {r['points'][0]['loss']:.3f} -> {last['loss']:.4f} after "
                    f"{last['step']} steps, {last['wall']:.1f} s training ({last['tokens'] / last['wall']:,.0f} "
                    f"tokens/s), {r['eval_wall']:.1f} s evaluating, {r['child_wall']:.1f} s in all "
                    f"(load {r['load']})",
                    flush=True,
                )
                if partial:
                    partial.write_text(json.dumps({"config": config, "runs": runs}))

        todo = [(seed, s) for i, seed in enumerate(seeds) for s in rotated(systems, i) if seed not in runs[s]]
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(curve, *pair) for pair in todo]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        if late.is_set():
            print(f"--stop-after {args.stop_after:g}: stopping; the same command continues", flush=True)
            return
    result = report(systems, runs, facts, config, load_throughput(rates_json, config, systems))
    print(f"this run: {time.perf_counter() - start:.0f} s")
    if args.quick:
        full = estimate(runs, min(EVAL_TOKENS, n_val), eval_tokens, BUDGETS[args.shape], 3)
        print(
            f"estimated full run (--shape {args.shape}, 3 seeds, default budget and evaluation): {full / 60:.0f} min"
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
        print(f"written: {json_out}")
        if partial:
            partial.unlink(missing_ok=True)


def measure_rates(run, systems: list[str], n_steps: int, repeats: int, out: Path | None, facts: dict,
                  config: dict) -> None:  # fmt: skip
    """--throughput: each system's training rate, the systems next to each other in rotating order."""
    measured: dict[str, list[dict]] = {s: [] for s in systems}
    for i in range(repeats):
        for system in rotated(systems, i):
            r = rate(run(system, i, n_steps, n_steps // 2, THROUGHPUT_EVAL_TOKENS, tag="rate-"))
            measured[system].append(r)
            print(
                f"repeat {i} {system:11s} {r['tokens_per_sec']:,.0f} tokens/s, "
                f"{r['cpu_per_token'] * 1e3:.3f} CPU-ms a token (load {r['load']})",
                flush=True,
            )
    result = {"machine": facts, "config": config, "runs": measured}
    print("\n| system | tokens/s, median (range) |\n|---|---:|")
    for system, r in rates(result).items():
        print(f"| {system} | {r['tokens_per_sec']:,.0f} ({r['range'][0]:,.0f}-{r['range'][1]:,.0f}) |")
    if out:
        out.write_text(json.dumps(result, indent=2))
        print(f"written: {out}")


if __name__ == "__main__":
    main()
