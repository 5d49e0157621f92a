"""Instruction data: chat-template rendering (the tokenizer's own, else the plain one), loss on assistant turns
only, a clear error for an unknown role, and LoRA instruction tuning end to end (experiment=instruct)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import compose
from gen_fixtures import GEN_TINY, write_preset_layouts
from test_cli import run_cli
from transformers import AutoTokenizer

from lmlab.data.chat_render import PLAIN_CHAT_TEMPLATE, ChatEncoder, render, use_chat_template
from lmlab.data.seq2seq_batches import PairCollator, ensure_pad_and_eos
from lmlab.data.sources import InstructionSource
from lmlab.errors import DataError
from lmlab.stages.train import train
from lmlab.tasks.token_loss import token_cross_entropy

SIMPLE_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "alpha bravo"},
    {"role": "assistant", "content": "charlie"},
    {"role": "user", "content": "delta echo"},
    {"role": "assistant", "content": "foxtrot golf"},
]
PAIR = {"prompt": "hotel india", "response": "juliet kilo"}


@pytest.fixture
def tokenizer(small_pretrained_gpt):
    tok = AutoTokenizer.from_pretrained(small_pretrained_gpt)
    ensure_pad_and_eos(tok)
    return tok


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def chats(tmp_path, records):
    source = InstructionSource({"train": str(write_jsonl(tmp_path / "train.jsonl", records))})
    source.check(["train"])
    return source.pairs("train")


def test_plain_template_when_the_tokenizer_has_none(tokenizer, tmp_path):
    assert not tokenizer.chat_template
    use_chat_template(tokenizer)
    assert tokenizer.chat_template == PLAIN_CHAT_TEMPLATE
    pair, chat = chats(tmp_path, [PAIR, {"messages": CHAT}])
    segments = render(tokenizer, pair.messages, pair.where)
    assert "".join(s.text for s in segments) == (
        "### Instruction:\nhotel india\n\n### Response:\njuliet kilo<|endoftext|>"
    )
    segments = render(tokenizer, chat.messages, chat.where)
    assert "".join(s.text for s in segments) == (
        "Be brief.\n\n### Instruction:\nalpha bravo\n\n### Response:\ncharlie<|endoftext|>"
        "\n\n### Instruction:\ndelta echo\n\n### Response:\nfoxtrot golf<|endoftext|>"
    )
    assert [s.text for s in segments if s.trained] == ["charlie<|endoftext|>", "foxtrot golf<|endoftext|>"]
    assert (pair.source, pair.references, chat.source, chat.references) == (
        "hotel india", ["juliet kilo"], "delta echo", ["foxtrot golf"],
    )  # fmt: skip


def test_the_tokenizers_own_chat_template_is_used(tokenizer, tmp_path):
    tokenizer.chat_template = SIMPLE_TEMPLATE
    use_chat_template(tokenizer)
    assert tokenizer.chat_template == SIMPLE_TEMPLATE
    (chat,) = chats(tmp_path, [{"messages": CHAT}])
    segments = render(tokenizer, chat.messages, chat.where)
    assert "".join(s.text for s in segments) == (
        "<|system|>\nBe brief.\n<|user|>\nalpha bravo\n<|assistant|>\ncharlie\n"
        "<|user|>\ndelta echo\n<|assistant|>\nfoxtrot golf\n"
    )
    assert [s.text for s in segments if s.trained] == ["charlie\n", "foxtrot golf\n"]


@pytest.mark.parametrize("template", [None, SIMPLE_TEMPLATE])
def test_loss_only_on_assistant_tokens(template, tokenizer, tmp_path):
    """Labels are the ids on every assistant turn and -100 elsewhere; the prompt of the final turn is what
    generation starts from; logits at prompt positions get no gradient."""
    tokenizer.chat_template = template
    use_chat_template(tokenizer)
    eos = tokenizer.eos_token_id
    records = chats(tmp_path, [{"messages": CHAT}, PAIR])
    features = ChatEncoder(tokenizer, 128, 32).encode(records, "train")
    batch = PairCollator(tokenizer)(features)
    for row, (record, feature) in enumerate(zip(records, features, strict=True)):
        segments = render(tokenizer, record.messages, record.where)
        expected = []
        for s in segments:
            ids = tokenizer(s.text, add_special_tokens=False)["input_ids"]
            expected += [(i, s.trained) for i in ids]
        if expected[-1][0] != eos:
            expected.append((eos, True))  # the final turn ends with EOS, added where the template has none
        n = len(expected)
        assert batch["input_ids"][row, :n].tolist() == [i for i, _ in expected]
        assert batch["labels"][row, :n].tolist() == [i if trained else -100 for i, trained in expected]
        assert (batch["labels"][row, n:] == -100).all()
        prompt = tokenizer.decode(batch["prompt_ids"][row][batch["prompt_attention_mask"][row].bool()])
        assert prompt == "".join(s.text for s in segments[:-1])
        prompt_ids = tokenizer([x.text for x in segments[:-1]], add_special_tokens=False)["input_ids"]
        assert feature["prompt_len"] == sum(map(len, prompt_ids))
    # The shift the decoder-only task applies: no gradient reaches the logits that predict prompt tokens.
    logits = torch.randn(*batch["input_ids"].shape, len(tokenizer), requires_grad=True)
    targets = F.pad(batch["labels"][:, 1:], (0, 1), value=-100)
    token_cross_entropy(logits, targets).backward()
    scored = logits.grad.abs().sum(-1) > 0
    assert torch.equal(scored, targets != -100)
    assert scored.any()


def test_prompt_template_fills_columns_and_a_system_prompt_comes_first(tmp_path):
    path = write_jsonl(tmp_path / "alpaca.jsonl", [{"instruction": "Add.", "input": "1 2", "output": "3"}])
    source = InstructionSource(
        {"train": str(path)}, prompt_template="{instruction}\n\n{input}", response_column="output",
        system_prompt="Be exact.",
    )  # fmt: skip
    source.check(["train"])
    (chat,) = source.pairs("train")
    assert chat.messages == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Add.\n\n1 2"},
        {"role": "assistant", "content": "3"},
    ]
    bad = InstructionSource({"train": str(path)}, prompt_template="{question}", response_column="output")
    with pytest.raises(DataError, match=r"alpaca.jsonl:1: no column\(s\) \['question'\]"):
        bad.check(["train"])


def test_a_long_prompt_loses_the_end_of_its_last_user_message(tokenizer, tmp_path):
    use_chat_template(tokenizer)
    long = {"prompt": " ".join(["alpha bravo"] * 40), "response": "juliet"}
    (feature,) = ChatEncoder(tokenizer, 48, 8).encode(chats(tmp_path, [long]), "train")
    prompt = tokenizer.decode(feature["input_ids"][: feature["prompt_len"]])
    assert feature["prompt_len"] == 48
    assert prompt.startswith("### Instruction:\nalpha bravo") and prompt.endswith("\n\n### Response:\n")


def instruct_args(tmp_path, model, train_file, *extra):
    return [
        "experiment=instruct",
        f"model.pretrained={model}",
        *GEN_TINY,
        f"data.source.files.train={train_file}",
        f"data.source.files.validation={train_file}",
        "data.max_source_length=64",
        "data.max_target_length=16",
        "data.batch_size=4",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "task.val_generate_samples=4",
        "task.generation.max_new_tokens=6",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *extra,
    ]


def test_unknown_role_stops_with_one_message(tmp_path, small_pretrained_gpt):
    """In-process (train.py turns a DataError into its message and exit code 2: tests/test_bad_input_cli.py)."""
    bad = [{"messages": CHAT}, {"messages": [{"role": "human", "content": "hi"}, *CHAT[2:3]]}]
    path = write_jsonl(tmp_path / "chats.jsonl", bad)
    args = [a for a in instruct_args(tmp_path, small_pretrained_gpt, path) if not a.startswith("hydra.")]
    expected = f"{path}:2: message 0 has role 'human'; allowed roles are system, user, assistant"
    with pytest.raises(DataError) as error:
        train(compose(args, tmp_path / "run"))
    assert expected in str(error.value)
    assert not (tmp_path / "run" / "export").exists()


def test_lora_instruction_tuning_end_to_end(tmp_path, small_pretrained_gpt):
    """train.py experiment=instruct (LoRA by default) on chats and pairs: trains, scores, exports the merged
    model, its adapter and the tokenizer with the template it was trained with."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    records = [
        {"prompt": f"repeat {words[i % 6]} {words[(i + 1) % 6]}", "response": f"{words[i % 6]} {words[(i + 1) % 6]}"}
        if i % 2
        else {"messages": [*CHAT[:3], {"role": "user", "content": f"next {words[i % 6]}"},
                           {"role": "assistant", "content": words[(i + 1) % 6]}]}
        for i in range(16)
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "train.jsonl", records)
    result = run_cli(
        "train.py", instruct_args(tmp_path, small_pretrained_gpt, path, "finetune=lora"), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert "val/rougeL" in json.dumps(metrics) and "val/loss" in json.dumps(metrics)
    assert (run / "export" / "config.json").is_file()
    assert (run / "export" / "adapter").is_dir()
    exported = AutoTokenizer.from_pretrained(run / "export")
    assert exported.chat_template == PLAIN_CHAT_TEMPLATE


def test_dialogsum_instruction_recipe(tmp_path, small_pretrained_gpt):
    """experiment=instruct_dialogsum on the DialogSum layout: the instruction wraps each dialogue, and the
    test split is scored with ROUGE against its three references."""
    data_dir = write_preset_layouts(tmp_path / "data")
    overrides = [
        "experiment=instruct_dialogsum", f"model.pretrained={small_pretrained_gpt}", *GEN_TINY,
        "data.max_source_length=64", "data.max_target_length=16", "data.batch_size=4",
        "data.max_eval_samples=4", "data.max_test_samples=4", "trainer.max_steps=2",
        "trainer.val_check_interval=2", "task.val_generate_samples=4", "task.generation.max_new_tokens=6",
        "task.generation.num_beams=1", f"paths.data_dir={data_dir}", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert {"test/rouge1", "test/rougeLsum", "val/loss"} <= set(metrics)
    test = [json.loads(x) for x in (tmp_path / "run" / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(test) == 4 and len(test[0]["references"]) == 3
    assert test[0]["source"].startswith("Summarize the dialogue.\n\n#Person1#: Hello")


def test_instruction_tuning_learns_a_copy_task(tmp_path, small_pretrained_gpt):
    """ "repeat <a> <b>" -> "<a> <b>": the response is fully determined by the prompt, so the response-only loss
    falls far below its start (about ln 257 ≈ 5.5 nats after one step) and generations start to match."""
    from conftest import WORDS

    rows = [{"prompt": f"repeat {a} {b}", "response": f"{a} {b}"} for a in WORDS for b in WORDS]
    path = write_jsonl(tmp_path / "copy.jsonl", rows)
    overrides = [
        "experiment=instruct", f"model.pretrained={small_pretrained_gpt}", *GEN_TINY, "finetune=full",
        f"data.source.files.train={path}", f"data.source.files.validation={path}", "data.max_eval_samples=32",
        "data.max_source_length=64", "data.max_target_length=16", "data.batch_size=16", "optimizer.lr=3e-3",
        "trainer.max_steps=150", "trainer.val_check_interval=150", "task.val_generate_samples=8",
        "task.generation.max_new_tokens=8", "run_test=false", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert metrics["val/loss"] < 1.5
    assert metrics["val/rouge1"] > 25
