"""The reference of bench/lora_dialogsum.py: the same LoRA fine-tuning with `peft` and the Hugging Face Trainer.

    python bench/peft_trainer_sft.py --out run.json --save <folder> -- <train.py overrides of the lmlab run>

The training examples are lmlab's own (the run's config composed from the same overrides, its
InstructDataModule: the chat-rendered prompt and response, labels -100 on the prompt), so both systems learn
from the same tokens; what differs is the loop. The Trainer gets the standard SFT pieces: a
``datasets.Dataset`` of ``input_ids``/``labels``, ``DataCollatorForSeq2Seq`` (dynamic padding, -100 labels),
``peft.get_peft_model`` with the run's LoRA settings (``LoraConfig``: r, alpha, dropout, target modules) and
the run's hyperparameters: batch, steps, AdamW lr / betas / eps / weight decay, warm-up ratio, cosine to
``min_lr_ratio`` x lr, clipping, seed; logging every 25 steps, no checkpoints, no evaluation. Writes when each
step ended (wall clock and process CPU time) to --out and the merged model (``merge_and_unload``) with its
tokenizer to --save, for ``evaluate.py`` to score with the same evaluator as the lmlab runs.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from peft import LoraConfig, get_peft_model
from step_clock import TokenCount
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from lmlab.models.lora import DEFAULT_TARGETS
from lmlab.stages.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]


class StepClock(TrainerCallback):
    """When each step ended, and its tokens: counted as the collator makes each batch (one batch a step, no
    workers; the loader may make one batch ahead, so only the first len(ends) batches are steps)."""

    def __init__(self, collator) -> None:
        self.ends: list[float] = []
        self.cpu: list[float] = []
        self.tokens = TokenCount()
        self.collator = collator

    def collate(self, features):
        batch = self.collator(features)
        self.tokens.add(batch)
        self.tokens.step()
        return batch

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())
        self.cpu.append(time.process_time())


def compose_run(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return compose("train", overrides=overrides)


def sft_rows(cfg) -> tuple[Dataset, object]:
    """lmlab's training examples of this run as SFT rows: input_ids, and labels -100 on the prompt."""
    datamodule = instantiate(cfg.data, _partial_=True)(tokenizer=instantiate(cfg.tokenizer))
    datamodule.set_head("causal_lm")
    tokenizer = datamodule.prepare_tokenizer()
    datamodule.prepare_data()
    rows = {"input_ids": [], "labels": []}
    for f in datamodule.train_dataset():
        ids = f["input_ids"].tolist()
        labels = f["labels"].tolist() if "labels" in f else [-100] * f["prompt_len"] + ids[f["prompt_len"] :]
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
    return Dataset.from_dict(rows), tokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--save", type=Path, required=True)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    cfg = compose_run(args.overrides)
    torch.manual_seed(cfg.seed)
    dataset, tokenizer = sft_rows(cfg)
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model.pretrained, dtype=torch.float32, attn_implementation="sdpa"
    )
    ft = cfg.finetune
    targets = list(ft.target_modules or DEFAULT_TARGETS[model.config.model_type])
    lora = LoraConfig(
        r=ft.r, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets, task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt, sched = cfg.optimizer, cfg.scheduler
    clock = StepClock(DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, return_tensors="pt"))
    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=cfg.data.batch_size,
            max_steps=cfg.trainer.max_steps,
            learning_rate=opt.lr,
            adam_beta1=opt.betas[0],
            adam_beta2=opt.betas[1],
            adam_epsilon=opt.eps,
            weight_decay=opt.weight_decay,
            warmup_steps=math.ceil(sched.warmup_ratio * cfg.trainer.max_steps),
            lr_scheduler_type="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": sched.min_lr_ratio},
            max_grad_norm=cfg.trainer.gradient_clip_val,
            seed=cfg.seed,
            data_seed=cfg.seed,
            logging_steps=25,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
        )
        Trainer(
            model=model, args=targs, train_dataset=dataset, data_collator=clock.collate, callbacks=[clock]
        ).train()
    merged = model.merge_and_unload()
    merged.save_pretrained(args.save)
    tokenizer.save_pretrained(args.save)
    args.out.write_text(
        json.dumps(
            {
                "step_ends": clock.ends,
                "cpu_ends": clock.cpu,
                **{k: v[: len(clock.ends)] for k, v in clock.tokens.record().items()},
                "trainable": trainable,
            }
        )
    )


if __name__ == "__main__":
    main()
