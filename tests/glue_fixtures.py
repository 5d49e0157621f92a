"""Write small GLUE folders in the real file layouts (headers, BOM, literal quotes, MNLI's many columns).

Labels are learnable: a keyword decides them (binary and 3-way tasks), and the STS-B score is the number of
shared words. Texts are drawn from a fixed vocabulary so a tokenizer trained on them covers them.
"""

from __future__ import annotations

import random
from pathlib import Path

FILLER = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "under",
    "mat",
    "rug",
    "tree",
    "house",
    "red",
    "blue",
    "small",
    "big",
    "quick",
    "slow",
]
KEYWORDS = {2: ["bad", "good"], 3: ["yes", "maybe", "no"]}


def sentence(rng: random.Random, keyword: str | None = None, n: int = 8) -> str:
    words = [rng.choice(FILLER) for _ in range(n)]
    if keyword:
        words.insert(rng.randrange(len(words) + 1), keyword)
    return " ".join(words)


def _rows(rng, n, n_labels):
    for _ in range(n):
        label = rng.randrange(n_labels)
        yield label, sentence(rng, KEYWORDS[n_labels][label]), sentence(rng)


def write_glue(root: Path, n_train: int = 400, n_dev: int = 80, n_test: int = 40, seed: int = 0) -> Path:
    """Create ``root/glue_data/<TASK>/...`` for all nine tasks and ``diagnostic/diagnostic.tsv``."""
    rng = random.Random(seed)
    base = root / "glue_data"
    nli = ["entailment", "neutral", "contradiction"]

    def write(task, name, lines, bom=False):
        folder = base / task
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")

    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = list(_rows(rng, n, 2))
        write("CoLA", f"{split}.tsv", [f"gj04\t{y}\t{'' if y else '*'}\t{a}" for y, a, _ in rows])
        write("SST-2", f"{split}.tsv", ["sentence\tlabel"] + [f"{a} \t{y}" for y, a, _ in rows])
        write(
            "MRPC",
            f"{split}.tsv",
            ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
            + [f'{y}\t{i}\t{i + 1}\t"{a}" he said\t{b} "quoted' for i, (y, a, b) in enumerate(rows)],
            bom=True,
        )
        write(
            "QQP",
            f"{split}.tsv",
            ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
            + [f"{i}\t{2 * i}\t{2 * i + 1}\t{a}?\t{b}?\t{y}" for i, (y, a, b) in enumerate(rows)],
        )
        for task, labels in (("QNLI", ["entailment", "not_entailment"]),):
            write(
                task,
                f"{split}.tsv",
                ["index\tquestion\tsentence\tlabel"]
                + [f"{i}\t{a}?\t{b}\t{labels[y]}" for i, (y, a, b) in enumerate(rows)],
            )
        for task, labels in (("RTE", ["entailment", "not_entailment"]), ("WNLI", ["0", "1"])):
            write(
                task,
                f"{split}.tsv",
                ["index\tsentence1\tsentence2\tlabel"]
                + [f"{i}\t{a}\t{b}\t{labels[y]}" for i, (y, a, b) in enumerate(rows)],
            )
        sts = []
        for i in range(n):
            a, b = sentence(rng, n=5), sentence(rng, n=5)
            score = min(5.0, float(len(set(a.split()) & set(b.split()))))
            sts.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{score:.3f}")
        write(
            "STS-B",
            f"{split}.tsv",
            ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"] + sts,
        )
    header = [
        "index",
        "promptID",
        "pairID",
        "genre",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
        "label1",
        "gold_label",
    ]
    for name, n in (("train.tsv", n_train), ("dev_matched.tsv", n_dev), ("dev_mismatched.tsv", n_dev)):
        rows = list(_rows(rng, n, 3))
        write(
            "MNLI",
            name,
            ["\t".join(header)]
            + [
                f"{i}\t{i}\t{i}n\tfiction\t( {a} )\t( {b} )\t(ROOT {a})\t(ROOT {b})\t{a}\t{b}\t{nli[y]}\t{nli[y]}"
                for i, (y, a, b) in enumerate(rows)
            ],
        )
    # unlabeled test files, in their own layouts
    tests = [(sentence(rng, rng.choice(KEYWORDS[2])), sentence(rng)) for _ in range(n_test)]
    write("CoLA", "test.tsv", ["index\tsentence"] + [f"{i}\t{a}" for i, (a, _) in enumerate(tests)])
    write("SST-2", "test.tsv", ["index\tsentence"] + [f"{i}\t{a}" for i, (a, _) in enumerate(tests)])
    write(
        "MRPC",
        "test.tsv",
        ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        + [f"{i}\t1\t2\t{a}\t{b}" for i, (a, b) in enumerate(tests)],
    )
    write(
        "QQP",
        "test.tsv",
        ["id\tquestion1\tquestion2"] + [f"{i}\t{a}?\t{b}?" for i, (a, b) in enumerate(tests)],
    )
    write(
        "QNLI",
        "test.tsv",
        ["index\tquestion\tsentence"] + [f"{i}\t{a}?\t{b}" for i, (a, b) in enumerate(tests)],
    )
    for task in ("RTE", "WNLI"):
        write(
            task,
            "test.tsv",
            ["index\tsentence1\tsentence2"] + [f"{i}\t{a}\t{b}" for i, (a, b) in enumerate(tests)],
        )
    write(
        "STS-B",
        "test.tsv",
        ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"]
        + [f"{i}\tg\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}" for i, (a, b) in enumerate(tests)],
    )
    mnli_test = [
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2"
    ]
    mnli_test += [
        f"{i}\t{i}\t{i}n\tfiction\t( {a} )\t( {b} )\t(ROOT {a})\t(ROOT {b})\t{a}\t{b}"
        for i, (a, b) in enumerate(tests)
    ]
    write("MNLI", "test_matched.tsv", mnli_test)
    write("MNLI", "test_mismatched.tsv", mnli_test)
    write(
        "diagnostic",
        "diagnostic.tsv",
        ["index\tsentence1\tsentence2"] + [f"{i}\t{a}\t{b}" for i, (a, b) in enumerate(tests)],
    )
    return root
