"""Does a lean Llama code path pay on CPUs? Forward + backward time of one training step, three ways.

    OMP_NUM_THREADS=1 python bench/llama_step.py --shape tiny --vocab 8192 --repeats 5 --json bench/results/llama_step_tiny.json

- ``hf``: the Hugging Face ``LlamaForCausalLM`` that ``model=llama_tiny`` builds, at the shape (built here
  from the same ``LlamaConfig`` fields: SwiGLU, tied embeddings, no biases; sdpa attention; the loss from
  ``labels``);
- ``lean``: the very same parameters through a functional forward written for packed training blocks (2-D
  residual stream, rotary tables computed once, one ``F.scaled_dot_product_attention(is_causal=True,
  enable_gqa=True)``, ``F.rms_norm``, the loss by ``F.cross_entropy``); its loss is checked equal to ``hf``'s;
- ``nanogpt``: nanoGPT's bias-free GPT (bench/nanogpt_ref.py) at the same shape, for scale.

Shapes are bench/train_overhead.py's (tiny: 4 layers x 128, 4 heads, context 64, batch 12; small: 6 x 384, 6
heads, context 256, batch 8); Llama gets half as many key/value heads and a 3 x width gated MLP, as in
bench/time_to_loss.py. Each repeat times --steps steps of each system in rotating order after --warmup
untimed ones, on random token ids; the optimizer step is left out (the same for all). Milliseconds per step,
median (range) over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import load_now, machine_facts, print_facts
from nanogpt_ref import NanoGPTRef
from train_overhead import SHAPES


def hf_llama(shape: dict, vocab: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    W, H = shape["width"], shape["heads"]
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=W, intermediate_size=3 * W, num_hidden_layers=shape["layers"],
        num_attention_heads=H, num_key_value_heads=H // 2 if H % 2 == 0 else H,
        max_position_embeddings=shape["block"], tie_word_embeddings=True, attention_bias=False,
        mlp_bias=False, rms_norm_eps=1e-5,
    )  # fmt: skip
    return LlamaForCausalLM._from_config(config, attn_implementation="sdpa").train()


class LeanLlama:
    """A functional forward over a ``LlamaForCausalLM``'s own parameters (no copy: gradients land in them)."""

    def __init__(self, model: torch.nn.Module, block: int) -> None:
        c = model.config
        self.m, self.heads, self.kv = model.model, c.num_attention_heads, c.num_key_value_heads
        self.hd, self.eps = c.hidden_size // c.num_attention_heads, c.rms_norm_eps
        theta = c.rope_parameters["rope_theta"] if getattr(c, "rope_parameters", None) else c.rope_theta
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd)
        freqs = torch.outer(torch.arange(block, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()  # [T, hd]

    def rope(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, h, T, hd]
        T, half = x.shape[2], self.hd // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * self.cos[:T] + rotated * self.sin[:T]

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        x = F.embedding(ids, self.m.embed_tokens.weight).view(B * T, -1)
        for layer in self.m.layers:
            a, mlp = layer.self_attn, layer.mlp
            h = F.rms_norm(x, (x.shape[-1],), layer.input_layernorm.weight, self.eps)
            q = F.linear(h, a.q_proj.weight).view(B, T, self.heads, self.hd).transpose(1, 2)
            k = F.linear(h, a.k_proj.weight).view(B, T, self.kv, self.hd).transpose(1, 2)
            v = F.linear(h, a.v_proj.weight).view(B, T, self.kv, self.hd).transpose(1, 2)
            y = F.scaled_dot_product_attention(self.rope(q), self.rope(k), v, is_causal=True, enable_gqa=True)
            x = x + F.linear(y.transpose(1, 2).reshape(B * T, -1), a.o_proj.weight)
            h = F.rms_norm(x, (x.shape[-1],), layer.post_attention_layernorm.weight, self.eps)
            x = x + F.linear(F.silu(F.linear(h, mlp.gate_proj.weight)) * F.linear(h, mlp.up_proj.weight),
                             mlp.down_proj.weight)  # fmt: skip
        x = F.rms_norm(x, (x.shape[-1],), self.m.norm.weight, self.eps).view(B, T, -1)
        logits = F.linear(x[:, :-1], self.m.embed_tokens.weight)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    facts = machine_facts()
    print_facts(facts)
    shape = SHAPES[args.shape]
    torch.manual_seed(0)
    hf = hf_llama(shape, args.vocab)
    lean = LeanLlama(hf, shape["block"])
    nano = NanoGPTRef(args.vocab, shape["block"], shape["layers"], shape["heads"], shape["width"], 0.0, False)
    ids = torch.randint(0, args.vocab, (shape["batch"], shape["block"]))
    x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()  # nanoGPT: inputs and targets
    with torch.no_grad():
        ref, mine = hf(input_ids=ids, labels=ids).loss.item(), lean.loss(ids).item()
    print(f"loss: hf {ref:.6f}, lean {mine:.6f} (|difference| {abs(ref - mine):.2e})")
    assert abs(ref - mine) < 1e-4 * max(1.0, abs(ref)), (
        "the lean forward does not compute the HF model's loss"
    )

    def step_of(name: str):
        if name == "hf":
            return lambda: hf(input_ids=ids, labels=ids).loss
        if name == "lean":
            return lambda: lean.loss(ids)
        return lambda: nano(x, y)[1]

    systems = ["hf", "lean", "nanogpt"]
    times: dict[str, list[float]] = {s: [] for s in systems}
    load = []
    for r in range(args.repeats):
        for name in systems[r % 3 :] + systems[: r % 3]:  # rotating order
            run, model = step_of(name), nano if name == "nanogpt" else hf
            for i in range(args.warmup + args.steps):
                if i == args.warmup:
                    start = time.perf_counter()
                model.zero_grad(set_to_none=True)
                run().backward()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
        load.append(load_now())
    result = {
        "facts": facts,
        "shape": args.shape,
        "vocab": args.vocab,
        "loss_check": [ref, mine],
        "load": load,
    }
    for name in systems:
        ms = times[name]
        result[name] = {"ms_per_step": ms, "median": statistics.median(ms)}
        print(f"{name:8s} {statistics.median(ms):7.2f} ms/step  ({min(ms):.2f}-{max(ms):.2f})")
    for name in ("lean", "nanogpt"):
        ratio = [h / o for h, o in zip(times["hf"], times[name], strict=True)]
        result[f"hf_over_{name}"] = statistics.median(ratio)
        print(f"hf / {name}: {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
