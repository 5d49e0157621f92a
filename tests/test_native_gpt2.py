"""model.implementation=native: the lean GPT-2 computes what Hugging Face's GPT2LMHeadModel computes, on the
very same weights, and round-trips through save_pretrained / from_pretrained."""

import pytest
import torch
from conftest import compose
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from lmlab.checkpoints import load_model_for_eval
from lmlab.errors import ConfigError
from lmlab.models import ModelFactory
from lmlab.models.native_gpt2 import NativeGPT2LMHeadModel
from lmlab.stages.train import train


def _pair(seed: int = 0, **config):
    """A Hugging Face GPT-2 with random weights, and a native model holding a copy of the same weights."""
    torch.manual_seed(seed)
    fields = dict(n_layer=3, n_embd=48, n_head=4, vocab_size=97, n_positions=40, resid_pdrop=0.0)
    fields.update(embd_pdrop=0.0, attn_pdrop=0.0, **config)
    hf = GPT2LMHeadModel._from_config(GPT2Config(**fields), attn_implementation="sdpa")
    twin = GPT2LMHeadModel._from_config(hf.config, attn_implementation="sdpa")
    twin.load_state_dict(hf.state_dict())
    return hf.eval(), NativeGPT2LMHeadModel.from_hf(twin).eval()


@pytest.mark.parametrize(
    "config, atol",
    [
        ({}, 1e-5),  # gelu_new: HF's five-op tanh GELU vs PyTorch's fused one (differ by < 3e-7)
        ({"activation_function": "gelu"}, 1e-6),
        ({"scale_attn_by_inverse_layer_idx": True, "n_inner": 80}, 1e-5),
    ],
)
def test_logits_loss_and_gradients_equal_hugging_face(config, atol):
    hf, native = _pair(**config)
    ids = torch.randint(0, 97, (3, 40))
    a, b = hf(input_ids=ids, labels=ids), native(input_ids=ids, labels=ids)
    assert torch.allclose(a.logits, b.logits, atol=atol, rtol=0)
    assert abs(a.loss.item() - b.loss.item()) < atol
    a.loss.backward()
    b.loss.backward()
    grads = dict(native.named_parameters())
    for name, p in hf.named_parameters():
        assert torch.allclose(p.grad, grads[name].grad, atol=1e-4, rtol=1e-3), name


def test_padding_and_positions_match_hugging_face_on_real_tokens():
    hf, native = _pair()
    ids = torch.randint(0, 97, (2, 12))
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # right padding
    mask[1, :3] = 0  # left padding, with positions counting real tokens (as task=causal_seq2seq does)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        a = hf(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        b = native(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    real = mask.bool()
    assert torch.allclose(a[real], b[real], atol=1e-5, rtol=0)


def test_state_dict_is_a_gpt2_state_dict_and_weights_are_shared_not_copied():
    hf, native = _pair()
    assert list(native.state_dict()) == list(hf.state_dict())
    assert {k: v.shape for k, v in native.state_dict().items()} == {
        k: v.shape for k, v in hf.state_dict().items()
    }
    assert native.lm_head.weight is native.transformer.wte.weight
    view = native.hf_view()
    assert view.transformer.h[0].attn.c_attn.weight is native.transformer.h[0].attn.c_attn.weight
    loaded = GPT2LMHeadModel(hf.config)
    loaded.load_state_dict(native.state_dict())  # a native checkpoint loads into the HF class as it is
    ids = torch.randint(0, 97, (1, 10))
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(input_ids=ids).logits, native(input_ids=ids).logits, atol=1e-5)


def test_export_round_trips_through_auto_model(tmp_path):
    _, native = _pair()
    with torch.no_grad():
        for p in native.parameters():
            p.add_(0.01 * torch.randn_like(p))  # weights the HF initializer could not reproduce
    native.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert type(loaded) is GPT2LMHeadModel
    assert loaded.config.architectures == ["GPT2LMHeadModel"]
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, native(input_ids=ids).logits, atol=1e-5, rtol=0)
    again = NativeGPT2LMHeadModel.from_hf(loaded)
    for (name, p), q in zip(again.state_dict().items(), native.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_generate_equals_hugging_face_greedy():
    hf, native = _pair()
    prompt = torch.randint(0, 97, (2, 5))
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(hf.generate(prompt, **kwargs), native.generate(prompt, **kwargs))


def test_factory_builds_native_and_rejects_what_it_cannot_compute(tiny_overrides, tmp_path):
    factory = ModelFactory(
        model_type="gpt2", config={"n_layer": 1, "n_embd": 32, "n_head": 2}, implementation="native"
    )
    factory.check("causal_lm", 64)
    with pytest.raises(ConfigError, match="masked_lm"):
        factory.check("masked_lm", 64)
    with pytest.raises(ConfigError, match="model_type=bert"):
        ModelFactory(model_type="bert", implementation="native").check("causal_lm", 64)
    with pytest.raises(ConfigError, match="activation_function"):
        ModelFactory(
            model_type="gpt2", config={"activation_function": "tanh"}, implementation="native"
        ).check("causal_lm", 64)
    with pytest.raises(ConfigError, match="hf or native"):
        ModelFactory(model_type="gpt2", implementation="fast")


def test_native_pretraining_run_exports_hugging_face_gpt2(tiny_overrides, tmp_path):
    cfg = compose([*tiny_overrides, "model.implementation=native", "trainer.max_steps=6"], tmp_path / "run")
    metrics = train(cfg)
    assert metrics["val/loss"] < 7.0
    export = tmp_path / "run" / "export"
    model = AutoModelForCausalLM.from_pretrained(export)
    assert type(model) is GPT2LMHeadModel
    ckpt = next((tmp_path / "run" / "checkpoints").glob("step*.ckpt"))
    from_ckpt, _, head, _ = load_model_for_eval(str(ckpt))  # a native checkpoint holds GPT-2 weights
    assert head == "causal_lm" and type(from_ckpt) is GPT2LMHeadModel


def test_bias_free_equals_hugging_face_with_zero_biases_and_keeps_them_out_of_training():
    hf, native = _pair(bias=False)  # nanoGPT's bias=False: HF GPT-2 computes the same with zero biases
    ids = torch.randint(0, 97, (3, 40))
    assert torch.allclose(hf(input_ids=ids).logits, native(input_ids=ids).logits, atol=1e-6, rtol=0)
    biases = {n: p for n, p in native.named_parameters() if n.endswith(".bias")}
    assert len(biases) == 3 * 6 + 1 and not any(p.requires_grad for p in biases.values())
    native.train()
    opt = torch.optim.AdamW([p for p in native.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        native(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    assert all(not p.any() for p in biases.values())  # still zero: an export is exactly this model
    with torch.no_grad():
        assert torch.allclose(
            native.hf_view()(input_ids=ids).logits, native(input_ids=ids).logits, atol=1e-5, rtol=0
        )


def test_bias_free_rejects_nonzero_biases_and_the_hf_implementation():
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, bias=False))
    with torch.no_grad():
        hf.transformer.h[0].mlp.c_fc.bias.fill_(0.1)  # e.g. pretrained GPT-2 weights
    with pytest.raises(ConfigError, match=r"nonzero transformer\.h\.0\.mlp\.c_fc\.bias"):
        NativeGPT2LMHeadModel.from_hf(hf)
    config = {"n_layer": 1, "n_embd": 32, "n_head": 2, "bias": False}
    with pytest.raises(ConfigError, match="model.implementation=native"):
        ModelFactory(model_type="gpt2", config=config, implementation="hf").check("causal_lm", 64)
    ModelFactory(model_type="gpt2", config=config, implementation="native").check("causal_lm", 64)


def test_bias_free_pretraining_run(tiny_overrides, tmp_path):
    overrides = ["model.implementation=native", "model.config.bias=false", "trainer.max_steps=6"]
    train(compose([*tiny_overrides, *overrides], tmp_path / "run"))
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    biases = [k for k in state if k.endswith(".bias")]
    assert biases and all(not state[k].any() for k in biases)
    assert any(state[k].abs().sum() > 0 for k in state if k.endswith("ln_f.weight"))
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "export")
    assert type(model) is GPT2LMHeadModel and model.config.bias is False
