"""Real WikiText-2 from ../shared/data (valid and test only: train on valid, evaluate on test). Skipped when absent."""

import json

import pytest
from conftest import SHARED_DATA, TINY, compose

from lmlab.data.sources.wikitext import WikiTextSource
from lmlab.evaluation.lm import count_words
from lmlab.stages.evaluate import evaluate
from lmlab.stages.train import train

WIKITEXT = SHARED_DATA / "wikitext-2"
needs_wikitext = pytest.mark.skipif(
    not (WIKITEXT / "test.txt").is_file(), reason="../shared/data/wikitext-2 is absent"
)


@needs_wikitext
def test_word_counts_match_the_official_release():
    source = WikiTextSource(str(SHARED_DATA))
    assert count_words(source.iter_lines("valid")) == 217_646
    assert count_words(source.iter_lines("test")) == 245_569
    articles = sum(end for _, end in source.iter_lines("test"))
    assert articles == 62  # the ' = Title = ' lines of the test split


@needs_wikitext
@pytest.mark.slow
def test_pretrain_on_valid_and_evaluate_on_test(tmp_path):
    overrides = [
        *TINY,
        f"paths.data_dir={SHARED_DATA}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "data.splits.train=valid",
        "data.splits.validation=test",
        "tokenizer.vocab_size=4096",
        "data.block_size=64",
        "data.batch_size=16",
        "model.config.n_embd=128",
        "trainer.max_steps=400",
        "trainer.val_check_interval=200",
        "trainer.limit_val_batches=20",
        "optimizer.lr=2e-3",
        "run_test=false",
    ]
    metrics = train(compose(overrides, tmp_path / "run"))
    assert metrics["val/loss"] < 6.2  # from ln(4096) = 8.3 at the start
    eval_cfg = compose(
        [
            f"ckpt_path={tmp_path / 'run' / 'export'}",
            f"paths.data_dir={SHARED_DATA}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "stride=32",
            "logger=none",
        ],
        tmp_path / "eval",
        config_name="evaluate",
    )
    result = evaluate(eval_cfg)
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["context_length"] == 64 and summary["stride"] == 32
    assert result["test/words"] == 245_569
    assert result["test/ppl"] < 500 and result["test/word_ppl"] > result["test/ppl"]
