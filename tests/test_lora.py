"""LoRA fine-tuning (finetune=lora, Hugging Face peft) on tiny pretrained models saved locally: only the adapters
(and a classification head) train, the frozen weights stay bitwise the same, checkpoints hold only what trains
and resume exactly, and the merged export computes what the adapter model computes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import GLUE_TINY, TINY, compose
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from lmlab.checkpoints import load_model_for_eval
from lmlab.errors import ConfigError
from lmlab.models import FineTuning
from lmlab.stages.train import train

LR = ["optimizer.lr=1e-2", "scheduler.warmup_ratio=0"]  # adapters start at zero: a visible change in 4 steps


class FrozenWatch:
    """A Lightning callback (tests only) writing, at the end of fit, which parameters changed in training:
    ``{"frozen_changed": [...], "trainable_changed": [...], "trainable": [...]}`` to ``path``."""

    def __new__(cls, path: str):
        from lightning.pytorch import Callback

        class _Watch(Callback):
            def on_train_start(self, trainer, module):
                self.before = {n: p.detach().clone() for n, p in module.named_parameters()}

            def on_train_end(self, trainer, module):
                changed = {n for n, p in module.named_parameters() if not torch.equal(p, self.before[n])}
                trainable = {n for n, p in module.named_parameters() if p.requires_grad}
                Path(path).write_text(
                    json.dumps(
                        {
                            "frozen_changed": sorted(changed - trainable),
                            "trainable_changed": sorted(changed & trainable),
                            "trainable": sorted(trainable),
                        }
                    )
                )

        return _Watch()


def watch(tmp_path: Path) -> list[str]:
    return [
        "+callbacks.watch._target_=test_lora.FrozenWatch",
        f"+callbacks.watch.path={tmp_path / 'watch.json'}",
    ]


@pytest.fixture(scope="module")
def tiny_llama(small_pretrained_gpt, tmp_path_factory) -> Path:
    """A tiny Llama-style causal LM (GQA, gated MLP) saved with save_pretrained, with the GPT's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny_llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=300, max_position_embeddings=256, tie_word_embeddings=True,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    for f in small_pretrained_gpt.iterdir():
        if "token" in f.name or f.name in ("vocab.json", "merges.txt"):
            shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny BERT masked LM (the sizes of model=bert_tiny) saved with save_pretrained, without tokenizer (the
    run trains a 300-token WordPiece) and without the pooler, as lmlab's masked-LM exports."""
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=384, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
        max_position_embeddings=512,
    )  # fmt: skip
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


def clm_lora(pretrained: Path, wikitext_dir: Path, tmp_path: Path) -> list[str]:
    tiny = [o for o in TINY if not o.startswith(("model=", "tokenizer."))]
    return [
        "experiment=clm_continue", *tiny, f"model.pretrained={pretrained}", "finetune=lora", "finetune.r=4",
        *LR, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_lora_trains_adapters_only_and_exports_merged(family, request, wikitext_dir, tmp_path):
    pretrained = request.getfixturevalue("small_pretrained_gpt" if family == "gpt2" else "tiny_llama")
    run = tmp_path / "run"
    train(compose([*clm_lora(pretrained, wikitext_dir, tmp_path), *watch(tmp_path)], run))

    seen = json.loads((tmp_path / "watch.json").read_text())
    assert seen["frozen_changed"] == []
    assert seen["trainable_changed"] and all("lora_" in n for n in seen["trainable"])
    # the checkpoint holds the adapters only, and says which base they belong to
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(ckpt["state_dict"]) == set(seen["trainable"])
    assert ckpt["lmlab"]["adapter_base"]["name_or_path"] == str(pretrained)

    # the merged export is a plain HF model computing what the adapter model computes
    merged = AutoModelForCausalLM.from_pretrained(run / "export").eval()
    assert not any("lora" in k for k in merged.state_dict())
    base = AutoModelForCausalLM.from_pretrained(pretrained)
    adapter = PeftModel.from_pretrained(base, run / "export" / "adapter").eval()
    ids = torch.randint(0, 300, (2, 16))
    with torch.no_grad():
        expected = adapter(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)
        plain = AutoModelForCausalLM.from_pretrained(pretrained).eval()(input_ids=ids).logits
        assert not torch.allclose(plain, expected, atol=1e-4)  # training did change the model
        # evaluate.py's loader takes the adapter folder and the LoRA checkpoint alike
        for source in (run / "export" / "adapter", run / "checkpoints" / "last.ckpt"):
            model, _, head, _ = load_model_for_eval(str(source))
            assert head == "causal_lm"
            torch.testing.assert_close(model.eval()(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)


def test_lora_resumes_exactly(small_pretrained_gpt, wikitext_dir, tmp_path):
    overrides = [
        *clm_lora(small_pretrained_gpt, wikitext_dir, tmp_path), "finetune.dropout=0.1", "trainer.max_steps=8",
        "trainer.val_check_interval=3", "run_test=false", "export.enabled=false",
    ]  # fmt: skip
    train(compose(overrides, tmp_path / "straight"))
    train(
        compose(
            [*overrides, "+callbacks.stop._target_=conftest.StopAtStep", "+callbacks.stop.step=4"],
            tmp_path / "first",
        )
    )
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    mid = torch.load(ckpt, weights_only=True)
    assert mid["global_step"] == 4
    train(compose([*overrides, f"ckpt_path={ckpt}"], tmp_path / "resumed"))
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 8
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert any(not torch.equal(mid["state_dict"][k], a["state_dict"][k]) for k in a["state_dict"])


def test_lora_resume_needs_the_same_frozen_base(small_pretrained_gpt, wikitext_dir, tmp_path):
    from lmlab.errors import CheckpointError

    overrides = [
        *clm_lora(small_pretrained_gpt, wikitext_dir, tmp_path),
        "trainer.max_steps=2",
        "export.enabled=false",
    ]
    train(compose(overrides, tmp_path / "first"))
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="finetune=lora"):
        full = [o for o in overrides if not o.startswith("finetune")]
        train(compose([*full, f"ckpt_path={ckpt}"], tmp_path / "full"))
    other = tmp_path / "other"
    shutil.copytree(small_pretrained_gpt, other)
    model = AutoModelForCausalLM.from_pretrained(other)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    model.save_pretrained(other)
    swapped = [o if not o.startswith("model.pretrained=") else f"model.pretrained={other}" for o in overrides]
    with pytest.raises(CheckpointError, match="trained on other frozen weights"):
        train(compose([*swapped, f"ckpt_path={ckpt}", "trainer.max_steps=4"], tmp_path / "swapped"))


def test_glue_lora_keeps_the_classifier_trainable(tiny_bert, glue_dir, tmp_path):
    overrides = [
        "experiment=glue/sst2", *[o for o in GLUE_TINY if o != "model.pretrained=null"], f"model.pretrained={tiny_bert}",
        "finetune=lora", "data.max_train_samples=64", "trainer.max_epochs=1", "run_predict=false", *LR,
        f"paths.data_dir={glue_dir}", f"paths.cache_dir={tmp_path / 'cache'}", *watch(tmp_path),
    ]  # fmt: skip
    train(compose(overrides, tmp_path / "run"))
    seen = json.loads((tmp_path / "watch.json").read_text())
    assert seen["frozen_changed"] == []
    head = [n for n in seen["trainable"] if ".classifier." in n]
    assert head and all(n in seen["trainable_changed"] for n in head)
    # the pooler, not in a masked-LM checkpoint, is random: it trains in full too, and is saved with the adapter
    pooler = {n for n in seen["trainable"] if ".pooler.dense.modules_to_save." in n}
    assert {n for n in seen["trainable"] if "lora_" not in n} == set(head) | pooler and pooler
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "export")
    assert merged.config.num_labels == 2
    model, _, head_name, _ = load_model_for_eval(str(tmp_path / "run" / "export" / "adapter"))
    assert head_name == "sequence_classification"
    ids = torch.randint(5, 300, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(input_ids=ids).logits, merged.eval()(input_ids=ids).logits)


class _MetaFactory:
    """The part of ModelFactory that FineTuning.check reads, around a given meta model."""

    implementation, pretrained = "hf", "tiny"

    def __init__(self, model):
        self.model = model

    def meta_model(self, head):
        return self.model

    def describe(self):
        return "tiny"


def _meta(model_type: str, **config):
    from transformers import AutoConfig

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config))


def test_default_targets_per_family():
    gpt = FineTuning("lora").check(_MetaFactory(_meta("gpt2", n_layer=1, n_embd=16, n_head=2)), "causal_lm")
    assert gpt.target_modules == {"c_attn", "c_proj", "c_fc"} and gpt.fan_in_fan_out
    llama = _meta("llama", num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2)
    config = FineTuning("lora").check(_MetaFactory(llama), "causal_lm")
    assert config.target_modules == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert FineTuning("full").check(_MetaFactory(llama), "causal_lm") is None


def test_bad_lora_settings_are_config_errors():
    opt = _meta(
        "opt", num_hidden_layers=1, hidden_size=16, ffn_dim=32, num_attention_heads=2, word_embed_proj_dim=16
    )
    with pytest.raises(
        ConfigError, match=r"no default target modules for model_type=opt.*finetune.target_modules="
    ):
        FineTuning("lora").check(_MetaFactory(opt), "causal_lm")
    assert FineTuning("lora", target_modules=["q_proj"]).check(_MetaFactory(opt), "causal_lm")
    with pytest.raises(ConfigError, match=r"\['qkv'\] match no layer.*c_attn, c_fc, c_proj"):
        FineTuning("lora", target_modules=["qkv"]).check(
            _MetaFactory(_meta("gpt2", n_layer=1, n_embd=16, n_head=2)), "causal_lm"
        )
    with pytest.raises(ConfigError, match="cannot adapt"):
        FineTuning("lora", target_modules=["ln_f"]).check(
            _MetaFactory(_meta("gpt2", n_layer=1, n_embd=16, n_head=2)), "causal_lm"
        )
    for r in (0, -2):
        with pytest.raises(ConfigError, match=f"finetune.r={r} must be a positive integer"):
            FineTuning("lora", r=r)
    with pytest.raises(ConfigError, match="finetune.method='qlora'"):
        FineTuning("qlora")
