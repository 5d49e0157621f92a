"""Token shards streamed by litdata (data=streaming) against the memory-mapped token cache (data=wikitext103).

    OMP_NUM_THREADS=1 python bench/streaming.py --mb 100 500 [--workers 0 2] [--json out.json]
    OMP_NUM_THREADS=1 python bench/streaming.py --mb 1 --batches 20 --steps 10   # a quick check that it runs

The corpus is ``data_prep_scale.make_corpus``: the articles of ../shared/data/wikitext-2 (valid and test),
shuffled and repeated to --mb MB, written as ``wikitext-103/wiki.train.tokens`` in a temporary folder. One
byte-level BPE tokenizer (8192 tokens, trained on WikiText-2 valid outside the timings) serves both paths.
Every measurement runs in a fresh process:

  prepare  the token cache (``LMDataModule.prepare_data``, num_proc=--prep-procs) and the shards
           (``python prepare_data.py``, num_workers=--prep-procs): seconds, MB/s, peak RSS of the main
           process and of all its processes together (summed RSS, sampled every 0.1 s), size on disk;
           --prepare-only stops here
  loader   tokens/s the training loader delivers over --batches batches of --batch x --block tokens (after
           the first batch, whose start-up time is reported apart), with each --workers setting: the cache's
           ``train_loader`` (StatefulDataLoader, DistributedSampler) and the shards' ``ShardLoader``
  train    ``python train.py model=gpt_tiny`` for --steps steps on CPU fed by each (no validation), --repeats
           times in alternating order: perf/tokens_per_sec of the Throughput callback (its last window of 5
           steps), and the process wall time
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, load_now, machine_facts, print_facts, run_child
from data_prep_scale import make_corpus

TREE_RSS = r"""
import threading, time, psutil
_tree_peak = [0]
def _sample_tree():  # summed RSS of this process and all its descendants, every 0.1 s
    me = psutil.Process()
    while True:
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        _tree_peak[0] = max(_tree_peak[0], total)
        time.sleep(0.1)
threading.Thread(target=_sample_tree, daemon=True).start()
"""

PREPARE_CACHE = (
    TREE_RSS
    + r"""
import json, resource, sys, time
from lmlab.data import LMDataModule, WikiTextSource
from lmlab.data.tokenizer import PretrainedTokenizer
data_dir, tok_dir, cache_dir, procs, out = sys.argv[1:6]
t = time.perf_counter()
dm = LMDataModule(WikiTextSource(data_dir, name="wikitext-103"), PretrainedTokenizer(tok_dir), cache_dir,
                  num_proc=int(procs), splits={"train": "train"})
dm.check()
dm.prepare_data()
json.dump({"prepare_s": time.perf_counter() - t, "folder": str(dm.cache_folders["train"]),
           "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_total_mb": _tree_peak[0] / 2**20}, open(out, "w"))
"""
)

PREPARE_SHARDS = (
    TREE_RSS
    + r"""
import json, resource, runpy, sys, time
out = sys.argv[1]
sys.argv = sys.argv[2:]
t = time.perf_counter()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
json.dump({"prepare_s": time.perf_counter() - t,
           "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_total_mb": _tree_peak[0] / 2**20}, open(out, "w"))
"""
)

LOADER = r"""
import json, sys, time
kind, where, block, batch, workers, batches, out = sys.argv[1:8]
block, batch, workers, batches = int(block), int(batch), int(workers), int(batches)
if kind == "cache":
    from lmlab.data.lm_datamodule import PackedBlocks
    from lmlab.data.loaders import train_loader
    loader = train_loader(PackedBlocks(where, block), batch, 0, None, None, workers)
else:
    from lmlab.data.sources import ShardSource
    from lmlab.data.streaming_datamodule import ShardLoader, collate_blocks, open_blocks
    dataset = open_blocks(ShardSource(where), "train", block, None, shuffle=True)
    loader = ShardLoader(dataset, None, batch_size=batch, num_workers=workers, collate_fn=collate_blocks)
t0 = time.perf_counter()
it = iter(loader)
next(it)
t1 = time.perf_counter()
n = 0
for _ in range(batches):
    try:
        b = next(it)
    except StopIteration:
        break
    n += b["input_ids"].numel()
t2 = time.perf_counter()
json.dump({"first_batch_s": t1 - t0, "tokens": n, "tokens_per_s": n / (t2 - t1)}, open(out, "w"))
"""

STEP = [
    "model=gpt_tiny",
    "optimizer=adamw",
    "scheduler=cosine",
    "tokenizer=pretrained",
    "trainer.accelerator=cpu",
    "trainer.val_check_interval=100000",
]
STEP += ["trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]
STEP += [
    "trainer.log_every_n_steps=5",
    "run_test=false",
    "export.enabled=false",
    "logger=csv",
    "~callbacks.model_summary",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, nargs="+", default=[100.0, 500.0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader workers")
    p.add_argument("--prep-procs", type=int, default=2, help="tokenizing processes of both preparations")
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--steps", type=int, default=50, help="training steps (the throughput is logged every 5)")
    p.add_argument(
        "--part-mb", type=float, default=256.0, help="prepare_data.py's part_mb (text held at once)"
    )
    p.add_argument("--repeats", type=int, default=3, help="training runs fed by each path, alternating")
    p.add_argument("--prepare-only", action="store_true", help="measure the two preparations, nothing else")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    facts = machine_facts()
    print_facts(facts)
    rows: list[dict] = []
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    with tempfile.TemporaryDirectory(prefix="lmlab-streaming-") as tmp:
        tmp = Path(tmp)
        from common import SHARED_DATA

        from lmlab.data.tokenizer import TrainedTokenizer

        lines = ((line, False) for line in (SHARED_DATA / "wikitext-2" / "valid.txt").open())
        TrainedTokenizer("bpe", 8192).train(lines).save_pretrained(tmp / "tokenizer")
        tok = str(tmp / "tokenizer")
        for mb in args.mb:
            data, cache, shards = tmp / f"data-{mb:g}", tmp / f"cache-{mb:g}", tmp / f"shards-{mb:g}"
            size = make_corpus(data / "wikitext-103", mb)
            out = tmp / "out.json"

            def row(corpus_mb: float = round(size, 1), **values) -> None:
                rows.append({"mb": corpus_mb, **values, "load": load_now()})
                print(
                    "  ".join(
                        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()
                    )
                )

            cmd = [
                sys.executable,
                "-c",
                PREPARE_CACHE,
                str(data),
                tok,
                str(cache),
                str(args.prep_procs),
                str(out),
            ]
            r = run_child(cmd, out, env)
            folder = r.pop("folder")
            row(step="prepare", system="token cache", **r, mb_per_s=size / r["prepare_s"], disk_mb=_mb(cache))
            prepare = [str(ROOT / "prepare_data.py"), "data=wikitext103", f"paths.data_dir={data}"]
            prepare += ["data.splits.validation=null", "data.splits.test=null", "tokenizer=pretrained"]
            prepare += [
                f"tokenizer.name_or_path={tok}",
                f"location={shards}",
                f"num_workers={args.prep_procs}",
                f"part_mb={args.part_mb}",
            ]
            prepare += [f"paths.cache_dir={cache}", f"hydra.run.dir={tmp / 'prep-run'}"]
            r = run_child([sys.executable, "-c", PREPARE_SHARDS, str(out), *prepare], out, env)
            row(step="prepare", system="shards", **r, mb_per_s=size / r["prepare_s"], disk_mb=_mb(shards))
            if args.prepare_only:
                continue

            for workers in args.workers:
                for system, where in (("token cache", folder), ("shards", str(shards))):
                    kind = "cache" if system == "token cache" else "shards"
                    cmd = [sys.executable, "-c", LOADER, kind, where, str(args.block), str(args.batch)]
                    cmd += [str(workers), str(args.batches), str(out)]
                    row(step="loader", system=system, workers=workers, **run_child(cmd, out, env))

            train = [*STEP, f"tokenizer.name_or_path={tok}", f"trainer.max_steps={args.steps}"]
            train += [
                f"data.block_size={args.block}",
                f"model.config.n_positions={args.block}",
                f"data.batch_size={args.batch}",
                f"paths.cache_dir={cache}",
            ]
            fed_by = [
                ("token cache", ["data=wikitext103", f"paths.data_dir={data}", "data.splits.validation=null",
                                 "data.splits.test=null", "data.num_workers=0"]),
                ("shards", ["data=streaming", f"data.source.location={shards}", "data.num_workers=0"]),
            ]  # fmt: skip
            for rep in range(args.repeats):  # alternating: each path runs first in turn
                for system, data_args in fed_by[rep % 2 :] + fed_by[: rep % 2]:
                    run = tmp / f"run-{system.replace(' ', '_')}-{mb:g}-{rep}"
                    start = time.perf_counter()
                    run_child([sys.executable, str(ROOT / "train.py"), *train, *data_args,
                               f"hydra.run.dir={run}"], run / "metrics.json", env)  # fmt: skip
                    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
                    row(step="train", system=system, repeat=rep, wall_s=time.perf_counter() - start,
                        tokens_per_s=metrics.get("perf/tokens_per_sec", float("nan")))  # fmt: skip
            for folder_ in (data, cache, shards):
                shutil.rmtree(folder_, ignore_errors=True)
    _table(rows)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "rows": rows}, indent=2))


def _mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _table(rows: list[dict]) -> None:
    print(
        "\n| corpus | step | system | workers | seconds | tokens/s | MB/s | peak RSS main / all (MB) | disk (MB) |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        seconds = r.get("prepare_s", r.get("wall_s", r.get("first_batch_s")))
        rss = f"{r['rss_main_mb']:,.0f} / {r['rss_total_mb']:,.0f}" if "rss_main_mb" in r else ""
        print(
            f"| {r['mb']} MB | {r['step']} | {r['system']} | {r.get('workers', '')} | {seconds:.2f} | "
            f"{r.get('tokens_per_s', float('nan')):,.0f} | {r.get('mb_per_s', float('nan')):.2f} | {rss} | "
            f"{r.get('disk_mb', float('nan')):.1f} |"
        )


if __name__ == "__main__":
    main()
