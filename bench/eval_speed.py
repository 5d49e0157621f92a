"""Evaluation speed: sliding-window perplexity, and BLEU/ROUGE of 10,000 pairs, against the direct baselines.

    OMP_NUM_THREADS=1 python bench/eval_speed.py [--ppl-tokens 60000] [--pairs 10000] [--repeats 3]

Perplexity: WikiText-2 test (../shared/data), byte-level BPE with 8192 tokens (trained on WikiText-2 valid),
a gpt_small-shaped GPT-2 (4 layers, 256 wide; random weights: the speed does not depend on them), context
128, stride 64 (evaluate.py's default, half the context). lmlab's ``sliding_window_perplexity`` (what
``evaluate.py`` runs; windows batched by 8) with the Hugging Face model and with ``model.implementation=
native``, against the loop of Hugging Face's perplexity guide (one window per forward, ``labels`` with -100
on the context). Tokens/s counts scored tokens; the perplexities are printed to show they agree.

BLEU/ROUGE: 10,000 pairs of real English texts (DialogSum test summaries against another annotator's summary
of the same dialogue, then Multi30k English captions against the next caption). lmlab's ``corpus_bleu`` and
``rouge`` (``lmlab.metrics.overlap``; ROUGE with its Punkt sentence split for ROUGE-Lsum, or
``sentence_split=newline``) and ``generation_scores`` (every generation metric), against calling
``sacrebleu.corpus_bleu`` and ``rouge_score``'s ``RougeScorer`` (rouge1/2/L/Lsum, Porter stemmer) directly.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from itertools import permutations
from pathlib import Path

import torch
from common import SHARED_DATA, fmt, load_now, machine_facts, print_facts, summary


def hf_guide_perplexity(model, ids: torch.Tensor, max_length: int, stride: int) -> tuple[float, int]:
    """The loop of Hugging Face's "Perplexity of fixed-length models" guide (batch of one window)."""
    seq_len = ids.size(1)
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        num_loss_tokens = (target_ids != -100).sum().item() - target_ids.size(0)
        nll_sum += loss.item() * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end = end
        if end == seq_len:
            break
    return float(torch.exp(torch.tensor(nll_sum / n_tokens))), n_tokens


def perplexity_rows(n_tokens: int, repeats: int) -> list[dict]:
    from transformers import GPT2Config, GPT2LMHeadModel

    from lmlab.data.tokenizer import TrainedTokenizer
    from lmlab.metrics.perplexity import sliding_window_perplexity
    from lmlab.models.native_gpt2 import NativeGPT2LMHeadModel

    lines = ((line, False) for line in (SHARED_DATA / "wikitext-2" / "valid.txt").open())
    tokenizer = TrainedTokenizer("bpe", 8192).train(lines)
    text = (SHARED_DATA / "wikitext-2" / "test.txt").read_text()
    ids = torch.tensor(tokenizer(text)["input_ids"][:n_tokens])
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=4, n_embd=256, n_head=4, n_positions=1024)
    hf = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa").eval()
    native = NativeGPT2LMHeadModel.from_hf(hf).eval()
    context, stride = 128, 64
    systems = {
        "lmlab sliding_window_perplexity (hf model)": lambda: sliding_window_perplexity(
            hf, ids, context, stride
        ),
        "lmlab sliding_window_perplexity (native)": lambda: sliding_window_perplexity(
            native, ids, context, stride
        ),
        "HF perplexity guide loop (hf model)": lambda: hf_guide_perplexity(hf, ids[None], context, stride),
    }
    speeds: dict[str, list[float]] = {k: [] for k in systems}
    ppl: dict[str, float] = {}
    for r in range(repeats):
        for name in list(systems)[r % 3 :] + list(systems)[: r % 3]:
            start = time.perf_counter()
            out = systems[name]()
            seconds = time.perf_counter() - start
            scored = out["tokens"] if isinstance(out, dict) else out[1]
            ppl[name] = out["ppl"] if isinstance(out, dict) else out[0]
            speeds[name].append(scored / seconds)
            print(f"ppl {name}: {scored / seconds:,.0f} scored tokens/s, ppl {ppl[name]:.3f}", flush=True)
    return [
        {"system": k, "tokens_per_s": summary(v), "ppl": ppl[k], "tokens": len(ids)}
        for k, v in speeds.items()
    ]


def text_pairs(n: int) -> tuple[list[str], list[str]]:
    preds, refs = [], []
    for line in (SHARED_DATA / "dialogsum" / "dialogsum.test.jsonl").open():
        row = json.loads(line)
        for a, b in permutations([row["summary1"], row["summary2"], row["summary3"]], 2):
            preds.append(a)
            refs.append(b)
    with gzip.open(SHARED_DATA / "multi30k" / "task1" / "raw" / "train.en.gz", "rt") as f:
        captions = [line.strip() for line in f]
    for i in range(n - len(preds)):
        preds.append(captions[i])
        refs.append(captions[i + 1])
    return preds[:n], refs[:n]


def metric_rows(n_pairs: int, repeats: int) -> list[dict]:
    import sacrebleu
    from rouge_score import rouge_scorer

    from lmlab.metrics.generated_text import generation_scores
    from lmlab.metrics.overlap import corpus_bleu, rouge

    preds, refs = text_pairs(n_pairs)
    ref_lists = [[r] for r in refs]
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]

    def direct_rouge() -> dict[str, float]:
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
        scores = [scorer.score(r, p) for p, r in zip(preds, refs, strict=True)]
        return {t: 100 * statistics.fmean(s[t].fmeasure for s in scores) for t in types}

    systems = {
        "sacrebleu.corpus_bleu (direct)": lambda: sacrebleu.corpus_bleu(preds, [refs]).score,
        "lmlab corpus_bleu": lambda: corpus_bleu(preds, ref_lists)[0],
        "rouge_score RougeScorer (direct, no sentence split)": direct_rouge,
        "lmlab rouge, sentence_split=newline": lambda: rouge(preds, ref_lists, sentence_split="newline"),
        "lmlab rouge, sentence_split=punkt (default)": lambda: rouge(preds, ref_lists),
        "lmlab generation_scores (BLEU+ROUGE+length+diversity)": lambda: generation_scores(
            preds, ref_lists, [len(p.split()) for p in preds]
        )[0],
    }
    seconds: dict[str, list[float]] = {k: [] for k in systems}
    values: dict[str, object] = {}
    for r in range(repeats):
        for name in list(systems)[r % 2 :] + list(systems)[: r % 2]:
            start = time.perf_counter()
            values[name] = systems[name]()
            seconds[name].append(time.perf_counter() - start)
            print(f"metrics {name}: {seconds[name][-1]:.2f} s", flush=True)
    return [
        {"system": k, "seconds": summary(v), "value": values[k], "pairs": n_pairs} for k, v in seconds.items()
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ppl-tokens", type=int, default=60000)
    p.add_argument("--pairs", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", choices=["ppl", "metrics"], action="append", default=[])
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    facts = machine_facts()
    print_facts(facts)
    result: dict = {"machine": facts}
    if "ppl" not in args.skip:
        result["perplexity"] = perplexity_rows(args.ppl_tokens, args.repeats)
        result["load_after_ppl"] = load_now()
        print(
            f"\n| perplexity of {args.ppl_tokens:,} tokens | scored tokens/s, median (range) | ppl |\n|---|---:|---:|"
        )
        for row in result["perplexity"]:
            print(f"| {row['system']} | {fmt(row['tokens_per_s'])} | {row['ppl']:.3f} |")
    if "metrics" not in args.skip:
        result["metrics"] = metric_rows(args.pairs, args.repeats)
        result["load_after_metrics"] = load_now()
        print(f"\n| {args.pairs:,} pairs | seconds, median (range) | value |\n|---|---:|---|")
        for row in result["metrics"]:
            value = row["value"]
            shown = (
                f"{value:.2f}"
                if isinstance(value, float)
                else json.dumps({k: round(v, 2) for k, v in value.items()})
            )
            print(f"| {row['system']} | {fmt(row['seconds'], 2)} | {shown} |")
    print(f"\nload average (1 min) now: {load_now()}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
