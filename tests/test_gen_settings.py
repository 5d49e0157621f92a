"""Decoding settings are validated up front and passed explicitly; records are counted once under DDP."""

import os

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from lmlab.decoding.records import GenerationRecord, RecordCollector, score_records
from lmlab.decoding.settings import GenerationSettings, merge_settings
from lmlab.errors import ConfigError
from lmlab.metrics.generated_text import TextMetricOptions


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_beams": 0}, "num_beams=0 must be at least 1"),
        ({"top_p": 0.0, "do_sample": True}, r"top_p=0.0 must be in \(0, 1\]"),
        ({"top_p": 1.2, "do_sample": True}, r"top_p=1.2 must be in \(0, 1\]"),
        ({"top_k": -1, "do_sample": True}, "top_k=-1 must be >= 0"),
        ({"temperature": 0, "do_sample": True}, "temperature=0 must be > 0"),
        (
            {"temperature": 0.7},
            "only apply when sampling, but do_sample=false; set task.generation.do_sample=true",
        ),
        ({"length_penalty": 0.8}, "length_penalty=0.8 only applies to beam search"),
        (
            {"min_new_tokens": 9, "max_new_tokens": 8},
            "min_new_tokens=9 must be between 0 and max_new_tokens=8",
        ),
        ({"max_new_tokens": 0}, "max_new_tokens=0 must be at least 1"),
        ({"repetition_penalty": 0}, "repetition_penalty=0 must be > 0"),
        ({"beams": 4}, r"unknown setting\(s\) \['beams'\]"),
    ],
)
def test_contradictory_or_invalid_settings(values, message):
    with pytest.raises(ConfigError, match=message):
        GenerationSettings.from_config(values)


def test_generation_config_is_explicit():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20))
    model.generation_config.num_beams = 5  # a model's own defaults never leak into our settings
    tokenizer = type("Tok", (), {"eos_token_id": 3, "pad_token_id": 4})()
    greedy = GenerationSettings.from_config({"max_new_tokens": 7}).generation_config(model, tokenizer)
    assert (greedy.num_beams, greedy.do_sample, greedy.max_new_tokens, greedy.eos_token_id) == (
        1,
        False,
        7,
        3,
    )
    sampled = GenerationSettings.from_config({"do_sample": True, "top_p": 0.9}).generation_config(
        model, tokenizer
    )
    assert (sampled.top_p, sampled.top_k, sampled.temperature) == (0.9, 0, 1.0)  # null knobs are off
    assert (
        "sampling (temperature=1.0, top_k=0, top_p=0.9)"
        in GenerationSettings(do_sample=True, top_p=0.9).describe()
    )


def test_evaluate_overrides_drop_the_trained_knobs_they_make_meaningless():
    trained = {"num_beams": 4, "length_penalty": 0.6, "do_sample": False, "max_new_tokens": 32}
    merged = merge_settings(trained, {"num_beams": 1, "top_p": None})
    assert merged == {"num_beams": 1, "do_sample": False, "max_new_tokens": 32}
    GenerationSettings.from_config(merged)
    sampled = merge_settings({"do_sample": True, "temperature": 0.7}, {"do_sample": False})
    assert "temperature" not in sampled
    with pytest.raises(ConfigError):  # given explicitly, a contradiction is still an error
        GenerationSettings.from_config(merge_settings(trained, {"num_beams": 1, "length_penalty": 2.0}))


RECORDS = [
    GenerationRecord(i, f"s{i}", [f"the cat {i} sat down"], f"the cat {i % 3} sat", 5) for i in range(7)
]


def _rank(rank: int, world: int, port: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    # DistributedSampler's shards of 7 examples on 2 ranks: [0, 2, 4, 6] and [1, 3, 5, 0] (padded with a repeat)
    shard = [RECORDS[i % 7] for i in range(rank, 8, world)]
    collector = RecordCollector()
    collector.add(shard)
    records = collector.gather()
    out[rank] = ([r.index for r in records], score_records(records, TextMetricOptions())[0])
    dist.destroy_process_group()


def test_ddp_ranks_count_every_example_once():
    port = str(29500 + os.getpid() % 1000)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.start_processes(_rank, args=(2, port, out), nprocs=2, join=True, start_method="fork")
        results = dict(out)
    single = score_records(RECORDS, TextMetricOptions())[0]
    for rank in (0, 1):
        indices, scores = results[rank]
        assert indices == list(range(7))
        assert scores == single
