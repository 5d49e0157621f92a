"""Bad input gets a clear error that names what is wrong and the fix, before any expensive work: our own
checks, values a library rejects (``lmlab.errors.config_stage``) and damaged files."""

import gzip
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import compose, markov_text
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import AutoConfig

from lmlab.data.tables import read_records
from lmlab.data.text_io import check_file, read_lines
from lmlab.data.token_cache import build_token_cache, load_tokens
from lmlab.data.tokenizer import TrainedTokenizer
from lmlab.errors import CheckpointError, ConfigError, DataError, LmlabError, config_stage, user_error
from lmlab.models import load_pretrained_or_explain
from lmlab.stages.runner import run_stage
from lmlab.stages.train import train
from lmlab.utils.io import atomic_write_json


def run(overrides, tmp_path):
    return train(compose(overrides, tmp_path / "run"))


def test_missing_data_dir(tiny_overrides, tmp_path):
    with pytest.raises(DataError, match="no data found") as e:
        run(
            [*tiny_overrides, f"paths.data_dir={tmp_path / 'nowhere'}", "data.source.fallback=null"], tmp_path
        )
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


def test_pretrained_folder_with_another_vocabulary(tiny_overrides, tmp_path, small_pretrained_gpt):
    # The pretrained model learned its own 300-token tokenizer; a trained one of the same size has other ids.
    overrides = [*tiny_overrides, "model=pretrained", f"model.pretrained={small_pretrained_gpt}"]
    with pytest.raises(
        ConfigError, match=r"the tokenizer is not the one model .* was trained with: \d+ of its 300"
    ):
        run([*overrides, "tokenizer.vocab_size=300"], tmp_path)


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


def test_a_switch_that_is_not_true_or_false(tiny_overrides, tmp_path):
    """slurm_requeue=maybe is refused up front (not only on SLURM, where it is read), naming the override."""
    with pytest.raises(ConfigError, match=r"slurm_requeue='maybe' must be true or false"):
        run([*tiny_overrides, "slurm_requeue=maybe"], tmp_path)
    assert not list((Path(tmp_path) / "cache").rglob("*"))


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


# ------------------------------------------------------- what a library rejects, reported as a ConfigError
def test_config_stage_reports_a_library_error_naming_the_group():
    expected = r"^optimizer: Invalid learning rate: -1 \(check the optimizer settings"
    with pytest.raises(ConfigError, match=expected), config_stage("optimizer"):
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=-1)


def test_config_stage_unwraps_instantiate_and_passes_our_own_errors():
    factory = {"_target_": "lmlab.models.ModelFactory", "model_type": "gpt2", "implementation": "foo"}
    # our ConfigError, wrapped by Hydra: passed on as it is
    expected = r"^model.implementation='foo' must be hf or native$"
    with pytest.raises(ConfigError, match=expected), config_stage("model"):
        instantiate(factory)
    # Lightning's MisconfigurationException
    checkpoint = {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "save_top_k": -5}
    expected = r"^callbacks.model_checkpoint: Invalid value for save_top_k=-5"
    with pytest.raises(ConfigError, match=expected), config_stage("callbacks.model_checkpoint"):
        instantiate(checkpoint)
    # Hydra's own complaint: a _target_ that does not exist
    expected = r"^optimizer: Error loading 'torch.optim.Nadamw'"
    with pytest.raises(ConfigError, match=expected), config_stage("optimizer"):
        instantiate({"_target_": "torch.optim.Nadamw"})
    with pytest.raises(DataError, match="^as it is$"), config_stage("data"):
        raise DataError("as it is")


def test_internal_errors_keep_their_traceback(tmp_path, monkeypatch, capsys):
    """An error raised in lmlab's own code is a bug, not a config value: it is not turned into a message."""
    with pytest.raises(TypeError, match="is not JSON serializable"), config_stage("data"):
        atomic_write_json(tmp_path / "x.json", {"x": object()})
    assert user_error(ValueError("anything")) is None
    with pytest.raises(TypeError):
        run_stage(lambda cfg: atomic_write_json(tmp_path / "x.json", {"x": object()}), OmegaConf.create({}))

    def bad_lr(cfg):
        with config_stage("optimizer"):
            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=-1)

    for show, traced in (("0", False), ("1", True)):
        monkeypatch.setenv("LMLAB_TRACEBACK", show)
        with pytest.raises(SystemExit) as e:
            run_stage(bad_lr, OmegaConf.create({}))
        err = capsys.readouterr().err
        assert e.value.code == 2 and "error: optimizer: Invalid learning rate: -1" in err
        assert ("Traceback" in err) == traced and ("torch/optim" in err) == traced


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "optimizer.betas=[0.9,1.5]",
            r"^optimizer: Invalid beta parameter at index 1: 1.5 .*optimizer.betas=",
        ),
        (
            "data.num_workers=-1",
            r"^data loader: num_workers option should be non-negative.*data.num_workers=-1",
        ),
        (
            "trainer.strategy=nonsense",
            r"^trainer: You selected an invalid strategy name: `strategy='nonsense'`",
        ),
        (
            "model.config.n_head=3",
            r"^model: `embed_dim` must be divisible by num_heads .*model.config.n_head=3",
        ),
    ],
)
def test_values_a_library_rejects(tiny_overrides, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run([*tiny_overrides, override], tmp_path)


def test_values_a_library_rejects_come_before_data_preparation(tiny_overrides, tmp_path):
    for override in ("data.num_workers=-1", "model.config.n_embd=63"):
        with pytest.raises(ConfigError):
            run([*tiny_overrides, override], tmp_path)
    assert not list((tmp_path / "cache").rglob("*"))  # no tokenizer trained, nothing tokenized


def test_settings_lightning_refuses_once_it_runs(tiny_overrides, tmp_path):
    overrides = ["trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1"]
    with pytest.raises(ConfigError, match=r"^training: `val_check_interval` \(100000\) must be less than"):
        run([*tiny_overrides, *overrides, "trainer.val_check_interval=100000"], tmp_path)


# ------------------------------------------------------------------------------------------ damaged files
def test_damaged_gzip_files(tmp_path):
    text = b"".join(b"alpha bravo charlie %d\n" % i for i in range(5000))
    packed = gzip.compress(text)
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(
        DataError, match=r"cut.txt.gz: damaged file, the gzip stream ends early.* at line \d+ "
    ):
        list(read_lines(cut))
    plain = tmp_path / "plain.txt.gz"
    plain.write_bytes(b"not compressed\n")
    with pytest.raises(DataError, match=r"plain.txt.gz is not gzip data"):
        check_file(plain, "data.source.files.train")
    with pytest.raises(DataError, match=r"plain.txt.gz: damaged file, not gzip data"):
        list(read_lines(plain))
    unnamed = tmp_path / "unnamed.txt"
    unnamed.write_bytes(packed)
    with pytest.raises(DataError, match=r"gzip-compressed data in a file without the .gz suffix"):
        list(read_lines(unnamed))


def test_damaged_tables(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('text,label\nfine,1\n"cut short,0\nmore,1\n')
    with pytest.raises(DataError, match=r"t.csv:3: a quoted field opened on this line never closes"):
        list(read_records(csv_file))
    csv_file.write_text('text,label\n"quoted" then text,1\n')
    with pytest.raises(DataError, match=r"t.csv:2: not valid CSV"):
        list(read_records(csv_file))
    jsonl = tmp_path / "t.jsonl.gz"
    jsonl.write_bytes(gzip.compress(b'{"text": "a"}\n{"text": "b"}\n{"text": "cut sh'))
    with pytest.raises(DataError, match=r"t.jsonl.gz:3: not valid JSON at column 10 \(Unterminated string"):
        list(read_records(jsonl))


class _Lines:
    """A TextSource of a few lines (tests of the caches)."""

    def fingerprint(self, split):
        return "lines"

    def describe(self, split):
        return "a few lines"

    def iter_lines(self, split):
        return iter([(f" {w} alpha bravo {w}\n", True) for w in markov_text(40).split()])


def test_damaged_caches(tmp_path):
    source, cache = _Lines(), tmp_path / "cache"
    spec = TrainedTokenizer("bpe", vocab_size=300, min_frequency=1)
    tokenizer = spec.load(source, "train", cache)
    folder = build_token_cache(source, "train", tokenizer, cache)
    tokens = folder / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-3])
    with pytest.raises(
        DataError, match=rf"damaged token cache: {tokens} has \d+ bytes, but .*delete the folder"
    ):
        build_token_cache(source, "train", tokenizer, cache)
    (folder / "meta.json").write_text('{"n_tokens": 12')
    with pytest.raises(DataError, match=r"damaged token cache: .*meta.json cannot be read"):
        load_tokens(folder)
    saved = next((cache / "tokenizers").glob("bpe-*[!k]")) / "tokenizer.json"
    saved.write_text(saved.read_text()[:500])
    with pytest.raises(DataError, match=rf"cached tokenizer .*{saved} is damaged .*Fix: delete the folder"):
        spec.load(source, "train", cache)


def test_damaged_export_folder(small_pretrained_gpt, tmp_path):
    folder = Path(shutil.copytree(small_pretrained_gpt, tmp_path / "export"))
    (folder / "config.json").write_text((folder / "config.json").read_text()[:40])
    with pytest.raises(CheckpointError, match=r"model.pretrained=.*config.json is damaged"):
        load_pretrained_or_explain(AutoConfig.from_pretrained, str(folder), "model.pretrained")


def test_resume_with_another_tokenizer_fails_before_loading_weights(tiny_overrides, tmp_path):
    run(tiny_overrides, tmp_path)
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))[0]
    again = [*tiny_overrides, "tokenizer.vocab_size=300", f"ckpt_path={ckpt}"]
    with pytest.raises(CheckpointError) as e:
        train(compose(again, tmp_path / "again"))
    message = str(e.value)
    assert message.startswith(
        f"ckpt_path={ckpt} does not fit this run: the checkpoint holds a gpt2 causal_lm"
    )
    assert re.search(r"model.transformer.wte.weight: checkpoint \(\d+, 64\), run \(320, 64\)", message)
    assert re.search(r"tokenizer: checkpoint \d+ tokens, run 300 tokens", message)
    assert "model=pretrained model.pretrained=" in message
