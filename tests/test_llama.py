"""The Llama-style presets: documented sizes, exports that load as plain Hugging Face models and compute the
trained model's logits, and the MLP / QK-norm choices mapped onto the exact Hugging Face classes."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, compose, markov_text
from hydra.utils import instantiate
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmlab.errors import ConfigError
from lmlab.models import LlamaFactory, count_parameters
from lmlab.stages.train import train

# preset -> (vocabulary after padding, parameters in all, without the input embeddings), as in the YAML
# comments: the default 8192-token BPE vocabulary for the CPU presets, GPT-2's (padded to 50304) for the others
DOCUMENTED = {
    "llama_tiny": (8192, 622_912, 98_624),
    "llama_small": (8192, 5_245_184, 3_148_032),
    "llama_125m": (50304, 123_587_328, 84_953_856),
    "gpt_tiny": (8192, 657_152, 132_864),
    "gpt_small": (8192, 5_518_848, 3_421_696),
    "gpt2_124m": (50304, 124_475_904, 85_842_432),
}


@pytest.mark.parametrize("preset", sorted(DOCUMENTED))
def test_parameter_counts_are_the_documented_ones(preset, tmp_path):
    vocab, total, non_embedding = DOCUMENTED[preset]
    factory = instantiate(compose([f"model={preset}"], tmp_path).model)
    factory.check("causal_lm", block_size=128)
    config = factory.hf_config()
    config.vocab_size = vocab
    with torch.device("meta"):  # sizes only: no memory, no time, also for the 125M preset
        model = AutoModelForCausalLM.from_config(config)
    counts = count_parameters(model)
    assert (counts["params/total"], counts["params/non_embedding"]) == (total, non_embedding)
    if preset.startswith("llama"):
        comment = (CONF / "model" / f"{preset}.yaml").read_text()
        assert f"{total:,}" in comment and f"{non_embedding:,}" in comment


@pytest.mark.parametrize(
    ("mlp", "qk_norm", "model_type", "act"),
    [
        ("swiglu", False, "llama", "silu"),
        ("geglu", False, "llama", "gelu"),
        ("relu2", False, "arcee", "relu2"),
        ("gelu", False, "arcee", "gelu"),
        ("swiglu", True, "qwen3", "silu"),
    ],
)
def test_mlp_and_qk_norm_pick_the_exact_class(mlp, qk_norm, model_type, act, tmp_path):
    cfg = compose(["model=llama_tiny", f"model.mlp={mlp}", f"model.qk_norm={qk_norm}"], tmp_path)
    factory = instantiate(cfg.model)
    factory.check("causal_lm", block_size=128)
    config = factory.hf_config()
    assert (config.model_type, config.hidden_act) == (model_type, act)
    assert (config.num_key_value_heads, config.head_dim, config.tie_word_embeddings) == (2, 16, True)
    assert config.rope_parameters["rope_theta"] == 10000.0
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    layer = model.model.layers[0]
    assert hasattr(layer.mlp, "gate_proj") == (mlp in ("swiglu", "geglu"))
    assert hasattr(layer.self_attn, "q_norm") == qk_norm
    assert layer.self_attn.k_proj.weight.shape == (2 * 16, 64)  # grouped-query: 2 key/value heads of 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mlp": "swish"}, "model.mlp='swish' is not a known MLP type"),
        ({"mlp": "relu2", "qk_norm": True}, "model.qk_norm=true with model.mlp=relu2"),
        ({"config": {"hidden_act": "relu"}}, "set model.mlp"),
        ({"config": {"num_kv_heads": 2}}, "model.config.num_kv_heads is not a field of LlamaConfig"),
        (
            {"qk_norm": True, "config": {"mlp_bias": True}},
            "model.config.mlp_bias is not a field of Qwen3Config",
        ),
        ({"pretrained": "gpt2"}, "model=pretrained"),
    ],
)
def test_settings_no_class_computes_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        LlamaFactory(**kwargs)


@pytest.mark.parametrize(
    ("preset", "extra", "cls"),
    [
        ("llama_tiny", [], "LlamaForCausalLM"),
        ("llama_tiny", ["model.mlp=relu2"], "ArceeForCausalLM"),
        ("llama_tiny", ["model.mlp=geglu", "model.qk_norm=true"], "Qwen3ForCausalLM"),
        ("llama_small", [], "LlamaForCausalLM"),
    ],
    ids=["tiny", "tiny-relu2", "tiny-qknorm", "small"],
)
def test_export_is_a_plain_hf_model_with_the_trained_logits(preset, extra, cls, tiny_overrides, tmp_path):
    overrides = [o for o in tiny_overrides if not o.startswith("model=")]
    overrides += [f"model={preset}", *extra, "trainer.max_steps=3", "run_test=false", "export.weights=last"]
    cfg = compose(overrides, tmp_path / "run")
    train(cfg)
    export = tmp_path / "run" / "export"
    exported = AutoModelForCausalLM.from_pretrained(export).eval()
    assert type(exported).__name__ == cls

    # the training module's model with its final weights, built as the run built it
    tokenizer = AutoTokenizer.from_pretrained(export)
    trained = instantiate(cfg.model).build("causal_lm", tokenizer)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    trained.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    trained.eval()
    ids = torch.tensor([tokenizer(markov_text(4, seed=5))["input_ids"][:32]])
    with torch.no_grad():
        torch.testing.assert_close(exported(ids).logits, trained(ids).logits, rtol=0, atol=1e-5)
    assert exported.get_output_embeddings().weight is exported.get_input_embeddings().weight  # tied


def test_125m_preset_exports_without_training(tmp_path):
    """The GPU preset at full size (with a small vocabulary): built, exported, loaded, the same logits."""
    from lmlab.checkpoints import export_hf
    from lmlab.data.tokenizer import TrainedTokenizer

    lines = iter([(line + "\n", False) for line in markov_text(100, seed=9).splitlines()])
    tokenizer = TrainedTokenizer("bpe", vocab_size=300, min_frequency=1).train(lines)
    torch.manual_seed(0)
    model = instantiate(compose(["model=llama_125m"], tmp_path).model).build("causal_lm", tokenizer).eval()
    assert count_parameters(model)["params/non_embedding"] == DOCUMENTED["llama_125m"][2]
    export_hf(model, tokenizer, tmp_path / "export", "causal_lm", {})
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "export").eval()
    ids = torch.tensor([tokenizer(markov_text(2, seed=5))["input_ids"][:16]])
    with torch.no_grad():
        torch.testing.assert_close(exported(ids).logits, model(ids).logits, rtol=0, atol=1e-5)
