"""Tokenize and pack a WikiText-103-sized corpus: lmlab's token cache against run_clm's datasets path.

    OMP_NUM_THREADS=1 python bench/data_prep_scale.py --mb 100 200 [--num-proc 1 2] [--json out.json]

The corpus (``wikitext-103/wiki.train.tokens``, written to a temporary folder and deleted afterwards) is the
articles of ../shared/data/wikitext-2 (valid and test), shuffled and repeated until it holds --mb MB. One
byte-level BPE tokenizer (8192 tokens, trained once on WikiText-2 valid, outside the timings) serves both:

  lmlab    ``LMDataModule(WikiTextSource(...), block_size=1024, num_proc=P).prepare_data(); .setup()``:
           streamed in batches of lines into a flat uint16 memmap (``lmlab.data.token_cache``)
  run_clm  ``load_dataset("text")``, ``.map(tokenize_function, batched=True, num_proc=P)``, then
           ``.map(group_texts, batched=True, num_proc=P)`` into blocks of 1024, as in Hugging Face's
           examples/pytorch/language-modeling/run_clm.py (datasets' Arrow cache in the temporary folder)

Each run is a fresh process: the cold run from an empty cache, then the second, cached run (what every later
training run pays). Reported: the preparation time (after imports), the process wall time, MB/s, and the
peak resident memory of the main process and of the largest worker process.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, load_now, machine_facts, print_facts, run_child

CHILD_OURS = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from lmlab.data import LMDataModule, WikiTextSource
from lmlab.data.tokenizer import PretrainedTokenizer
t_import = time.perf_counter() - t0
data_dir, tok_dir, cache_dir, num_proc, out = sys.argv[1:6]
t1 = time.perf_counter()
dm = LMDataModule(WikiTextSource(data_dir, name="wikitext-103"), PretrainedTokenizer(tok_dir), cache_dir,
                  block_size=1024, num_proc=int(num_proc), splits={"train": "train"})
dm.check()
dm.prepare_data()
dm.setup()
t_prep = time.perf_counter() - t1
blocks = len(dm.datasets["train"])
json.dump({"import_s": t_import, "prepare_s": t_prep, "tokens": dm.datasets["train"].n_tokens, "blocks": blocks,
           "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}, open(out, "w"))
"""

CHILD_HF = r"""
import json, resource, sys, time
from itertools import chain
t0 = time.perf_counter()
from datasets import load_dataset
from transformers import AutoTokenizer
t_import = time.perf_counter() - t0
data_dir, tok_dir, cache_dir, num_proc, out = sys.argv[1:6]
num_proc = int(num_proc)
t1 = time.perf_counter()
raw = load_dataset("text", data_files={"train": f"{data_dir}/wikitext-103/wiki.train.tokens"},
                   cache_dir=cache_dir, keep_linebreaks=True)
tokenizer = AutoTokenizer.from_pretrained(tok_dir)
block_size = 1024

def tokenize_function(examples):
    return tokenizer(examples["text"])

def group_texts(examples):
    concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
    total_length = len(concatenated[list(examples.keys())[0]])
    total_length = (total_length // block_size) * block_size
    result = {k: [t[i : i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}
    result["labels"] = result["input_ids"].copy()
    return result

tokenized = raw.map(tokenize_function, batched=True, num_proc=num_proc if num_proc > 1 else None,
                    remove_columns=["text"])
lm = tokenized.map(group_texts, batched=True, num_proc=num_proc if num_proc > 1 else None)
t_prep = time.perf_counter() - t1
n = len(lm["train"])
json.dump({"import_s": t_import, "prepare_s": t_prep, "tokens": n * block_size, "blocks": n,
           "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}, open(out, "w"))
"""

TITLE = re.compile(r"^ = [^=].* = $")


def make_corpus(folder: Path, mb: float, seed: int = 0) -> float:
    """wiki.train.tokens of ``mb`` MB: WikiText-2 valid+test articles, shuffled, repeated; returns its size."""
    articles: list[str] = []
    for name in ("valid.txt", "test.txt"):
        current: list[str] = []
        for line in (SHARED_DATA / "wikitext-2" / name).read_text().splitlines(keepends=True):
            if TITLE.match(line.rstrip("\n")) and current:
                articles.append("".join(current))
                current = []
            current.append(line)
        articles.append("".join(current))
    rng = random.Random(seed)
    target, size = mb * 1e6, 0
    folder.mkdir(parents=True)
    with open(folder / "wiki.train.tokens", "w") as f:
        while size < target:
            rng.shuffle(articles)
            for article in articles:
                f.write(article)
                size += len(article.encode())
                if size >= target:
                    break
    return size / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, nargs="+", default=[100.0, 200.0])
    p.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--systems", default="lmlab,run_clm")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    facts = machine_facts()
    print_facts(facts)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lmlab-dataprep-") as tmp:
        tmp = Path(tmp)
        from lmlab.data.tokenizer import TrainedTokenizer

        lines = ((line, False) for line in (SHARED_DATA / "wikitext-2" / "valid.txt").open())
        TrainedTokenizer("bpe", 8192).train(lines).save_pretrained(tmp / "tokenizer")
        for mb in args.mb:
            data = tmp / f"data-{mb:g}"
            size = make_corpus(data / "wikitext-103", mb)
            print(f"corpus: {size:.1f} MB ({data})", flush=True)
            for system in args.systems.split(","):
                for num_proc in args.num_proc:
                    cache = tmp / f"cache-{system}-{mb:g}-{num_proc}"
                    for run in ("cold", "cached"):
                        out = tmp / "out.json"
                        code = CHILD_OURS if system == "lmlab" else CHILD_HF
                        cmd = [sys.executable, "-c", code, str(data), str(tmp / "tokenizer"), str(cache), str(num_proc), str(out)]  # fmt: skip
                        start = time.perf_counter()
                        result = run_child(cmd, out, {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
                        row = {"system": system, "mb": round(size, 1), "num_proc": num_proc, "run": run,
                               "wall_s": time.perf_counter() - start, **result, "load": load_now()}  # fmt: skip
                        row["mb_per_s"] = size / row["prepare_s"]
                        rows.append(row)
                        print(
                            f"{system:8s} {size:6.1f} MB num_proc={num_proc} {run:6s}: prepare {row['prepare_s']:7.2f} s "
                            f"({row['mb_per_s']:5.2f} MB/s), process {row['wall_s']:6.2f} s (imports {row['import_s']:.2f} s), "
                            f"peak RSS main {row['rss_main_mb']:,.0f} MB / worker {row['rss_worker_mb']:,.0f} MB, "
                            f"{row['tokens']:,} tokens in blocks, load {row['load']}",
                            flush=True,
                        )
                    shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(data, ignore_errors=True)
    print(
        "\n| system | corpus | processes | run | prepare (s) | MB/s | process wall (s) | peak RSS main / worker (MB) |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['system']} | {r['mb']} MB | {r['num_proc']} | {r['run']} | {r['prepare_s']:.2f} | "
            f"{r['mb_per_s']:.2f} | {r['wall_s']:.2f} | {r['rss_main_mb']:,.0f} / {r['rss_worker_mb']:,.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
