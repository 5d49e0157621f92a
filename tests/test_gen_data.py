"""Source/target pairs: every format, every bad input, and the token layouts of both model kinds."""

import csv
import gzip
import json
import logging

import pytest
import torch
from conftest import compose
from hydra.utils import instantiate

from lmlab.data.seq2seq_batches import PairCollator, PairEncoder, ensure_pad_and_eos
from lmlab.data.seq2seq_datamodule import Seq2SeqDataModule
from lmlab.data.sources.pairs import PairSource
from lmlab.data.tokenizer import GivenTokenizer, TrainedTokenizer
from lmlab.errors import ConfigError, DataError

ROWS = [
    {"doc": "A long text, with a comma.", "sum": 'Short "quoted" text.'},
    {"doc": "Zwei Hunde spielen im Schnee.\nZweite Zeile.", "sum": "Zwei Hunde."},
    {"doc": "Third one", "sum": "3"},
]


def write_table(path, rows=ROWS):
    if ".jsonl" in path.suffixes:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if path.suffix == ".gz":
            with gzip.open(path, "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(
            f, fieldnames=list(rows[0]), dialect="excel" if path.suffix == ".csv" else "excel-tab"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz", "data.csv", "data.tsv"])
def test_tables_read_the_same_pairs(tmp_path, name):
    path = write_table(tmp_path / name)
    source = PairSource(files={"train": str(path)}, source_column="doc", target_column="sum")
    source.check(["train"])
    pairs = source.pairs("train")
    assert [(p.source, p.references) for p in pairs] == [(r["doc"], [r["sum"]]) for r in ROWS]
    assert source.pairs("train", limit=2)[-1].source == ROWS[1]["doc"]


def test_parallel_text_pattern_gz_and_pair_list(tmp_path):
    (tmp_path / "train.en").write_text("A man.\nTwo dogs.\n")
    with gzip.open(tmp_path / "train.de.gz", "wt", encoding="utf-8") as f:
        f.write("Ein Mann.\nZwei Hunde.\n")
    by_pattern = PairSource(files=f"{tmp_path}/{{split}}.{{lang}}", source_lang="en", target_lang="de")
    by_pattern.check(["train"])
    by_list = PairSource(files={"train": [str(tmp_path / "train.en"), str(tmp_path / "train.de")]})
    for source in (by_pattern, by_list):
        assert [(p.source, p.references) for p in source.pairs("train")] == [
            ("A man.", ["Ein Mann."]),
            ("Two dogs.", ["Zwei Hunde."]),
        ]


def test_nested_columns_and_multiple_references(tmp_path):
    rows = [{"translation": {"en": "a", "ro": "b"}, "r1": "x", "r2": "y"}]
    path = write_table(tmp_path / "t.jsonl", rows)
    source = PairSource(
        files={"train": str(path), "test": str(path)},
        source_column="translation.en",
        target_column="translation.ro",
        reference_columns={"test": ["r1", "r2"]},
    )
    assert source.pairs("train")[0].references == ["b"]
    assert source.pairs("test")[0].references == ["x", "y"]
    # a split whose data has none of the reference columns (e.g. the hub copy) uses the target column
    plain = write_table(tmp_path / "plain.jsonl", [{"translation": {"en": "a", "ro": "b"}}])
    source = PairSource(
        files={"test": str(plain)}, source_column="translation.en", target_column="translation.ro",
        reference_columns={"test": ["r1", "r2"]},
    )  # fmt: skip
    assert source.pairs("test")[0].references == ["b"]


def test_missing_columns_name_the_columns_found(tmp_path):
    path = write_table(tmp_path / "t.csv")
    source = PairSource(files={"train": str(path)}, source_column="document", target_column="sum")
    with pytest.raises(DataError, match=r"no column\(s\) \['document'\] \(found \['doc', 'sum'\]\)"):
        source.check(["train"])
    rows = [{"doc": "a", "r1": "x"}]
    source = PairSource(
        files={"test": str(write_table(tmp_path / "r.jsonl", rows))}, source_column="doc",
        reference_columns={"test": ["r1", "r2"]},
    )  # fmt: skip
    with pytest.raises(DataError, match=r"reference column\(s\) \['r2'\] missing \(found \['doc', 'r1'\]\)"):
        source.check(["test"])


def test_empty_targets_stop_or_are_skipped(tmp_path, caplog):
    rows = [{"doc": "a", "sum": "b"}, {"doc": "c", "sum": "  "}, {"doc": "d", "sum": "e"}]
    path = write_table(tmp_path / "t.jsonl", rows)
    source = PairSource(files={"train": str(path)}, source_column="doc", target_column="sum")
    with pytest.raises(DataError, match=rf"{path}:2: empty target.*empty_rows=skip"):
        source.pairs("train")
    skip = PairSource(files={"train": str(path)}, source_column="doc", target_column="sum", empty_rows="skip")
    with caplog.at_level(logging.WARNING):
        assert [p.source for p in skip.pairs("train")] == ["a", "d"]
    assert "skipped 1 pair" in caplog.text


def test_parallel_files_of_different_lengths(tmp_path):
    (tmp_path / "train.en").write_text("a\nb\nc\n")
    (tmp_path / "train.de").write_text("x\ny\n")
    source = PairSource(files=f"{tmp_path}/{{split}}.{{lang}}", source_lang="en", target_lang="de")
    with pytest.raises(DataError, match=r"train.en has 3 lines but .*train.de has 2"):
        source.check(["train"])


def test_bad_files_and_offline_hub(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"doc": "a", "sum": "b"}\n{"doc": \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        PairSource(
            files={"train": str(tmp_path / "bad.jsonl")}, source_column="doc", target_column="sum"
        ).pairs("train")
    (tmp_path / "bad.csv").write_text("doc,sum\na,b,c\n")
    with pytest.raises(DataError, match=r"bad.csv:2: more fields than the header"):
        PairSource(files={"train": str(tmp_path / "bad.csv")}).check(["train"])
    with pytest.raises(ConfigError, match="neither a table"):
        PairSource(files={"train": str(tmp_path / "x.txt")}).check(["train"])
    # a preset with no local files: one error listing the local paths and the (offline) hub attempt
    cfg = compose(["data=multi30k", f"paths.data_dir={tmp_path}"], tmp_path / "run")
    source = instantiate(cfg.data.source)
    with pytest.raises(DataError) as e:
        source.check(["train"])
    assert "multi30k/task1/raw/train.en" in str(e.value) and "HF_HUB_OFFLINE=1" in str(e.value)
    assert "bentrevett/multi30k" in str(e.value) and "paths.data_dir" in str(e.value)


@pytest.fixture(scope="module")
def tokenizer():
    lines = [(f"{w} {w}s text number {i}\n", True) for i, w in enumerate(["cat", "dog", "ein", "Hund"] * 20)]
    return TrainedTokenizer("bpe", vocab_size=300, min_frequency=1).train(iter(lines))


def test_decoder_only_layout_masks_the_prompt(tokenizer):
    from lmlab.data.sources.pairs import Pair

    encoder = PairEncoder(tokenizer, True, max_source_length=8, max_target_length=5, source_prefix="Q: ",
                          prompt_separator="\nA:")  # fmt: skip
    pairs = [Pair("cat dog", ["ein Hund"], "x"), Pair("cat " * 20, ["dog " * 20], "y")]
    sep = tokenizer("\nA:", add_special_tokens=False)["input_ids"]
    for f, pair in zip(encoder.encode(pairs, "test"), pairs, strict=True):
        ids, n = f["input_ids"].tolist(), f["prompt_len"]
        assert ids[n - len(sep) : n] == sep and n <= 8  # the separator survives truncation
        target = ids[n:]
        assert target[-1] == tokenizer.eos_token_id and len(target) <= 5
        assert pair.references[0].startswith(tokenizer.decode(target[:-1]))  # cut, never altered
    batch = PairCollator(tokenizer)([dict(f) for f in encoder.encode(pairs, "test")])
    labels, prompt, mask = batch["labels"], batch["prompt_ids"], batch["prompt_attention_mask"]
    first = encoder.encode(pairs[:1], "test")[0]
    n = first["prompt_len"]
    assert labels[0].tolist()[: len(first["input_ids"])] == [-100] * n + first["input_ids"][n:].tolist()
    assert (labels[0, len(first["input_ids"]) :] == -100).all()  # padding
    # prompts are left-padded, so generation continues every row from the last column
    assert prompt[0, -n:].tolist() == first["input_ids"][:n].tolist() and not mask[0, :-n].any()
    assert batch["references"][0] == ["ein Hund"] and batch["index"].tolist() == [0, 1]


def test_encoder_decoder_layout_ends_targets_with_eos(tokenizer):
    from lmlab.data.sources.pairs import Pair

    encoder = PairEncoder(tokenizer, False, max_source_length=4, max_target_length=3)
    pairs = [Pair("cat dog cat dog cat", ["ein Hund ein Hund"], "x"), Pair("cat", ["dog"], "y")]
    features = encoder.encode(pairs, "test")
    assert all(len(f["input_ids"]) <= 4 for f in features)
    assert [f["labels"].tolist()[-1] for f in features] == [tokenizer.eos_token_id] * 2
    assert len(features[0]["labels"]) == 3
    batch = PairCollator(tokenizer)(features)
    assert batch["labels"][1, len(features[1]["labels"]) :].eq(-100).all()
    assert batch["attention_mask"][1].sum() == len(features[1]["input_ids"])
    assert "prompt_ids" not in batch


def test_missing_pad_and_eos_are_set_on_purpose(tokenizer, caplog):
    tok = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="<|endoftext|>")
    assert tok.pad_token_id is None
    with caplog.at_level(logging.INFO):
        ensure_pad_and_eos(tok)
    assert tok.pad_token_id == tok.eos_token_id and "no pad token: padding with its EOS" in caplog.text
    bare = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer)
    ensure_pad_and_eos(bare)
    assert bare.eos_token == "</s>" and bare.pad_token == "</s>" and "resize_token_embeddings" in caplog.text


def test_datamodule_layout_caps_and_holdout(tmp_path, tokenizer):
    rows = [{"doc": f"cat {i}", "sum": f"dog {i}"} for i in range(40)]
    path = write_table(tmp_path / "t.jsonl", rows)
    source = PairSource(
        files={"train": str(path), "test": str(path)}, source_column="doc", target_column="sum"
    )
    dm = Seq2SeqDataModule(
        source, GivenTokenizer(tokenizer), str(tmp_path), max_source_length=16, max_target_length=8,
        max_train_samples=20, max_test_samples=5, holdout_fraction=0.1,
        splits={"train": "train", "validation": None, "test": "test"},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="task=seq2seq or task=causal_seq2seq"):
        dm.set_head("masked_lm")
    dm.set_head("causal_lm")
    assert dm.sequence_length == 24 and "max_source_length + data.max_target_length" in dm.length_field
    dm.check()
    dm.prepare_data()
    assert dm.has_stage("validation") and len(dm.features["validation"]) == 4  # every 10th of 40
    assert len(dm.features["train"]) == 20 and len(dm.features["test"]) == 5
    held = {f["source"] for f in dm.features["validation"]}
    assert held == {"cat 9", "cat 19", "cat 29", "cat 39"} and not held & {
        f["source"] for f in dm.features["train"]
    }
    batch = next(iter(dm.val_dataloader()))
    assert batch["prompt_ids"].shape[0] == 4 and isinstance(batch["input_ids"], torch.Tensor)


def test_the_readme_forms_of_own_files(tmp_path):
    for split in ("train", "dev"):
        (tmp_path / f"{split}.en").write_text("A man.\nTwo dogs.\n")
        (tmp_path / f"{split}.de").write_text("Ein Mann.\nZwei Hunde.\n")
    forms = [
        [f"data.source.files.train=[{tmp_path}/train.en,{tmp_path}/train.de]",
         f"data.source.files.validation=[{tmp_path}/dev.en,{tmp_path}/dev.de]"],
        [f"data.source.files='{tmp_path}/{{split}}.{{lang}}'", "data.source.source_lang=en",
         "data.source.target_lang=de", "data.splits.validation=dev"],
    ]  # fmt: skip
    for overrides in forms:
        cfg = compose(["experiment=gen/translation_t5", "data=seq2seq_files", *overrides], tmp_path / "run")
        source = instantiate(cfg.data.source)
        source.check(list(cfg.data.splits[s] for s in ("train", "validation")))
        assert [p.references[0] for p in source.pairs(cfg.data.splits.validation)] == [
            "Ein Mann.",
            "Zwei Hunde.",
        ]
