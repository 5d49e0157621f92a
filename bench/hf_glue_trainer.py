"""The baseline of bench/glue_finetune.py: the Hugging Face Trainer on the same GLUE rows and hyperparameters.

    python bench/hf_glue_trainer.py --task rte --model <path> --data-dir ../shared/data [--max-train-samples N]

Rows come from lmlab's GLUE reader (so both systems see identical data); metrics are computed with
scikit-learn / SciPy (the reference implementations). Prints one JSON line: per-epoch dev metrics, the best
epoch by the task's main metric, and the training time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from datasets import Dataset
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from lmlab.data.sources import GlueSource


def glue_metrics(task, preds, labels) -> dict[str, float]:
    if task.is_regression:
        out = {"pearson": pearsonr(preds, labels)[0], "spearmanr": spearmanr(preds, labels)[0]}
    else:
        out = {}
        for name in task.metrics:
            if name == "accuracy":
                out[name] = accuracy_score(labels, preds)
            elif name == "f1":
                out[name] = f1_score(labels, preds)
            elif name == "matthews_correlation":
                out[name] = matthews_corrcoef(labels, preds)
    if len(out) > 1:
        out["combined_score"] = float(np.mean(list(out.values())))
    return {k: float(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--out", default="/tmp/hf_glue")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    source = GlueSource(args.task, args.data_dir)
    task = source.task
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def dataset(rows):
        enc = tokenizer([r.text_a for r in rows], [r.text_b for r in rows] if rows[0].text_b is not None else None,
                        truncation=True, max_length=128)  # fmt: skip
        return Dataset.from_dict({**enc, "labels": [r.label for r in rows]})

    train_rows = source.train()[: args.max_train_samples]
    eval_rows = source.eval_sets()[0][1]
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=task.num_labels, problem_type="regression" if task.is_regression else None
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        learning_rate=2e-5,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        num_train_epochs=args.epochs,
        warmup_steps=0.1,  # transformers 5: a float in [0, 1) is a ratio of the total steps
        optim="adamw_torch",  # torch.optim.AdamW, as lmlab uses
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        seed=args.seed,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        preds = logits.squeeze(-1) if task.is_regression else logits.argmax(-1)
        return glue_metrics(task, preds, labels)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset(train_rows),
        eval_dataset=dataset(eval_rows),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    epochs = [
        {k.removeprefix("eval_"): v for k, v in log.items() if k.startswith("eval_")}
        for log in trainer.state.log_history
        if "eval_loss" in log
    ]
    best = max(epochs, key=lambda e: e[task.main_metric])
    print(
        json.dumps(
            {
                "system": "hf_trainer",
                "task": task.name,
                "epochs": epochs,
                "best": best,
                "train_seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
