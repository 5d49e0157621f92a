"""Time to prepare WikiText-2-sized data (tokenizer training + tokenization + cache) and the cached rerun.

    python bench/data_prep.py [--data-dir ../shared/data] [--mb 10.8] [--num-proc 1]

The training split is WikiText-2-train-sized (10.8 MB by default), made by repeating the valid and test
files found in --data-dir/wikitext-2 (the real train file is not on our machines). Each measurement runs in
a fresh process so the cold run pays every cost a user pays; the peak resident memory is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from lmlab.data import LMDataModule, WikiTextSource
from lmlab.data.tokenizer import TrainedTokenizer
t_import = time.perf_counter() - t0
data_dir, cache_dir, num_proc = sys.argv[1], sys.argv[2], int(sys.argv[3])
t1 = time.perf_counter()
dm = LMDataModule(WikiTextSource(data_dir), TrainedTokenizer("bpe", 8192), cache_dir, block_size=128, num_proc=num_proc)
dm.check()
dm.prepare_tokenizer()
t_tok = time.perf_counter() - t1
dm.prepare_data()
dm.setup()
t_all = time.perf_counter() - t1
n = sum(ds.n_tokens for ds in dm.datasets.values())
print(json.dumps({"import_s": t_import, "tokenizer_s": t_tok, "prepare_s": t_all, "tokens": n,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_corpus(src: Path, dst: Path, mb: float) -> None:
    folder = dst / "wikitext-2"
    folder.mkdir(parents=True)
    valid, test = (
        (src / "wikitext-2" / "valid.txt").read_text(),
        (src / "wikitext-2" / "test.txt").read_text(),
    )
    chunks, size = [], 0
    while size < mb * 1e6:
        chunks.append(valid if len(chunks) % 2 == 0 else test)
        size += len(chunks[-1].encode())
    (folder / "wiki.train.tokens").write_text("".join(chunks))
    (folder / "wiki.valid.tokens").write_text(valid)
    (folder / "wiki.test.tokens").write_text(test)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--mb", type=float, default=10.8)
    parser.add_argument("--num-proc", type=int, default=1)
    args = parser.parse_args()
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cpus, "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_corpus(Path(args.data_dir), tmp / "data", args.mb)
        size = sum(p.stat().st_size for p in (tmp / "data" / "wikitext-2").iterdir()) / 1e6
        print(f"corpus: {size:.1f} MB in train+valid+test")
        for label in ("cold (train tokenizer, tokenize, cache)", "cached second run"):
            cmd = [sys.executable, "-c", CHILD, str(tmp / "data"), str(tmp / "cache"), str(args.num_proc)]
            start = time.perf_counter()
            out = json.loads(
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            wall = time.perf_counter() - start
            print(
                f"{label}: prepare {out['prepare_s']:.2f} s (tokenizer {out['tokenizer_s']:.2f} s), "
                f"process wall {wall:.2f} s (imports {out['import_s']:.2f} s), {out['tokens']:,} tokens, "
                f"{size / out['prepare_s']:.1f} MB/s, peak RSS {out['peak_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
