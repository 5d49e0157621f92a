"""Continuation evaluation of pretrained causal LMs: from evaluate.py, and as an optional pretraining callback."""

import json

import numpy as np
import pytest
from conftest import compose

from lmlab.errors import ConfigError
from lmlab.evaluation.continuation import continuation_starts
from lmlab.stages.evaluate import evaluate
from lmlab.stages.train import train


def test_passages_are_spread_and_stay_inside_documents():
    tokens = np.arange(100) % 50  # token 0 at positions 0 and 50: a document boundary
    starts = continuation_starts(tokens, span=10, samples=100, separator_id=0)
    assert starts == [10, 20, 30, 40, 60, 70, 80, 90]  # windows 0 and 5 hold the separator
    assert continuation_starts(tokens, 10, 3, separator_id=0) == [10, 60, 90]  # evenly over the 8 valid ones
    with pytest.raises(ConfigError, match="fewer than one passage"):
        continuation_starts(tokens[:5], 10, 3, None)


def test_evaluate_continuation(small_pretrained_gpt, wikitext_dir, tmp_path):
    overrides = [f"ckpt_path={small_pretrained_gpt}", "evaluation=continuation", "data=wikitext2",
                 f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}", "logger=none",
                 "continuation.samples=12", "continuation.prompt_tokens=16", "continuation.new_tokens=8"]  # fmt: skip
    metrics = evaluate(compose(overrides, tmp_path / "run", config_name="evaluate"))
    assert metrics["test/gen_len"] == 8  # exactly new_tokens: min_new_tokens = max_new_tokens
    assert 0 <= metrics["test/bleu"] <= 100 and 0 <= metrics["test/rep_ngram"] <= 1
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["evaluation"] == "continuation" and summary["examples"] == 12
    assert summary["generation"]["min_new_tokens"] == 8 and summary["prompt_tokens"] == 16
    records = [json.loads(x) for x in (tmp_path / "run" / "predictions" / "continuation_test.jsonl").open()]
    assert len(records) == 12 and all(r["references"][0] for r in records)
    # the reference continues the prompt in the test text
    text = "".join((wikitext_dir / "wikitext-2" / "wiki.test.tokens").read_text().split())
    for r in records:  # (without whitespace: a passage may end inside a word)
        assert "".join((r["source"] + r["references"][0]).split()) in text
    with pytest.raises(ConfigError, match="language-model data"):
        evaluate(
            compose(
                [*overrides[:2], "data=multi30k", "logger=none"], tmp_path / "bad", config_name="evaluate"
            )
        )


def test_continuation_callback_during_pretraining(tiny_overrides, tmp_path):
    overrides = [*tiny_overrides, "callbacks=continuation", "callbacks.continuation.every_n_validations=2",
                 "callbacks.continuation.samples=6", "callbacks.continuation.prompt_tokens=8",
                 "callbacks.continuation.new_tokens=4"]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert {"val/cont_bleu", "val/cont_rougeL", "val/cont_distinct_2", "val/cont_rep_ngram"} <= set(metrics)
    assert metrics["val/cont_gen_len"] == 4
    rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    logged = [r.split(",")[header.index("val/cont_bleu")] for r in rows[1:]]
    assert sum(bool(x) for x in logged) == 1  # validations at steps 2 and 4: the 2nd of them only
