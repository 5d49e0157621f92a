"""Validation loss against training time, recorded the same way for every system of bench/time_to_loss.py.

A ``LossCurve`` runs a training clock (wall ``perf_counter`` and the process's CPU time) that stops while the
model is evaluated, and at each evaluation records (optimizer steps, tokens trained on, training seconds so
far, validation loss). The loss is ``val_loss_nanogpt.val_loss``, one evaluator for all: mean next-token
cross-entropy over the same non-overlapping windows of the same validation tokens. Two users:

  LossClock  a Lightning callback added to a real ``train.py`` run (``bench/`` on ``PYTHONPATH``):
             ``+callbacks.loss_clock._target_=loss_clock.LossClock +callbacks.loss_clock.out=curve.json``
             ``+callbacks.loss_clock.val_tokens=<token cache folder> +callbacks.loss_clock.context=64``
             ``+callbacks.loss_clock.every=100``; Lightning's own validation is off the clock too
  nanogpt    ``python bench/loss_clock.py --train-tokens <folder> --val-tokens <folder> --vocab 66 ...``:
             bench/nanogpt_ref.py's loop with nanoGPT's shakespeare_char recipe (lr 1e-3, betas (0.9, 0.99),
             weight decay 0.1, clipping 1.0, 100 warm-up steps, cosine to lr / 10 at the last step)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback
from torch import nn
from val_loss_nanogpt import val_loss

from lmlab.data.token_cache import load_tokens


def param_counts(model: nn.Module) -> dict[str, int]:
    """Trainable parameters (a tied matrix once), and those outside embedding tables (tokens, positions)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    total = sum(p.numel() for p in params.values())
    return {"total": total, "non_embedding": total - sum(params[i].numel() for i in tables if i in params)}


class LossCurve:
    """A pausable training clock and the validation losses measured along it."""

    def __init__(self, val_tokens: str, context: int, eval_tokens: int | None = None) -> None:
        tokens = load_tokens(val_tokens)
        self.tokens = tokens[: eval_tokens + 1] if eval_tokens else tokens  # + 1: the last window's target
        self.context = context
        self.points: list[dict[str, float]] = []
        self.wall = self.cpu = self.eval_wall = 0.0
        self._since: tuple[float, float] | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = (time.perf_counter(), time.process_time())

    def pause(self) -> bool:
        """Stop the clock; return whether it was running."""
        if self._since is None:
            return False
        self.wall += time.perf_counter() - self._since[0]
        self.cpu += time.process_time() - self._since[1]
        self._since = None
        return True

    def record(self, model: nn.Module, logits_of: Callable, step: int, tokens: int) -> None:
        """Evaluate off the clock (in eval mode, then back to the mode the model was in)."""
        running = self.pause()
        start, training = time.perf_counter(), model.training
        model.eval()
        loss = val_loss(logits_of, self.tokens, self.context)
        model.train(training)
        self.eval_wall += time.perf_counter() - start
        self.points.append({"step": step, "tokens": tokens, "wall": self.wall, "cpu": self.cpu, "loss": loss})
        if running:
            self.start()

    def write(self, out: Path, **extra: Any) -> None:
        self.pause()
        out.write_text(json.dumps({"points": self.points, "eval_wall": self.eval_wall, **extra}))


class LossClock(Callback):
    """Evaluates ``pl_module.model`` at step 0, every ``every`` optimizer steps and at the last step."""

    def __init__(
        self, out: str, val_tokens: str, context: int, every: int, eval_tokens: int | None = None
    ) -> None:
        self.out, self.every = Path(out), every
        self.curve = LossCurve(val_tokens, context, eval_tokens)
        self.tokens = 0
        self._resume = False

    def _record(self, pl_module, step: int) -> None:
        model = pl_module.model
        self.curve.record(model, lambda x: model(input_ids=x).logits, step, self.tokens)

    def on_train_start(self, trainer, pl_module) -> None:
        self.params = param_counts(pl_module.model)
        self._record(pl_module, 0)
        self.curve.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tokens += batch["input_ids"].numel()
        if trainer.fit_loop._should_accumulate():
            return
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self._record(pl_module, step)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._resume = self.curve.pause()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._resume:
            self.curve.start()

    def on_train_end(self, trainer, pl_module) -> None:
        self.curve.write(self.out, params=self.params)


def nanogpt_main() -> None:
    from nanogpt_ref import NanoGPTRef, configure_optimizer, train_steps

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-tokens", required=True, help="token cache folder of the training split")
    p.add_argument("--val-tokens", required=True, help="token cache folder of the validation split")
    p.add_argument("--vocab", type=int, required=True)
    for name in ("layers", "width", "heads", "block", "batch", "steps", "every"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--eval-tokens", type=int, help="evaluate the first N validation tokens only")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    data = load_tokens(args.train_tokens)
    model = NanoGPTRef(args.vocab, args.block, args.layers, args.heads, args.width, dropout=0.0, bias=False)
    optimizer = configure_optimizer(model, args.lr, (0.9, 0.99), 0.1)
    curve = LossCurve(args.val_tokens, args.block, args.eval_tokens)
    logits_of = lambda x: model(x, x)[0]  # noqa: E731
    tokens_per_step = args.batch * args.block

    def on_step(i: int) -> None:
        if (i + 1) % args.every == 0 or i + 1 == args.steps:
            curve.record(model, logits_of, i + 1, (i + 1) * tokens_per_step)

    curve.record(model, logits_of, 0, 0)
    curve.start()
    train_steps(
        model, optimizer, data, args.block, args.batch, args.steps, on_step=on_step, warmup_iters=args.warmup
    )
    curve.write(args.out, params=param_counts(model))


if __name__ == "__main__":
    nanogpt_main()
