"""Fixtures of the generation tests: a learnable copy task as parallel text, and tiny-run overrides."""

from __future__ import annotations

import random
from pathlib import Path

SPLITS = {"train": 2000, "valid": 64, "test": 64}


def copy_task(n: int, seed: int) -> list[str]:
    """Sequences of 4-6 digits: the target is the source itself (learnable by a tiny model in seconds)."""
    rng = random.Random(seed)
    return [" ".join(str(rng.randrange(10)) for _ in range(rng.randint(4, 6))) for _ in range(n)]


def write_copy_task(folder: Path) -> Path:
    """``{split}.src`` / ``{split}.tgt`` parallel files (train, valid, test) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (split, n) in enumerate(SPLITS.items()):
        lines = "\n".join(copy_task(n, seed=i)) + "\n"
        (folder / f"{split}.src").write_text(lines)
        (folder / f"{split}.tgt").write_text(lines)
    return folder


def copy_task_overrides(folder: Path, cache_dir: Path) -> list[str]:
    """Point a translation recipe at the copy task, with a small tokenizer and short sequences."""
    return [
        f"data.source.files='{folder}/{{split}}.{{lang}}'",
        "data.source.source_lang=src",
        "data.source.target_lang=tgt",
        "data.splits.train=train",
        "data.splits.validation=valid",
        "data.splits.test=test",
        "data.max_source_length=24",
        "data.max_target_length=16",
        "data.batch_size=32",
        "tokenizer.vocab_size=300",
        "tokenizer.min_frequency=1",
        f"paths.cache_dir={cache_dir}",
    ]


GEN_TINY = [
    "trainer.accelerator=cpu",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "~callbacks.model_summary",
    "logger=csv",
    "task.generation.num_beams=1",
]


def write_preset_layouts(data_dir: Path) -> Path:
    """Tiny Multi30k (gzipped parallel text) and DialogSum (JSONL, three test references) in their release
    layouts under ``data_dir``, for the recipes' presets."""
    import gzip
    import json

    raw = data_dir / "multi30k" / "task1" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr"):
        for lang, words in (("en", "a man rides a bike"), ("de", "ein Mann fährt Rad")):
            with gzip.open(raw / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(f"{words} {i}\n" for i in range(40)))
    folder = data_dir / "dialogsum"
    folder.mkdir(parents=True, exist_ok=True)
    dialogue = "#Person1#: Hello, how are you {i}?\n#Person2#: Fine, thanks. And you?"
    for split in ("train", "dev", "test"):
        rows = []
        for i in range(24):
            row = {"fname": f"{split}_{i}", "dialogue": dialogue.format(i=i)}
            if split == "test":
                row.update({f"summary{k}": f"#Person1# greets #Person2# ({k}, {i})." for k in (1, 2, 3)})
            else:
                row["summary"] = f"#Person1# and #Person2# greet each other ({i})."
            rows.append(row)
        (folder / f"dialogsum.{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data_dir
