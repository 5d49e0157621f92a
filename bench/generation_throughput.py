"""Generation throughput (new tokens per second) at batch 1 and 32, greedy and beam 4.

    python bench/generation_throughput.py [--model t5_small] [--model gpt_small] [--new-tokens 32] [--json out.json]
    python bench/generation_throughput.py --export logs/translation_t5/runs/<run>/export

Models are the size presets of conf/model/ built from config with random weights and a 8192-token
vocabulary (throughput does not depend on the weights), or a trained export. Every row generates exactly
--new-tokens tokens per sequence (min_new_tokens = max_new_tokens, so early EOS cannot flatter a row) from
--source-tokens tokens of input; tokens/s counts the returned tokens (batch x new tokens), not the beams.
Each setting is run once to warm up, then timed over --repeats runs (the median is reported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build(preset: str | None, export: str | None):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from lmlab.checkpoints import load_model_for_eval
    from lmlab.data.tokenizer import TrainedTokenizer

    if export:
        model, tokenizer, head, _ = load_model_for_eval(export)
        return model.eval(), tokenizer, export
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={preset}"])
    words = [(f"word{i} " * 4 + "\n", True) for i in range(8192)]
    tokenizer = TrainedTokenizer("bpe", 8192, min_frequency=1).train(iter(words))
    factory = instantiate(cfg.model)
    head = "seq2seq_lm" if factory.hf_config().is_encoder_decoder else "causal_lm"
    return factory.build(head, tokenizer).eval(), tokenizer, preset


def measure(
    model, tokenizer, batch: int, beams: int, source_tokens: int, new_tokens: int, repeats: int
) -> float:
    from lmlab.decoding.decode import generate_texts
    from lmlab.decoding.settings import GenerationSettings

    settings = GenerationSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=beams)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, len(tokenizer), (batch, source_tokens), generator=generator)
    mask = torch.ones_like(ids)
    generate_texts(model, tokenizer, ids, mask, settings)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, lengths = generate_texts(model, tokenizer, ids, mask, settings)
        times.append(time.perf_counter() - start)
        assert min(lengths) == new_tokens, lengths
    return batch * new_tokens / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", help="size preset of conf/model (repeatable)")
    parser.add_argument("--export", action="append", help="a trained export folder (repeatable)")
    parser.add_argument("--source-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.manual_seed(0)
    targets = [(m, None) for m in args.model or []] + [(None, e) for e in args.export or []]
    targets = targets or [("t5_small", None), ("gpt_small", None)]
    rows = []
    for preset, export in targets:
        model, tokenizer, name = build(preset, export)
        n_params = sum(p.numel() for p in model.parameters())
        for batch in (1, 32):
            for beams in (1, 4):
                tps = measure(
                    model, tokenizer, batch, beams, args.source_tokens, args.new_tokens, args.repeats
                )
                rows.append({"model": name, "params_m": round(n_params / 1e6, 2), "batch": batch,
                             "decoding": "greedy" if beams == 1 else f"beam {beams}", "tokens_per_s": round(tps, 1)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0],
               "load_avg_1m": os.getloadavg()[0]}  # fmt: skip
    print("\n| model | params | batch | decoding | new tokens/s |\n|---|---:|---:|---|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['params_m']}M | {r['batch']} | {r['decoding']} | {r['tokens_per_s']:,.0f} |"
        )
    print(f"\n{machine}; {args.source_tokens} source tokens, {args.new_tokens} new tokens per sequence")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "machine": machine, "args": vars(args)}, default=str, indent=2)
        )


if __name__ == "__main__":
    main()
