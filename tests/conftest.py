"""Shared fixtures: an offline, single-threaded environment; learnable synthetic corpora; config composition."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

# Before torch, tokenizers, transformers, datasets or wandb are imported anywhere.
os.environ.update(
    OMP_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    TOKENIZERS_PARALLELISM="false",
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    WANDB_MODE="offline",
    WANDB_SILENT="true",
    HYDRA_FULL_ERROR="1",
)
os.environ.pop("LMLAB_DATA_DIR", None)
os.environ.pop("LMLAB_CACHE_DIR", None)

import torch  # noqa: E402

from lmlab.stages.resolvers import register_resolvers  # noqa: E402

torch.set_num_threads(1)
register_resolvers()


@pytest.fixture(autouse=True, scope="session")
def _isolated_caches(tmp_path_factory):
    """Hub, datasets and W&B caches in a temporary folder, never in the user's home."""
    base = tmp_path_factory.mktemp("caches")
    for var, sub in (
        ("HF_HOME", "hf"),
        ("HF_DATASETS_CACHE", "datasets"),
        ("WANDB_DIR", "wandb"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
    ):
        os.environ[var] = str(base / sub)
    os.environ["LMLAB_ROOT"] = str(base / "root")
    yield


# ------------------------------------------------------------------------------------------ Markov corpus
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]
PROBS = [0.6, 0.3, 0.1]  # each word is followed by one of 3 successors with these probabilities


def successors(i: int) -> list[int]:
    n = len(WORDS)
    return [(i + 1) % n, (i + 2) % n, (i + 7) % n]  # steps of both parities: aperiodic


def markov_entropy() -> float:
    """Entropy rate of the chain in nats per word (every state has the same successor distribution)."""
    return -sum(p * math.log(p) for p in PROBS)


def markov_text(n_lines: int, words_per_line: int = 12, seed: int = 0, title_every: int = 0) -> str:
    rng = random.Random(seed)
    state = rng.randrange(len(WORDS))
    lines = []
    for i in range(n_lines):
        if title_every and i % title_every == 0:
            lines.append(f" = Article {i // title_every} = ")
        words = []
        for _ in range(words_per_line):
            words.append(WORDS[state])
            state = rng.choices(successors(state), weights=PROBS)[0]
        lines.append(" " + " ".join(words) + " ")
    return "\n".join(lines) + "\n"


def topic_text(n_articles: int, lines_per_article: int = 25, words_per_line: int = 12, seed: int = 0) -> str:
    """Articles, each on one of 4 topics whose lines use only that topic's 3 words (uniformly).

    A masked word is predictable from its article's other words, not from its position: the masked-LM
    loss can fall from ln(vocab) to ln(3) nats quickly, without first learning positional attention.
    """
    rng = random.Random(seed)
    lines = []
    for a in range(n_articles):
        lines.append(f" = Article {a} = ")
        topic = rng.randrange(4)
        words = WORDS[3 * topic : 3 * topic + 3]
        for _ in range(lines_per_article):
            lines.append(" " + " ".join(rng.choice(words) for _ in range(words_per_line)) + " ")
    return "\n".join(lines) + "\n"


def write_wikitext(data_dir: Path, texts: dict[str, str]) -> Path:
    folder = data_dir / "wikitext-2"
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in texts.items():
        (folder / f"wiki.{split}.tokens").write_text(text)
    return data_dir


@pytest.fixture(scope="session")
def wikitext_dir(tmp_path_factory) -> Path:
    """A data dir in the official WikiText-2 release layout, filled with Markov-chain text (60 articles)."""
    texts = {
        s: markov_text(n, seed=seed, title_every=25)
        for s, n, seed in (("train", 1500, 1), ("valid", 150, 2), ("test", 150, 3))
    }
    return write_wikitext(tmp_path_factory.mktemp("data"), texts)


@pytest.fixture(scope="session")
def topic_wikitext_dir(tmp_path_factory) -> Path:
    """The WikiText-2 layout filled with topic articles (see topic_text)."""
    texts = {
        s: topic_text(n, seed=seed) for s, n, seed in (("train", 60, 1), ("valid", 6, 2), ("test", 6, 3))
    }
    return write_wikitext(tmp_path_factory.mktemp("topic_data"), texts)


# ---------------------------------------------------------------------------------------------- configs
def compose(overrides: list[str], output_dir: Path, config_name: str = "train"):
    """Compose a shipped config as `python train.py <overrides>` would, with the run dir at output_dir."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


TINY = [
    "model=gpt_tiny",
    # the GPT-2 recipe (the pretraining default is llama_small + muon + wsd): tests that need those say so
    "optimizer=adamw",
    "scheduler=cosine",
    "tokenizer.vocab_size=400",
    "data.block_size=32",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "trainer.accelerator=cpu",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "~callbacks.model_summary",
    "logger=csv",
]


@pytest.fixture
def tiny_overrides(wikitext_dir, tmp_path) -> list[str]:
    return [*TINY, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]


class StopAtStep:
    """A Lightning callback that ends training after `step` optimizer steps, as a kill would (tests only)."""

    def __new__(cls, step: int):
        from lightning.pytorch import Callback

        class _Stop(Callback):
            def on_train_batch_end(self, trainer, *args, **kwargs):
                if trainer.global_step >= step:
                    trainer.should_stop = True

        return _Stop()


@pytest.fixture(scope="session")
def small_pretrained_gpt(tmp_path_factory) -> Path:
    """A tiny GPT-2 saved with save_pretrained, with its own 300-token tokenizer: a stand-in for a hub model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from lmlab.data.tokenizer import TrainedTokenizer

    folder = tmp_path_factory.mktemp("pretrained_gpt")
    lines = iter([(line + "\n", False) for line in markov_text(200, seed=9).splitlines()])
    tokenizer = TrainedTokenizer("bpe", vocab_size=300, min_frequency=1).train(lines)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=256, vocab_size=300)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory) -> Path:
    """A data dir with all nine GLUE tasks (and the diagnostic set) in the release layout; see glue_fixtures."""
    from glue_fixtures import write_glue

    return write_glue(tmp_path_factory.mktemp("glue"))


GLUE_TINY = [
    "model=bert_tiny",
    "model.pretrained=null",
    "tokenizer=wordpiece",
    "tokenizer.vocab_size=300",
    "tokenizer.min_frequency=1",
    "data.batch_size=16",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=5",
    "trainer.enable_progress_bar=false",
    "~callbacks.model_summary",
    "logger=csv",
]


class SignalAtStep:
    """A Lightning callback that sends a signal to its own process after `step` optimizer steps (tests only):
    SIGKILL to simulate `kill -9`, SIGTERM to simulate a preemption. With `once_file`, only the first run
    that reaches the step is signalled (on each of its ranks), so the very same command can be run again to
    resume."""

    def __new__(
        cls, step: int | None = None, signal: str = "SIGKILL", once_file: str | None = None,
        micro_batch: int | None = None, val_batch: int | None = None, rank: int | None = None,
    ):  # fmt: skip
        """`micro_batch=N` instead of `step`: at the end of this run's N-th training micro-batch (1-based);
        `val_batch=N`: at the end of the N-th batch of the first validation after `step` (sanity check aside);
        `rank=R`: only rank R is signalled (the others run on)."""
        import os
        import signal as signals

        from lightning.pytorch import Callback

        class _Signal(Callback):
            seen, sent = 0, False

            def on_train_batch_end(self, trainer, *args, **kwargs):
                self.seen += 1
                now = self.seen == micro_batch if micro_batch else trainer.global_step == step
                if now and not val_batch:
                    self.send(trainer)

            def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
                after = val_batch and not trainer.sanity_checking and trainer.global_step >= step
                if after and batch_idx + 1 == val_batch and not self.sent:
                    self.send(trainer)

            def send(self, trainer):
                if rank is not None and trainer.global_rank != rank:
                    return
                # one file per rank: every rank of a multi-process run is killed once
                once = Path(f"{once_file}.rank{trainer.global_rank}") if once_file else None
                if not (once and once.exists()):
                    if once:
                        once.touch()
                    self.sent = True
                    os.kill(os.getpid(), getattr(signals, signal))

        return _Signal()
