"""optimizer=muon: Muon on the hidden matrices and AdamW on the rest, as one optimizer whose checkpoints carry
both states exactly; a Llama-style model learns with it, and a killed run resumes to the same weights."""

from __future__ import annotations

import copy
import io
import math
from functools import partial

import pytest
import torch
from conftest import compose, markov_entropy
from lightning.pytorch.strategies import FSDPStrategy
from test_resume import resume_after_kill
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from lmlab.errors import CheckpointError, ConfigError
from lmlab.optim import MuonAdamW, build_optimizer, build_scheduler, hidden_matrices
from lmlab.stages.train import train

MUON = {"lr": 0.02, "momentum": 0.95, "weight_decay": 0.01}
ADAMW = {"lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.1, "fused": None}


def _llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=50, tie_word_embeddings=True, max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def _train_steps(model, optimizer, steps, seed, scheduler=None):
    for step in range(steps):
        torch.manual_seed(seed + step)
        ids = torch.randint(0, 50, (4, 16))
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()


def test_muon_gets_the_hidden_matrices_and_adamw_the_rest():
    model = _llama()
    names = set(hidden_matrices(model))
    per_layer = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert names == {f"model.layers.{i}.{part}.{n}.weight" for i in range(2) for n in per_layer
                     for part in ("self_attn", "mlp") if (n in per_layer[:4]) == (part == "self_attn")}  # fmt: skip
    optimizer = MuonAdamW(model, MUON, ADAMW)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert list(groups) == ["muon", "adamw_decay", "adamw_no_decay"]
    embedding = model.get_input_embeddings().weight  # also the tied output layer
    assert [p is embedding for p in groups["adamw_decay"]["params"]] == [True]
    assert all(p.ndim == 1 for p in groups["adamw_no_decay"]["params"])  # the RMSNorm weights
    assert (groups["muon"]["lr"], groups["muon"]["weight_decay"]) == (0.02, 0.01)
    assert (groups["adamw_decay"]["lr"], groups["adamw_decay"]["weight_decay"]) == (3e-3, 0.1)
    assert groups["adamw_no_decay"]["weight_decay"] == 0.0
    n_params = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert n_params == sum(p.numel() for p in model.parameters())


def test_gpt2_position_embeddings_and_heads_stay_with_adamw():
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=64))
    names = hidden_matrices(model)
    assert len(names) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert not any("wte" in n or "wpe" in n or "lm_head" in n for n in names)
    assert len(hidden_matrices(model, exclude=[r"\.mlp\."])) == 2 * 2


def test_state_dict_round_trip_continues_exactly():
    """Two steps, save, load into a fresh optimizer on a copy of the model; three more steps each: equal."""
    model = _llama()
    optimizer = MuonAdamW(model, MUON, ADAMW)
    scheduler = build_scheduler(optimizer, total_steps=10, name="wsd", warmup_steps=1, decay_ratio=0.5)
    _train_steps(model, optimizer, 2, seed=10, scheduler=scheduler)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # plain containers, as Lightning checkpoints need

    twin = copy.deepcopy(model)
    twin_optimizer = MuonAdamW(twin, MUON, ADAMW)
    twin_scheduler = build_scheduler(
        twin_optimizer, total_steps=10, name="wsd", warmup_steps=1, decay_ratio=0.5
    )
    twin_optimizer.load_state_dict(saved["optimizer"])
    twin_scheduler.load_state_dict(saved["scheduler"])
    momentum = twin_optimizer.optimizers[0].state[twin.model.layers[0].mlp.up_proj.weight]["momentum_buffer"]
    assert momentum.abs().sum() > 0  # the inner Muon reads the restored state
    assert twin_optimizer.optimizers[1].param_groups[0] is twin_optimizer.param_groups[1]  # one group dict

    _train_steps(model, optimizer, 3, seed=20, scheduler=scheduler)
    _train_steps(twin, twin_optimizer, 3, seed=20, scheduler=twin_scheduler)
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in twin_optimizer.param_groups]


def test_the_schedule_scales_each_groups_own_learning_rate():
    optimizer = MuonAdamW(_llama(), MUON, ADAMW)
    scheduler = build_scheduler(optimizer, total_steps=10, name="wsd", warmup_steps=0, decay_ratio=0.5)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    factor = 1.0  # step 5: the first of the 5 decay steps (1-sqrt shape), still the peak
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [0.02 * factor, 3e-3 * factor, 3e-3 * factor]
    )
    optimizer.step()
    scheduler.step()
    factor = 1 - math.sqrt(0.2)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [0.02 * factor, 3e-3 * factor, 3e-3 * factor]
    )


def test_an_optimizer_state_of_another_layout_is_refused():
    model = _llama()
    adamw_state = torch.optim.AdamW(model.parameters()).state_dict()
    with pytest.raises(CheckpointError, match="does not fit MuonAdamW.*optimizer=adamw"):
        MuonAdamW(model, MUON, ADAMW).load_state_dict(adamw_state)


def test_bad_selections_and_strategies_are_config_errors():
    factory = partial(MuonAdamW, muon=MUON, adamw=ADAMW, muon_exclude=["."])
    with pytest.raises(ConfigError, match=r"muon_exclude=\['\.'\] excludes all 14 of them"):
        build_optimizer(factory, _llama())
    with pytest.raises(ConfigError, match="the FSDPStrategy gives the optimizer shards"):
        build_optimizer(partial(MuonAdamW, muon=MUON, adamw=ADAMW), _llama(), strategy=FSDPStrategy())


def _overrides(tiny_overrides):
    return [o for o in tiny_overrides if not o.startswith("model=")] + ["model=llama_tiny", "optimizer=muon"]


def test_llama_with_muon_learns_markov_chain(tiny_overrides, tmp_path):
    """tests/test_learning.py's causal-LM test with llama_tiny and the shipped Muon settings."""
    from test_learning import LEARN

    learn = [o for o in LEARN if not o.startswith("optimizer.")]
    metrics = train(compose([*_overrides(tiny_overrides), *learn], tmp_path / "run"))
    assert metrics["val/loss"] < math.log(400) / 4
    assert metrics["val/loss"] < markov_entropy() + 0.35, metrics
    assert metrics["val/acc"] > 0.45


def test_muon_run_resumes_exactly_after_a_kill(tiny_overrides, tmp_path):
    """Killed after step 7 (newest checkpoint: step 4) with dropout on and a warmup-stable-decay schedule whose
    decay starts after the kill; resumed, it ends at step 12 with the uninterrupted run's weights."""
    overrides = _overrides(tiny_overrides) + [
        "scheduler=wsd",
        "scheduler.decay_ratio=0.5",
        "model.config.attention_dropout=0.1",
        "trainer.max_steps=12",
        "trainer.val_check_interval=3",
        "run_test=false",
        "export.enabled=false",
    ]
    resume_after_kill(overrides, tmp_path, every=4, kill_after=7, final_step=12)
