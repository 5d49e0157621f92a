"""The baselines of bench/train_overhead.py, one per process: a minimal hand-written PyTorch loop, or the
nanoGPT-equivalent reference (bench/nanogpt_ref.py).

    python bench/hand_loop.py --system hand --impl hf --tokens <token cache folder> --vocab 66 \
        --layers 4 --width 128 --heads 4 --block 64 --batch 12 --steps 200 --out steps.json

``hand`` is what a user would write instead of lmlab: the same Hugging Face ``GPT2LMHeadModel`` (sdpa
attention; ``--impl native`` wraps the same weights in lmlab's lean GPT-2), the same packed blocks of the
same token cache, batch, AdamW (decay on >= 2-D weights), warmup + cosine schedule, clipping and fp32
precision as lmlab's recipe, and nothing else: no logging, no checkpoints. Writes when each step ended (wall clock and process CPU time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lmlab.data.lm_datamodule import PackedBlocks
from lmlab.data.token_cache import load_tokens


def hand_loop(args, ends: list[tuple[float, float]]) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from lmlab.models.native_gpt2 import NativeGPT2LMHeadModel
    from lmlab.optim import build_scheduler, param_groups

    config = GPT2Config(  # the model of conf/model/gpt_tiny.yaml (erf GELU)
        activation_function="gelu",
        vocab_size=args.vocab, n_positions=args.block, n_layer=args.layers, n_embd=args.width,
        n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bias=not args.no_bias,
    )  # fmt: skip
    model = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa").train()
    if args.impl == "native":
        model = NativeGPT2LMHeadModel.from_hf(model)
    optimizer = torch.optim.AdamW(
        param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=args.fused or None
    )
    scheduler = build_scheduler(optimizer, args.steps, "cosine", warmup_ratio=0.05, min_lr_ratio=0.1)
    blocks = PackedBlocks(args.tokens, args.block)
    loader = torch.utils.data.DataLoader(blocks, batch_size=args.batch, shuffle=True, drop_last=True)
    step = 0
    while step < args.steps:
        for batch in loader:
            ids = batch["input_ids"]
            logits = model(input_ids=ids).logits
            targets = F.pad(ids[:, 1:], (0, 1), value=-100)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            ends.append((time.perf_counter(), time.process_time()))
            step += 1
            if step == args.steps:
                break


def nanogpt_loop(args, ends: list[tuple[float, float]]) -> None:
    from nanogpt_ref import NanoGPTRef, configure_optimizer, train_steps

    data = load_tokens(args.tokens)
    model = NanoGPTRef(
        args.vocab, args.block, args.layers, args.heads, args.width, dropout=0.0, bias=args.bias
    )
    optimizer = configure_optimizer(model, 1e-3, (0.9, 0.95), 0.1)
    clock = lambda i: ends.append((time.perf_counter(), time.process_time()))  # noqa: E731
    warmup = round(0.05 * args.steps)  # lmlab's warmup_ratio
    train_steps(
        model, optimizer, data, args.block, args.batch, args.steps, on_step=clock, warmup_iters=warmup
    )
    if args.save:
        torch.save(model.state_dict(), args.save)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", choices=["hand", "nanogpt"], required=True)
    p.add_argument("--impl", choices=["hf", "native"], default="hf")
    p.add_argument("--fused", action="store_true", help="hand: fused AdamW")
    p.add_argument("--bias", action="store_true", help="nanogpt: biases, as GPT-2 (nanoGPT's default: none)")
    p.add_argument(
        "--no-bias", action="store_true", help="hand --impl native: no biases (model.config.bias=false)"
    )
    p.add_argument("--tokens", required=True, help="a token cache folder (tokens.bin + meta.json)")
    p.add_argument("--vocab", type=int, required=True)
    for name in ("layers", "width", "heads", "block", "batch", "steps"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, help="nanogpt: write the trained state dict here")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    ends: list[tuple[float, float]] = []
    (hand_loop if args.system == "hand" else nanogpt_loop)(args, ends)
    args.out.write_text(json.dumps({"step_ends": [w for w, _ in ends], "cpu_ends": [c for _, c in ends]}))


if __name__ == "__main__":
    main()
