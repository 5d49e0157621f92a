"""Token shards (prepare_data.py) streamed with litdata (data=streaming): every token once per epoch across
ranks and workers, exact resume after a kill, a killed preparation finished by the same command, and the
bad inputs that stop a run with one message."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import weakref
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY, compose, markov_text, write_wikitext
from test_cli import run_cli
from test_resume import resume_after_kill

from lmlab.stages.prepare_data import prepare_data

TOKENIZER = ["tokenizer.vocab_size=400"]
PREPARE = [*TOKENIZER, "chunk_tokens=1024", "part_mb=0.004", "num_workers=2", "start_method=fork"]
SHARD_RUN = [
    *[o for o in TINY if not o.startswith("trainer.max_steps")],
    "data=streaming",
    "data.num_workers=2",
    "trainer.max_steps=14",
    "trainer.val_check_interval=7",
    "callbacks.periodic_checkpoint.every_n_train_steps=4",
    "model.config.resid_pdrop=0.1",  # dropout on: resuming must restore the random generators too
    "run_test=false",
    "export.enabled=false",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A small WikiText-layout corpus: about 6 training batches of 8 blocks of 32 tokens per epoch."""
    texts = {
        s: markov_text(n, seed=seed, title_every=10) for s, n, seed in (("train", 160, 1), ("valid", 40, 2))
    }
    texts["test"] = texts["valid"]
    return write_wikitext(tmp_path_factory.mktemp("corpus"), texts)


def prepare(corpus: Path, tmp: Path, location: Path, extra: tuple[str, ...] = ()) -> dict:
    args = [
        *PREPARE,
        *extra,
        f"paths.data_dir={corpus}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"location={location}",
    ]
    prepare_data(compose(args, tmp / "run", config_name="prepare_data"))
    return json.loads((location / "lmlab_shards.json").read_text())


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("prepared")
    prepare(corpus, tmp, tmp / "shards")
    return tmp / "shards"


def test_shards_hold_the_token_stream_and_every_block_is_read_once_across_ranks_and_workers(
    corpus, shards, tmp_path
):
    """The chunks, in order, are the token cache's stream of the same text and tokenizer; 2 simulated ranks x
    2 workers read every block of every chunk exactly once per epoch (block size 1: every token)."""
    from litdata.utilities.env import _DistributedEnv
    from transformers import AutoTokenizer

    from lmlab.data.sources import ShardSource, WikiTextSource
    from lmlab.data.streaming_datamodule import ShardLoader, collate_blocks, open_blocks
    from lmlab.data.token_cache import build_token_cache, load_tokens

    source = ShardSource(str(shards))
    tokenizer = AutoTokenizer.from_pretrained(str(shards / "tokenizer"))
    cached = build_token_cache(WikiTextSource(str(corpus)), "train", tokenizer, tmp_path / "cache")
    stream = np.asarray(load_tokens(cached), dtype=np.int64)
    dims = source.split("train")["chunks"]
    assert len(dims) > 4 and sum(dims) == len(stream)
    starts = np.cumsum([0, *dims])
    for block_size in (1, 16):
        expected = Counter(
            tuple(stream[start + i * block_size : start + (i + 1) * block_size])
            for start, dim in zip(starts, dims, strict=False)
            for i in range(dim // block_size)
        )
        seen: Counter = Counter()
        for rank in range(2):
            dataset = open_blocks(source, "train", block_size, None, shuffle=True, seed=3)
            dataset.set_drop_last(False)
            dataset.distributed_env = _DistributedEnv(2, rank, 1)
            loader = ShardLoader(dataset, None, batch_size=4, num_workers=2, collate_fn=collate_blocks)
            for batch in loader:
                seen.update(tuple(row.tolist()) for row in batch["input_ids"])
        assert seen == expected, block_size
    assert sum(dim // 1 for dim in dims) == len(stream)  # block size 1: every token of the corpus, once


def test_stopped_run_resumes_exactly_from_shards(shards, tmp_path):
    """Stopped after step 11 of 14 (epochs of 8 steps, 2 loader workers; newest checkpoint: step 10, in the
    second epoch) and resumed from that checkpoint, it ends with the weights of an uninterrupted run
    (in-process; the real kill -9 through train.py follows, in pytest -m slow)."""
    run = [o for o in SHARD_RUN if not o.startswith("callbacks.periodic_checkpoint.")]
    overrides = [*run, f"data.source.location={shards}", f"paths.cache_dir={tmp_path / 'cache'}"]
    resume_after_kill(overrides, tmp_path, every=5, kill_after=11, final_step=14)


@pytest.mark.slow
def test_killed_run_resumes_exactly_from_shards(corpus, shards, tmp_path):
    """kill -9 at step 9 of 14 (in the second epoch; last checkpoint: step 8), then the same command with
    resume=auto ends with the weights of an uninterrupted run."""
    base = [*SHARD_RUN, f"data.source.location={shards}", f"paths.cache_dir={tmp_path / 'cache'}"]
    straight = run_cli("train.py", [*base, f"hydra.run.dir={tmp_path / 'straight'}"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = [*base, f"paths.log_dir={tmp_path / 'logs'}", "resume=auto"]
    killed += ["+callbacks.kill._target_=conftest.SignalAtStep", "+callbacks.kill.step=9"]
    killed += [f"+callbacks.kill.once_file={tmp_path / 'killed'}"]
    env = {"PYTHONPATH": str(ROOT / "tests")}
    first = run_cli("train.py", killed, tmp_path, **env)
    assert first.returncode == -9, first.stderr[-3000:]
    second = run_cli("train.py", killed, tmp_path, **env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resume=auto: continuing from" in second.stdout + second.stderr
    (run_dir,) = (tmp_path / "logs" / "clm_wikitext2" / "runs").iterdir()
    a = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 14
    assert a["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] >= 1  # an epoch boundary crossed
    assert not [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]


class FakeBucket:
    """litdata's storage client for ``s3://`` (the methods lmlab uses), over a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, url: str) -> Path:
        return self.root / url.removeprefix("s3://")

    def exists(self, url: str) -> bool:
        return self._path(url).is_file()

    def download_file(self, url: str, local: str) -> None:
        shutil.copyfile(self._path(url), local)

    def upload_file(self, local: str, url: str) -> None:
        self._path(url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, self._path(url))

    def delete_file_or_directory(self, url: str) -> None:
        path = self._path(url)
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def test_remote_location_reads_the_manifest_and_tokenizer_through_litdata_storage(
    shards, tmp_path, monkeypatch
):
    """An s3:// location (its storage client faked by a folder): the manifest and the tokenizer are read
    through it, chunks are left to litdata (their URL and local cache), small files are written and deleted."""
    from lmlab.data.sources.shards import ShardLocation, ShardSource

    bucket = FakeBucket(tmp_path / "bucket")
    shutil.copytree(shards, tmp_path / "bucket" / "corpus" / "shards")
    monkeypatch.setattr(ShardLocation, "_fs", lambda self: bucket)
    source = ShardSource("s3://corpus/shards/")
    assert sorted(source.split_names()) == ["test", "train", "validation"]
    assert source.dataset_dir("train") == "s3://corpus/shards/train"
    assert source.chunk_cache("train", tmp_path / "cache").startswith(str(tmp_path / "cache" / "shards"))
    folder = source.tokenizer_dir(tmp_path / "cache")
    assert folder.parent.parent == tmp_path / "cache" / "shards"
    assert sorted(p.name for p in folder.iterdir()) == sorted(source.manifest()["tokenizer"]["files"])
    source.location.write_json("probe.json", {"a": 1})
    assert source.location.read_json("probe.json") == {"a": 1}
    source.location.delete("probe.json")
    assert source.location.read_json("probe.json") is None


SIGNAL_MID_PART = """
import os, runpy, signal, sys
from lmlab.data import shard_writer
call, sent = shard_writer.TokenizeBatch.__call__, getattr(signal, sys.argv[1])
def signalling(self, batch):
    if any(line.startswith(" = Article 9 = ") for line in batch.texts):
        os.killpg(0, sent)  # the whole preparation, workers included
    return call(self, batch)
shard_writer.TokenizeBatch.__call__ = signalling
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def prepare_signalled(
    signal_name: str, corpus: Path, tmp_path: Path
) -> tuple[list[str], subprocess.CompletedProcess]:
    """prepare_data.py sent `signal_name` (with its workers, as a scheduler or a terminal does) while the
    second part of the training split is tokenized; its overrides and the finished process."""
    args = [*PREPARE, f"paths.data_dir={corpus}", f"paths.cache_dir={tmp_path / 'cache'}"]
    args += [f"location={tmp_path / 'shards'}", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_MID_PART, signal_name, str(ROOT / "prepare_data.py"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, start_new_session=True,
    )  # fmt: skip
    return args, done


def test_preparation_restarted_after_a_kill_equals_an_uninterrupted_one(corpus, shards, tmp_path, caplog):
    args, killed = prepare_signalled("SIGKILL", corpus, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert "train: part 1 done" in killed.stdout and "train: part 2 done" not in killed.stdout
    assert not (tmp_path / "shards" / "lmlab_shards.json").exists()
    # the same command again (in-process here: it is the same stage)
    with caplog.at_level(logging.INFO, logger="lmlab.data.shard_writer"):
        prepare_data(
            compose([a for a in args if not a.startswith("hydra.")], tmp_path / "run", "prepare_data")
        )
    done = [r.getMessage() for r in caplog.records if "part" in r.getMessage()]
    assert done and not [m for m in done if m.startswith("train: part 1 done")]  # not tokenized again
    assert files(tmp_path / "shards") == files(shards)


def test_ctrl_c_during_tokenizing_exits_130_and_leaves_no_manifest(corpus, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while litdata tokenizes the second
    part: exit 130 (litdata's own handler ended the process with 0), a message saying how to go on, the first
    part recorded and no manifest: the shards do not look complete."""
    _, stopped = prepare_signalled("SIGINT", corpus, tmp_path)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert "train: part 1 done" in stopped.stdout and "train: part 2 done" not in stopped.stdout
    assert "run the same command to go on" in stopped.stderr
    assert not (tmp_path / "shards" / "lmlab_shards.json").exists()
    progress = json.loads((tmp_path / "shards" / "lmlab_progress.json").read_text())
    assert progress["splits"]["train"]["parts"] == 1


def test_preparation_holds_the_text_of_one_part_at_a_time(corpus, tmp_path, monkeypatch):
    """Memory flat in corpus size: when a part is tokenized, the text of the parts before it is freed, and
    litdata's Ctrl-C handler (which held it) is gone."""
    import litdata

    optimize, earlier, calls = litdata.optimize, [], []

    def checked(**kwargs):
        alive = sum(ref() is not None for ref in earlier)
        calls.append(alive)
        earlier.extend(weakref.ref(batch) for batch in kwargs["inputs"])
        return optimize(**kwargs)

    monkeypatch.setattr(litdata, "optimize", checked)
    handler = signal.getsignal(signal.SIGINT)
    prepare(corpus, tmp_path, tmp_path / "shards")
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C after preparing: as before it
    assert len(calls) >= 3 and calls == [0] * len(calls), (
        f"batches of earlier parts alive at each part: {calls}"
    )


def files(folder: Path) -> dict[str, object]:
    """Every file's bytes; litdata's index.json without its write time."""
    out: dict[str, object] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        out[name] = path.read_bytes()
        if path.name == "index.json":
            out[name] = {k: v for k, v in json.loads(path.read_text()).items() if k != "updated_at"}
    return out


# name -> (script, extra arguments, what stderr says)
BAD = {
    "no_shards": ("train.py", ["data.source.location={tmp}/empty"], ["no prepared shards there"]),
    "another_tokenizer": (
        "train.py",
        ["data.source.location={shards}", "tokenizer.vocab_size=300"],
        [
            "the shards were made with another tokenizer (tokenizer.vocab_size=400)",
            "(tokenizer.vocab_size=300)",
        ],
    ),
    "another_pretrained_tokenizer": (
        "train.py",
        ["data.source.location={shards}", "tokenizer=pretrained", "tokenizer.name_or_path={pretrained}"],
        [
            "the shards were made with another tokenizer (tokenizer=bpe tokenizer.vocab_size=400",
            "tokenizer=pretrained",
        ],
    ),
    "block_too_large": (
        "train.py",
        ["data.source.location={shards}", "data.block_size=2048"],
        ["data.block_size=2048 is larger than every chunk", "a block cannot span two chunks"],
    ),
    "remote_without_its_client": (
        "train.py",
        ["data.source.location=gs://bucket/shards"],
        ["litdata reads gs:// through the google-cloud-storage package", "pip install google-cloud-storage"],
    ),
    "unknown_scheme": (
        "prepare_data.py",
        ["location=ftp://host/shards"],
        ["location=ftp://host/shards: litdata cannot read or write ftp:// locations"],
    ),
}


def bad_args(
    case: str, shards: Path, corpus: Path, tmp_path: Path, pretrained: Path
) -> tuple[str, list, list]:
    script, extra, expected = BAD[case]
    (tmp_path / "empty").mkdir(exist_ok=True)
    extra = [e.format(tmp=tmp_path, shards=shards, pretrained=pretrained) for e in extra]
    if script == "train.py":
        pretrained = "tokenizer=pretrained" in extra
        args = [*[o for o in TINY if not (pretrained and o.startswith("tokenizer."))], "data=streaming"]
        args += [*([] if pretrained else TOKENIZER), *extra]
    else:
        args = [*PREPARE, f"paths.data_dir={corpus}", *extra]
    return script, [*args, f"paths.cache_dir={tmp_path / 'cache'}"], expected


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_before_any_work(case, shards, corpus, tmp_path, small_pretrained_gpt):
    """In-process: the user error each bad input raises, before a model is built or text is tokenized."""
    from lmlab.errors import LmlabError
    from lmlab.stages.train import train

    script, args, expected = bad_args(case, shards, corpus, tmp_path, small_pretrained_gpt)
    stage = train if script == "train.py" else prepare_data
    with pytest.raises(LmlabError) as raised:
        stage(compose(args, tmp_path / "run", config_name=script.removesuffix(".py")))
    for text in expected:
        assert text in str(raised.value)
    assert not (tmp_path / "cache" / "tokenizers").exists()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[] if c == "another_tokenizer" else [pytest.mark.slow]) for c in sorted(BAD)],
)
def test_bad_input_stops_the_command_with_one_message(case, shards, corpus, tmp_path, small_pretrained_gpt):
    script, args, expected = bad_args(case, shards, corpus, tmp_path, small_pretrained_gpt)
    result = run_cli(script, [*args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr[-2000:]


class RecordBlocks:
    """A Lightning callback that appends each training batch's first tokens to blocks-rank<N>.txt (tests)."""

    def __new__(cls, folder: str):
        from lightning.pytorch import Callback

        class _Record(Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                with open(Path(folder) / f"blocks-rank{trainer.global_rank}.txt", "a") as f:
                    for row in batch["input_ids"].tolist():
                        f.write(" ".join(map(str, row)) + "\n")

        return _Record()


@pytest.mark.slow
def test_ddp_reads_each_block_once_per_epoch_across_ranks(corpus, shards, tmp_path):
    """trainer=ddp_cpu (2 processes) for one epoch: the ranks read disjoint blocks, all of them but what
    litdata drops to give both ranks the same number of batches."""
    args = [*[o for o in TINY if not o.startswith("trainer.max_steps")], *TOKENIZER, "data=streaming"]
    args += [
        f"data.source.location={shards}",
        "trainer=ddp_cpu",
        "trainer.max_steps=-1",
        "trainer.max_epochs=1",
    ]
    args += ["trainer.val_check_interval=null", "run_test=false", "export.enabled=false"]
    args += ["+callbacks.record._target_=test_streaming.RecordBlocks", f"+callbacks.record.folder={tmp_path}"]
    args += [f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli("train.py", args, tmp_path, PYTHONPATH=str(ROOT / "tests"))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [(tmp_path / f"blocks-rank{r}.txt").read_text().splitlines() for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    assert not set(ranks[0]) & set(ranks[1])
    seen = ranks[0] + ranks[1]
    total = sum(
        dim // 32
        for dim in json.loads((shards / "lmlab_shards.json").read_text())["splits"]["train"]["chunks"]
    )
    assert len(set(seen)) == len(seen) > total - 2 * 8 * 2  # at most a batch per rank and worker dropped
