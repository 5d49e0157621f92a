"""Text sources, encodings, document boundaries, the token cache and packed blocks."""

import gzip
import json

import numpy as np
import pytest

from lmlab.data.lm_datamodule import PackedBlocks
from lmlab.data.sources.text import TextFilesSource
from lmlab.data.sources.wikitext import WikiTextSource, wikitext_documents
from lmlab.data.text_io import read_lines
from lmlab.data.token_cache import build_token_cache, load_tokens
from lmlab.data.tokenizer import TrainedTokenizer
from lmlab.errors import DataError


# ------------------------------------------------------------------------------------------ reading text
def test_invalid_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nsecond caf\xe9 line\n")
    with pytest.raises(DataError, match=r"bad.txt: invalid UTF-8 at line 2, byte offset 20 \(byte 0xe9\)"):
        list(read_lines(path))


def test_replace_mode_decodes_and_warns(tmp_path, caplog):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9\n")
    assert list(read_lines(path, "replace")) == ["caf\ufffd\n"]
    assert "invalid UTF-8" in caplog.text


def test_crlf_bom_gzip_and_missing_final_newline(tmp_path):
    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write("\ufefffirst\r\nsecond".encode())
    assert list(read_lines(path)) == ["first\n", "second\n"]


# ---------------------------------------------------------------------------------------------- WikiText
def test_wikitext_articles_end_before_each_title():
    lines = [" \n", " = A = \n", " text a \n", " = = Sub = = \n", " more a \n", " = B = \n", " text b \n"]
    ends = [end for _, end in wikitext_documents(lines)]
    assert ends == [False, False, False, False, True, False, True]


@pytest.mark.parametrize("layout", ["wiki.{split}.tokens", "{split}.txt"])
def test_wikitext_local_layouts(tmp_path, layout):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    (folder / layout.format(split="valid")).write_text(" = T = \n hello world \n")
    source = WikiTextSource(str(tmp_path))
    source.check(["valid"])
    assert [line for line, _ in source.iter_lines("validation")] == [" = T = \n", " hello world \n"]


def test_wikitext_raw_variant(tmp_path):
    folder = tmp_path / "wikitext-2-raw"
    folder.mkdir()
    (folder / "wiki.test.raw").write_text(" = T = \n raw text \n")
    assert WikiTextSource(str(tmp_path), variant="raw").describe("test").endswith("wiki.test.raw")


def test_missing_wikitext_lists_what_was_tried(tmp_path):
    with pytest.raises(DataError) as e:
        WikiTextSource(str(tmp_path)).check(["train"])
    msg = str(e.value)
    assert "wikitext-2/wiki.train.tokens: not found" in msg
    assert "wikitext-2/train.txt: not found" in msg
    assert "Salesforce/wikitext" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "paths.data_dir" in msg


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "wikitext-2").mkdir()
    (tmp_path / "wikitext-2" / "wiki.train.tokens").write_text("")
    with pytest.raises(DataError, match="is empty"):
        WikiTextSource(str(tmp_path)).check(["train"])


# ------------------------------------------------------------------------------------------ text files
def docs(source, split):
    out, cur = [], []
    for line, end in source.iter_lines(split):
        cur.append(line.strip())
        if end:
            out.append(" ".join(cur))
            cur = []
    assert not cur
    return out


def test_text_files_document_boundaries(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\n\nthree\n")
    files = {"train": str(tmp_path / "*.txt")}
    assert docs(TextFilesSource(files, doc_boundary="blank_line"), "train") == ["one two", "three"]
    assert docs(TextFilesSource(files, doc_boundary="line"), "train") == ["one", "two", "three"]
    assert docs(TextFilesSource(files, doc_boundary="file"), "train") == ["one two   three"]


def test_jsonl_records_are_documents(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a\nb"}) + "\n" + json.dumps({"text": "c"}) + "\n")
    assert docs(TextFilesSource({"train": str(path)}), "train") == ["a b", "c"]
    with pytest.raises(DataError, match=r"d.jsonl:1: no field 'body' \(found \['text'\]\)"):
        list(TextFilesSource({"train": str(path)}, text_field="body").iter_lines("train"))


def test_holdout_splits_documents_disjointly(tmp_path):
    (tmp_path / "a.txt").write_text("\n".join(f"doc{i}" for i in range(40)) + "\n")
    source = TextFilesSource({"train": str(tmp_path / "a.txt")}, doc_boundary="line", val_fraction=0.1)
    train, val = docs(source, "train"), docs(source, "validation")
    assert len(val) == 4 and len(train) == 36
    assert sorted(train + val) == sorted(f"doc{i}" for i in range(40))


def test_glob_without_match_is_an_error(tmp_path):
    with pytest.raises(DataError, match="matches no file"):
        TextFilesSource({"train": str(tmp_path / "*.txt")}).check(["train"])


# ----------------------------------------------------------------------------------------- token cache
@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "c.txt").write_text("the cat sat\n\nthe dog ran far\nand far away\n")
    source = TextFilesSource({"train": str(tmp_path / "c.txt")})
    tokenizer = TrainedTokenizer("bpe", vocab_size=300, min_frequency=1).load(
        source, "train", tmp_path / "cache"
    )
    return source, tokenizer, tmp_path / "cache"


def test_token_cache_matches_tokenizer_and_separates_documents(corpus):
    source, tok, cache = corpus
    folder = build_token_cache(source, "train", tok, cache)
    tokens = load_tokens(folder).tolist()
    eos = tok.eos_token_id
    expected = tok("the cat sat\n")["input_ids"] + [eos]
    expected += tok("the dog ran far\n")["input_ids"] + tok("and far away\n")["input_ids"] + [eos]
    assert tokens == expected
    assert json.loads((folder / "meta.json").read_text())["n_documents"] == 2


def test_token_cache_is_reused(corpus):
    source, tok, cache = corpus
    folder = build_token_cache(source, "train", tok, cache)
    stamp = (folder / "tokens.bin").stat().st_mtime_ns
    assert build_token_cache(source, "train", tok, cache) == folder
    assert (folder / "tokens.bin").stat().st_mtime_ns == stamp


def test_interrupted_build_leaves_no_finished_cache(corpus, monkeypatch):
    source, tok, cache = corpus
    import lmlab.data.token_cache as tc

    def boom(*args, **kwargs):
        yield [[1, 2]], [True]
        raise KeyboardInterrupt

    monkeypatch.setattr(tc, "_encode_batches", boom)
    with pytest.raises(KeyboardInterrupt):
        build_token_cache(source, "train", tok, cache)
    folder = tc.token_cache_dir(cache, source, "train", tok)
    assert not (folder / "meta.json").exists() and not (folder / "tokens.bin").exists()
    monkeypatch.undo()
    assert len(load_tokens(build_token_cache(source, "train", tok, cache))) > 0


def test_multiprocess_tokenization_gives_the_same_tokens(corpus, tmp_path):
    source, tok, cache = corpus
    one = load_tokens(build_token_cache(source, "train", tok, cache)).copy()
    two = load_tokens(build_token_cache(source, "train", tok, tmp_path / "cache2", num_proc=2))
    assert np.array_equal(one, two)


def test_packed_blocks_are_contiguous_and_drop_the_remainder(corpus):
    source, tok, cache = corpus
    folder = build_token_cache(source, "train", tok, cache)
    tokens = load_tokens(folder)
    blocks = PackedBlocks(folder, block_size=4)
    assert len(blocks) == len(tokens) // 4
    joined = np.concatenate([blocks[i]["input_ids"].numpy() for i in range(len(blocks))])
    assert np.array_equal(joined, tokens[: len(blocks) * 4])


def test_a_named_file_no_stage_reads_is_a_warning(tmp_path, caplog):
    """data.source.files.test set while data.splits.test is null: the file would be silently dropped."""
    from lmlab.data.lm_datamodule import LMDataModule
    from lmlab.data.tokenizer import TrainedTokenizer

    for split in ("train", "test"):
        (tmp_path / f"{split}.txt").write_text("alpha bravo charlie\n" * 50)
    source = TextFilesSource(files={"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt")})
    dm = LMDataModule(
        source, TrainedTokenizer(kind="bpe", vocab_size=300), str(tmp_path / "cache"),
        splits={"train": "train", "validation": None, "test": None},
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        dm.check()
    assert "data.source.files.test is set, but no stage reads the 'test' split" in caplog.text
    assert "data.splits.test=test" in caplog.text
    caplog.clear()
    dm.select("test")  # evaluation reads what it selects: no warning
    with caplog.at_level("WARNING"):
        dm.check(need_train=False)
    assert "no stage reads" not in caplog.text
