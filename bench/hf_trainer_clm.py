"""The Hugging Face Trainer baseline of bench/train_overhead.py: `run_clm`-style causal-LM pretraining.

    python bench/hf_trainer_clm.py --tokens <token cache folder> --vocab 66 --layers 4 --width 128 \
        --heads 4 --block 64 --batch 12 --steps 200 --out steps.json

What `examples/pytorch/language-modeling/run_clm.py` trains after its ``group_texts``: blocks of ``block``
tokens with ``input_ids``, ``attention_mask`` and ``labels`` (= ``input_ids``; the model shifts them), the
default data collator, ``GPT2LMHeadModel`` with sdpa attention, and the Trainer's defaults (its default
optimizer, ``adamw_torch_fused``, progress bar on) with lmlab's hyperparameters: lr 1e-3, betas (0.9, 0.95),
weight decay 0.1, 5% warmup then cosine to 10%, clipping at 1.0, logging every 25 steps, a checkpoint
every 100 steps (2 kept). The blocks are read from lmlab's token cache, so both systems see the same data.
Writes when each step ended (wall clock and process CPU time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from lmlab.data.token_cache import load_tokens


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.ends: list[tuple[float, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append((time.perf_counter(), time.process_time()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", required=True)
    p.add_argument("--vocab", type=int, required=True)
    for name in ("layers", "width", "heads", "block", "batch", "steps"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    tokens = np.asarray(load_tokens(args.tokens), dtype=np.int64)
    blocks = tokens[: len(tokens) // args.block * args.block].reshape(-1, args.block)
    dataset = Dataset.from_dict(
        {"input_ids": blocks, "attention_mask": np.ones_like(blocks), "labels": blocks.copy()}
    )
    config = GPT2Config(  # the model of conf/model/gpt_tiny.yaml (erf GELU)
        activation_function="gelu",
        vocab_size=args.vocab, n_positions=args.block, n_layer=args.layers, n_embd=args.width,
        n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    model = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")
    clock = StepClock()
    with tempfile.TemporaryDirectory(prefix="hf-trainer-") as out_dir:
        training_args = TrainingArguments(
            output_dir=out_dir, use_cpu=True, report_to="none", max_steps=args.steps,
            per_device_train_batch_size=args.batch, learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.95,
            adam_epsilon=1e-8, weight_decay=0.1, warmup_steps=round(0.05 * args.steps),
            lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": 0.1},
            max_grad_norm=1.0, logging_steps=25, save_steps=500, save_total_limit=2,
            dataloader_num_workers=0, seed=0,
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=training_args, train_dataset=dataset, data_collator=default_data_collator,
            callbacks=[clock],
        )  # fmt: skip
        trainer.train()
        optim = str(training_args.optim)
    args.out.write_text(
        json.dumps(
            {"step_ends": [w for w, _ in clock.ends], "cpu_ends": [c for _, c in clock.ends], "optim": optim}
        )
    )


if __name__ == "__main__":
    main()
