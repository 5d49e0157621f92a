"""Bad input gets a clear error that names what is wrong and the fix, before any expensive work."""

from pathlib import Path

import pytest
import torch
from conftest import compose

from lmlab.errors import CheckpointError, ConfigError, DataError, LmlabError
from lmlab.stages.train import train


def run(overrides, tmp_path):
    return train(compose(overrides, tmp_path / "run"))


def test_missing_data_dir(tiny_overrides, tmp_path):
    with pytest.raises(DataError, match="no data found") as e:
        run([*tiny_overrides, f"paths.data_dir={tmp_path / 'nowhere'}"], tmp_path)
    assert "HF_HUB_OFFLINE=1" in str(e.value) and "paths.data_dir" in str(e.value)


def test_non_utf8_data(wikitext_dir, tiny_overrides, tmp_path):
    data = tmp_path / "data" / "wikitext-2"
    data.mkdir(parents=True)
    for split in ("valid", "test"):
        (data / f"wiki.{split}.tokens").write_bytes(
            (wikitext_dir / "wikitext-2" / f"wiki.{split}.tokens").read_bytes()
        )
    (data / "wiki.train.tokens").write_bytes(b" = A = \n caf\xe9 \n")
    with pytest.raises(DataError, match=r"wiki.train.tokens: invalid UTF-8 at line 2, byte offset 12"):
        run([*tiny_overrides, f"paths.data_dir={tmp_path / 'data'}"], tmp_path)


def test_block_size_larger_than_model_positions(tiny_overrides, tmp_path):
    with pytest.raises(
        ConfigError, match=r"data.block_size=1024 is larger than the model's maximum positions \(512"
    ):
        run([*tiny_overrides, "data.block_size=1024"], tmp_path)


def test_mlm_objective_on_a_causal_model(tiny_overrides, tmp_path):
    with pytest.raises(ConfigError, match="has no masked_lm head"):
        run([*tiny_overrides, "task=mlm", "tokenizer=wordpiece"], tmp_path)


def test_mlm_needs_a_mask_token(tiny_overrides, tmp_path):
    with pytest.raises(ConfigError, match="needs a tokenizer with a mask token"):
        run([*tiny_overrides, "task=mlm", "model=bert_tiny", "tokenizer=bpe"], tmp_path)


def test_tokenizer_larger_than_pretrained_vocabulary(tiny_overrides, tmp_path, small_pretrained_gpt):
    # The pretrained model has 300 embedding rows; a trained 400-token tokenizer does not fit.
    overrides = [*tiny_overrides, "model=pretrained", f"model.pretrained={small_pretrained_gpt}"]
    with pytest.raises(ConfigError, match="model.resize_token_embeddings=true"):
        run(overrides, tmp_path)
    metrics = run([*overrides, "model.resize_token_embeddings=true"], tmp_path)  # on purpose: works
    assert metrics["val/loss"] > 0


def test_missing_checkpoint(tiny_overrides, tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        run([*tiny_overrides, f"ckpt_path={tmp_path / 'none.ckpt'}"], tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoint(tiny_overrides, tmp_path, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        run([*tiny_overrides, f"ckpt_path={bad}"], tmp_path)


def test_foreign_checkpoint(tiny_overrides, tmp_path):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="was not written by lmlab"):
        run([*tiny_overrides, f"ckpt_path={other}"], tmp_path)


def test_errors_come_before_data_preparation(tiny_overrides, tmp_path):
    """A bad model/block combination fails without training a tokenizer or tokenizing anything."""
    with pytest.raises(LmlabError):
        run([*tiny_overrides, "data.block_size=4096"], tmp_path)
    assert not list((Path(tmp_path) / "cache").rglob("*"))  # no tokenizer trained, nothing tokenized


def test_failed_export_leaves_no_complete_looking_folder(tiny_overrides, tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerFast

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        run(tiny_overrides, tmp_path)
    run_dir = tmp_path / "run"
    assert not (run_dir / "export").exists()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".export")]
