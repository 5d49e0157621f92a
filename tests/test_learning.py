"""Training works, not just runs: on corpora with known entropy the loss falls far below its start."""

import math

from conftest import compose, markov_entropy

from lmlab.stages.train import train

LEARN = [
    "trainer.max_steps=300",
    "trainer.val_check_interval=300",
    "trainer.limit_val_batches=null",
    "trainer.log_every_n_steps=50",
    "optimizer.lr=3e-3",
    "data.block_size=64",
    "data.batch_size=16",
    "run_test=false",
    "export.enabled=false",
]


def test_causal_lm_learns_markov_chain(tiny_overrides, tmp_path):
    cfg = compose([*tiny_overrides, *LEARN], tmp_path / "run")
    metrics = train(cfg)
    start = math.log(400)  # a fresh model predicts roughly uniformly over the vocabulary
    entropy = markov_entropy()  # 0.90 nats per word; one word is one token with this tokenizer
    assert metrics["val/loss"] < start / 4
    # Near the entropy rate of the chain (newline and title tokens make the per-token floor a bit lower).
    assert metrics["val/loss"] < entropy + 0.35, metrics
    assert metrics["val/acc"] > 0.45  # the most likely successor has probability 0.6


def test_masked_lm_learns_topics(topic_wikitext_dir, tmp_path):
    overrides = [
        f"paths.data_dir={topic_wikitext_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "experiment=mlm_wikitext2",
        *[o for o in compose.__globals__["TINY"] if not o.startswith("model=")],
        "model=bert_tiny",
        *LEARN,
        "optimizer.lr=1e-3",
        "data.block_size=32",
    ]
    metrics = train(compose(overrides, tmp_path / "run"))
    unigram = math.log(12)  # 2.48: what a model that ignores the context can reach
    floor = math.log(3)  # 1.10: a word is one of its topic's 3 words, uniformly
    assert metrics["val/loss"] < unigram - 0.6, metrics
    assert metrics["val/loss"] < floor + 0.5, metrics
