"""The corpus shipped inside lmlab: the default data resolves to local files, then the hub, then it (loudly),
and `python train.py` with no data and no network trains on it and records that it did."""

import gzip
import hashlib
import json
import logging

import pytest
from conftest import TINY, compose, markov_text, write_wikitext
from test_cli import run_cli

from lmlab.data.sources.embedded import CORPUS_NAME, EmbeddedShakespeare, corpus_file, split_range
from lmlab.data.sources.wikitext import WikiTextSource
from lmlab.errors import ConfigError, DataError

SPLITS = ("train", "valid", "test")
# sha256 of karpathy/char-rnn data/tinyshakespeare/input.txt, the file the package ships (see its README)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def lines_of(source, split):
    return [line for line, _ in source.iter_lines(split)]


def warnings_of(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING]


# ------------------------------------------------------------------------------------------ the corpus
def test_the_shipped_file_is_tiny_shakespeare_unchanged():
    with corpus_file().open("rb") as f:
        text = gzip.decompress(f.read())
    assert hashlib.sha256(text).hexdigest() == TINY_SHAKESPEARE_SHA256
    assert (corpus_file().parent / "README.md").read_text().count("public domain") >= 1


def test_splits_are_disjoint_line_ranges_that_cover_the_corpus():
    with corpus_file().open("rb") as f:
        corpus = gzip.decompress(f.read()).decode().splitlines(keepends=True)
    source = EmbeddedShakespeare()
    assert [split_range(s) for s in SPLITS] == [(0, 36_000), (36_000, 38_000), (38_000, 40_000)]
    parts = [lines_of(source, s) for s in SPLITS]
    assert [len(p) for p in parts] == [36_000, 2_000, 2_000]
    assert parts[0] + parts[1] + parts[2] == corpus  # in order, nothing lost, nothing repeated
    assert lines_of(source, "validation") == parts[1]
    for split in SPLITS:  # each split is one document
        ends = [end for _, end in source.iter_lines(split)]
        assert sum(ends) == 1 and ends[-1]


def test_fingerprints_differ_per_split_and_from_wikitext(wikitext_dir):
    embedded = {EmbeddedShakespeare().fingerprint(s) for s in SPLITS}
    wikitext = {WikiTextSource(str(wikitext_dir), fallback="embedded").fingerprint(s) for s in SPLITS}
    assert len(embedded) == 3 and not embedded & wikitext


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match="not 'dev'"):
        EmbeddedShakespeare().check(["dev"])


# ------------------------------------------------------------------------------------------ resolution
def test_local_files_win(wikitext_dir, caplog):
    source = WikiTextSource(str(wikitext_dir), fallback="embedded")
    with caplog.at_level(logging.INFO):
        source.check(list(SPLITS))
    assert source.describe("train").endswith("wiki.train.tokens")
    assert not warnings_of(caplog)


def test_no_local_files_and_offline_hub_uses_the_embedded_corpus_with_one_warning(tmp_path, caplog):
    source = WikiTextSource(str(tmp_path / "nowhere"), fallback="embedded")  # HF_HUB_OFFLINE=1 (conftest)
    with caplog.at_level(logging.INFO):
        source.check(list(SPLITS))
        described = [source.describe(s) for s in SPLITS]
        assert lines_of(source, "validation") == lines_of(EmbeddedShakespeare(), "valid")
    assert all(d.startswith(f"{CORPUS_NAME} (") and "not comparable to WikiText" in d for d in described)
    [warning] = warnings_of(caplog)
    assert CORPUS_NAME in warning.getMessage() and "not comparable to WikiText" in warning.getMessage()
    assert "\n" not in warning.getMessage()
    assert "HF_HUB_OFFLINE=1 is set" in caplog.text  # why the hub was skipped


def test_without_fallback_a_missing_corpus_is_the_error_it_was(tmp_path):
    with pytest.raises(DataError, match="no data found") as e:
        WikiTextSource(str(tmp_path / "nowhere"), fallback=None).check(["train"])
    assert "HF_HUB_OFFLINE=1" in str(e.value) and "data.source.fallback=embedded" in str(e.value)


def test_a_partly_present_corpus_is_never_mixed_with_the_embedded_one(tmp_path, caplog):
    write_wikitext(tmp_path, {"valid": markov_text(20), "test": markov_text(20)})
    source = WikiTextSource(str(tmp_path), fallback="embedded")
    with pytest.raises(DataError, match="never mixes two corpora") as e:
        source.check(list(SPLITS))
    assert "wiki.valid.tokens" in str(e.value) and "no data found" in str(e.value)
    assert not warnings_of(caplog)


def test_unknown_fallback_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.source.fallback='shakespeare'"):
        WikiTextSource(str(tmp_path), fallback="shakespeare")


@pytest.mark.parametrize("data", ["wikitext2", "wikitext103"])
def test_the_shipped_data_configs_fall_back_to_the_embedded_corpus(data, tmp_path):
    assert compose([f"data={data}"], tmp_path).data.source.fallback == "embedded"


# ------------------------------------------------------------------------------------------ main command
def test_the_main_command_runs_offline_with_no_data(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        *[o for o in TINY if not o.startswith("trainer.max_steps")],
        "trainer.max_steps=3",
        f"paths.data_dir={tmp_path / 'no-data'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli("train.py", args, tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    warnings = [line for line in log.splitlines() if "[WARNING]" in line and CORPUS_NAME in line]
    assert len(warnings) == 1 and "not comparable to WikiText" in warnings[0]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and "test/loss" in summary["metrics"]
    export = json.loads((run_dir / "export" / "lmlab.json").read_text())
    for data in (summary["data"], export["data"]):
        assert set(data) == {"train", "validation", "test"}
        assert all(where.startswith(f"{CORPUS_NAME} (") for where in data.values())
        assert data["validation"].startswith(f"{CORPUS_NAME} (valid: lines 36001-38000 of 40000")
