"""Generation on the real data in ../shared/data: Multi30k en-de (gzipped parallel text) and DialogSum
(JSONL, three test references). Skipped when absent; the training runs are marked slow."""

import json

import pytest
from conftest import SHARED_DATA, compose
from gen_fixtures import GEN_TINY
from hydra.utils import instantiate

from lmlab.stages.train import train

MULTI30K = SHARED_DATA / "multi30k" / "task1" / "raw"
DIALOGSUM = SHARED_DATA / "dialogsum"
needs_multi30k = pytest.mark.skipif(not (MULTI30K / "train.en.gz").is_file(), reason="multi30k is absent")
needs_dialogsum = pytest.mark.skipif(
    not (DIALOGSUM / "dialogsum.test.jsonl").is_file(), reason="dialogsum is absent"
)


@needs_multi30k
def test_multi30k_preset_reads_the_release(tmp_path):
    source = instantiate(compose(["data=multi30k", f"paths.data_dir={SHARED_DATA}"], tmp_path).data.source)
    source.check(["train", "val", "test_2016_flickr", "test_2018_flickr"])  # line counts match pairwise
    sizes = {split: len(source.pairs(split)) for split in ("train", "val", "test_2016_flickr")}
    assert sizes == {"train": 29_000, "val": 1_014, "test_2016_flickr": 1_000}
    first = source.pairs("test_2016_flickr", limit=1)[0]
    assert first.source.startswith("A man in an orange hat") and first.references[0].startswith("Ein Mann")


@needs_dialogsum
def test_dialogsum_preset_has_three_test_references(tmp_path):
    source = instantiate(compose(["data=dialogsum", f"paths.data_dir={SHARED_DATA}"], tmp_path).data.source)
    source.check(["dev", "test"])
    dev, test = source.pairs("dev"), source.pairs("test")
    assert len(dev) == len(test) == 500
    assert {len(p.references) for p in dev} == {1} and {len(p.references) for p in test} == {3}
    assert test[0].source.startswith("#Person1#: Ms. Dawson")


@needs_multi30k
@pytest.mark.slow
def test_multi30k_translation_learns(tmp_path):
    overrides = ["experiment=gen/translation_t5", "model=t5_tiny", *GEN_TINY, f"paths.data_dir={SHARED_DATA}",
                 f"paths.cache_dir={tmp_path / 'cache'}", "tokenizer.vocab_size=4000", "data.max_train_samples=8000",
                 "data.max_eval_samples=200", "data.max_test_samples=200", "trainer.max_steps=400",
                 "trainer.val_check_interval=400", "task.val_generate_samples=100", "optimizer.lr=3e-3"]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert metrics["test/loss"] < 5.0  # from ln(4000) = 8.3
    assert (
        metrics["test/bleu"] > 1.0 and metrics["test/rouge1"] > 15
    )  # (German: ROUGE keeps ASCII words only)
    records = (tmp_path / "run" / "predictions" / "test.jsonl").read_text().splitlines()
    assert len(records) == 200 and json.loads(records[0])["prediction"]


@needs_dialogsum
@pytest.mark.slow
def test_dialogsum_summarization_learns(tmp_path):
    overrides = ["experiment=gen/summarization_bart", "model=bart_tiny", *GEN_TINY, f"paths.data_dir={SHARED_DATA}",
                 f"paths.cache_dir={tmp_path / 'cache'}", "tokenizer.vocab_size=4000", "data.splits.train=dev",
                 "data.splits.validation=null", "data.holdout_fraction=0.1", "data.max_test_samples=100",
                 "data.max_source_length=256", "trainer.max_steps=300", "trainer.val_check_interval=300",
                 "task.val_generate_samples=20", "optimizer.lr=3e-3"]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert metrics["test/rouge1"] > 10 and metrics["test/rougeLsum"] > 8
    record = json.loads((tmp_path / "run" / "predictions" / "test.jsonl").read_text().splitlines()[0])
    assert len(record["references"]) == 3
