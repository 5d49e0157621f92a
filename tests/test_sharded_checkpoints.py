"""FSDP and DeepSpeed checkpoint folders work wherever a ``.ckpt`` file does: resume=auto, ckpt_path=, evaluate.py
and the export; a folder whose save was interrupted is never taken for a checkpoint.

The fast tests write the folders from one process, laid out as the strategies write them; the slow ones train
with FSDP on two CPU processes (trainer=fsdp_cpu), kill, resume and evaluate through the entry points.
"""

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from conftest import ROOT, TINY, compose
from lightning.pytorch.strategies import DDPStrategy
from safetensors.torch import load_file

from lmlab.checkpoints import (
    ResumeCheckpoint,
    checkpoint_layout,
    checkpoint_step,
    find_resume_checkpoint,
    load_model_for_eval,
    load_tokenizer_for_eval,
    read_checkpoint,
)
from lmlab.errors import CheckpointError
from lmlab.scale.strategies import AtomicFolderSave
from lmlab.stages.train import train

# the folders written here come from one process, on purpose
pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, wikitext_dir):
    """A real lmlab checkpoint (2 steps of a tiny run), loaded."""
    tmp = tmp_path_factory.mktemp("trained")
    overrides = [*TINY, "trainer.max_steps=2", "run_test=false", "export.enabled=false"]
    overrides += [f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp / 'cache'}"]
    train(compose(overrides, tmp / "run"))
    return torch.load(tmp / "run" / "checkpoints" / "last.ckpt", weights_only=True)


def write_fsdp(ckpt, folder):
    """As Lightning's FSDPStrategy (state_dict_type: sharded) writes it, here from one process: the weights and
    optimizer states through torch.distributed.checkpoint, everything else in meta.pt (written last)."""
    rest = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_states")}
    moments = {k: {"exp_avg": torch.zeros_like(v)} for k, v in ckpt["state_dict"].items()}
    dcp.save(
        {"model": ckpt["state_dict"], "optimizer_0": {"state": moments}}, checkpoint_id=folder, no_dist=True
    )
    torch.save(rest, folder / "meta.pt")
    return folder


def write_deepspeed(ckpt, folder, zero3=False, prefix=""):
    """As DeepSpeed's engine.save_checkpoint writes it for Lightning's DeepSpeedStrategy (tag "checkpoint",
    Lightning's checkpoint without weights and optimizer states as the client state), on 2 ranks."""
    client = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_states")}
    weights = {prefix + k: v for k, v in ckpt["state_dict"].items()}
    tied = {prefix + "model.lm_head.weight": prefix + "model.transformer.wte.weight"}
    config = {"zero_optimization": {"stage": 3 if zero3 else 2}, "train_micro_batch_size_per_gpu": 8}
    engine = dict(buffer_names=[], optimizer=None, lr_scheduler=None, sparse_tensor_module_names=set(),
                  skipped_steps=0, global_steps=ckpt["global_step"], global_samples=32, dp_world_size=2,
                  mp_world_size=1, ds_config=config, ds_version="0.19.6", shared_params=tied,
                  param_shapes=[{k: v.shape for k, v in weights.items() if k not in tied}])  # fmt: skip
    tag = folder / "checkpoint"
    tag.mkdir(parents=True)
    module = {k: torch.empty(0) for k in weights} if zero3 else weights  # ZeRO-3: placeholders, on every rank
    names = (
        [f"zero_pp_rank_{r}_mp_rank_00_model_states.pt" for r in (0, 1)]
        if zero3
        else ["mp_rank_00_model_states.pt"]
    )
    for name in names:
        torch.save({"module": module, **engine, **client}, tag / name)
    for rank in (0, 1):
        optimizer = {"zero_stage": 3 if zero3 else 2, "partition_count": 2, "loss_scaler": None}
        torch.save({"optimizer_state_dict": optimizer, "ds_config": config, "ds_version": "0.19.6"},
                   tag / f"bf16_zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")  # fmt: skip
    (folder / "zero_to_fp32.py").write_text("# DeepSpeed's converter\n")
    (folder / "latest").write_text("checkpoint")
    return folder


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    assert not [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("layout", ["fsdp", "deepspeed", "deepspeed_old_prefix"])
def test_folders_read_as_the_checkpoint(layout, trained, tmp_path):
    folder = tmp_path / "run" / "checkpoints" / "last.ckpt"
    folder.mkdir(parents=True)
    if layout == "fsdp":
        write_fsdp(trained, folder)
    else:
        write_deepspeed(trained, folder, prefix="_forward_module." if layout.endswith("prefix") else "")
    assert checkpoint_layout(folder) == layout.split("_")[0]
    ckpt = read_checkpoint(folder)
    assert ckpt["global_step"] == checkpoint_step(folder) == 2
    assert ckpt["lmlab"] == trained["lmlab"] and ckpt["loops"] == trained["loops"]
    assert_same_state(ckpt["state_dict"], trained["state_dict"])
    without_weights = read_checkpoint(folder, weights=False)["state_dict"]  # what a resume check reads
    assert layout != "fsdp" or {v.device.type for v in without_weights.values()} == {"meta"}
    resume = ResumeCheckpoint.read(folder)
    assert resume.shapes == {k: tuple(v.shape) for k, v in trained["state_dict"].items()}
    assert find_resume_checkpoint(tmp_path / "run") == folder
    model, tokenizer, head, config = load_model_for_eval(str(folder))
    assert head == "causal_lm" and config == trained["lmlab"]["config"] and len(tokenizer) > 0
    assert load_tokenizer_for_eval(str(folder))[0].get_vocab() == tokenizer.get_vocab()  # evaluation=coverage
    assert_same_state({f"model.{k}": v for k, v in model.state_dict().items()}, trained["state_dict"])


def test_deepspeed_zero3_is_refused_with_the_converter(trained, tmp_path):
    folder = write_deepspeed(trained, tmp_path / "last.ckpt", zero3=True)
    with pytest.raises(CheckpointError, match="ZeRO stage 3.*convert_zero_checkpoint_to_fp32_state_dict"):
        load_model_for_eval(str(folder))
    # resuming needs only the shapes: the partitioned weights' from param_shapes, the tied one under both names
    resume = ResumeCheckpoint.read(folder)
    assert resume.shapes == {k: tuple(v.shape) for k, v in trained["state_dict"].items()}
    assert checkpoint_step(folder) == 2


@pytest.mark.parametrize(
    ("layout", "damage", "why"),
    [
        ("fsdp", lambda f: (f / "meta.pt").unlink(), "no meta.pt"),
        ("fsdp", lambda f: (f / ".metadata").unlink(), "no .metadata"),
        ("deepspeed", lambda f: (f / "latest").unlink(), "no 'latest' file"),
        ("deepspeed", lambda f: next(f.glob("checkpoint/mp_rank_00_*")).unlink(), "no checkpoint/mp_rank_00"),
        ("deepspeed", lambda f: [p.unlink() for p in f.glob("checkpoint/*optim*")], "no optimizer states"),
    ],
)
def test_incomplete_folders_are_skipped(layout, damage, why, trained, tmp_path, caplog):
    ckpts = tmp_path / "run" / "checkpoints"
    older = ckpts / "periodic-step000001.ckpt"
    older.mkdir(parents=True)
    write_fsdp({**trained, "global_step": 1}, older)
    newest = ckpts / "last.ckpt"
    newest.mkdir()
    (write_fsdp if layout == "fsdp" else write_deepspeed)(trained, newest)
    damage(newest)
    assert find_resume_checkpoint(tmp_path / "run") == older
    assert f"Skipping {newest}: an incomplete checkpoint folder ({why}" in caplog.text
    assert checkpoint_step(newest) is None
    with pytest.raises(CheckpointError, match=f"incomplete {layout} checkpoint folder"):
        read_checkpoint(newest)


def test_temporary_folders_are_not_checkpoints(trained, tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    write_fsdp({**trained, "global_step": 1}, ckpts / "last.ckpt")
    # a complete-looking folder an atomic save left behind under its hidden name
    write_fsdp({**trained, "global_step": 9}, ckpts / ".last.ckpt.tmp-abc123")
    assert find_resume_checkpoint(tmp_path / "run") == ckpts / "last.ckpt"


def test_dcp_index_is_unpickled_safely(trained, tmp_path):
    folder = write_fsdp(trained, tmp_path / "last.ckpt")
    (folder / ".metadata").write_bytes(pickle.dumps(os.system))  # a pickle that would call a function
    with pytest.raises(CheckpointError, match="not a readable checkpoint.*not part of a torch.distributed"):
        read_checkpoint(folder)
    assert checkpoint_step(folder) == 2  # the step is in meta.pt; the lookup then fails at the read


class FolderWriter:
    """A one-rank strategy whose save writes a folder file by file (and can fail half-way)."""

    is_global_zero = True
    fail_after: int | None = None

    broadcast = staticmethod(lambda obj, src=0: obj)
    barrier = staticmethod(lambda name=None: None)

    def save_checkpoint(self, checkpoint, filepath, storage_options=None):
        for i, (name, text) in enumerate(checkpoint.items()):
            if self.fail_after == i:
                raise OSError("disk full")
            (Path(filepath) / name).write_text(text)


class AtomicWriter(AtomicFolderSave, FolderWriter):
    pass


def test_atomic_folder_save_replaces_or_keeps_the_previous(tmp_path):
    writer, target = AtomicWriter(), tmp_path / "last.ckpt"
    writer.save_checkpoint({"a": "1", "b": "1"}, target)
    (tmp_path / ".last.ckpt.tmp-killed").mkdir()  # what a kill during an earlier save left
    writer.save_checkpoint({"a": "2", "b": "2"}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # replaced; the leftover removed
    assert (target / "b").read_text() == "2"
    writer.fail_after = 1
    with pytest.raises(OSError, match="disk full"):
        writer.save_checkpoint({"a": "3", "b": "3"}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert (target / "a").read_text() == (target / "b").read_text() == "2"  # the previous one, whole


def test_a_folder_resumes_only_with_its_strategy(trained, tmp_path):
    resume = ResumeCheckpoint.read(write_fsdp(trained, tmp_path / "last.ckpt"))
    with pytest.raises(CheckpointError, match=r"fsdp checkpoint folder.*uses DDPStrategy.*trainer=fsdp"):
        resume.check_strategy(DDPStrategy())


# ------------------------------------------------------------------ FSDP on 2 CPU processes, end to end
FSDP = [
    "trainer=fsdp_cpu",
    "data.batch_size=4",
    "trainer.max_steps=12",
    "trainer.val_check_interval=4",
    "callbacks.periodic_checkpoint.every_n_train_steps=5",
    "model.config.resid_pdrop=0.1",  # dropout on: the resumed run must draw the same numbers
    "run_test=false",
]


def run_cli(script, args, cwd):
    environ = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=environ, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def exported(run_dir):
    return load_file(run_dir / "export" / "model.safetensors")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, wikitext_dir):
    """An uninterrupted FSDP run, which exports its final weights; and its command line."""
    tmp = tmp_path_factory.mktemp("fsdp")
    base = [*TINY, *FSDP, "export.weights=last", f"paths.data_dir={wikitext_dir}"]
    base += [f"paths.cache_dir={tmp / 'cache'}"]
    result = run_cli("train.py", [*base, f"hydra.run.dir={tmp / 'run'}"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run", base


@pytest.mark.slow
def test_fsdp_run_killed_and_resumed_ends_as_the_uninterrupted_one(straight, tmp_path):
    run_dir, base = straight
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # a folder, consolidated
    assert (run_dir / "checkpoints" / "last.ckpt" / ".metadata").is_file() and last["global_step"] == 12
    export = exported(run_dir)  # a plain Hugging Face folder with the final weights
    assert export and all(torch.equal(v, last["state_dict"][f"model.{k}"]) for k, v in export.items())

    # kill -9 after step 7 (both ranks; newest checkpoint: step 5), then resume=auto in the same run folder
    args = [*base, "resume=auto", f"hydra.run.dir={tmp_path / 'run'}"]
    kill = ["+callbacks.kill._target_=conftest.SignalAtStep", "+callbacks.kill.step=7"]
    first = run_cli("train.py", [*args, *kill], tmp_path)
    assert first.returncode == -9, first.stderr[-3000:]
    ckpts = tmp_path / "run" / "checkpoints"
    assert checkpoint_step(ckpts / "last.ckpt") == 5
    # what interrupted saves leave: a hidden temporary folder; a folder without its index and meta.pt
    leftover, partial = ckpts / ".last.ckpt.tmp-killed", ckpts / "periodic-step000099.ckpt"
    for folder in (leftover, partial):
        folder.mkdir()
    (partial / "__0_0.distcp").write_bytes(b"\0" * 64)
    second = run_cli("train.py", args, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    output = second.stdout + second.stderr
    assert f"Skipping {partial}: an incomplete checkpoint folder (no meta.pt and no .metadata)" in output
    assert re.search(r"resume=auto: continuing from \S+/(last|periodic-step000005)\.ckpt\n", output)  # step 5
    assert not leftover.exists()  # removed by the next save of last.ckpt
    assert checkpoint_step(ckpts / "last.ckpt") == 12
    resumed = exported(tmp_path / "run")
    assert resumed.keys() == export.keys()
    assert not [k for k in export if not torch.equal(export[k], resumed[k])]


@pytest.mark.slow
def test_fsdp_folder_as_ckpt_path_and_in_evaluate(straight, tmp_path):
    run_dir, base = straight
    folder = run_dir / "checkpoints" / "last.ckpt"
    # continue the finished run from its folder, 4 more steps; test and export the best checkpoint's weights
    args = [o for o in base if not o.startswith(("trainer.max_steps", "export.weights", "run_test"))]
    more = tmp_path / "more"
    args += ["trainer.max_steps=16", f"ckpt_path={folder}", f"hydra.run.dir={more}"]
    result = run_cli("train.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_step(more / "checkpoints" / "last.ckpt") == 16
    summary = json.loads((more / "metrics.json").read_text())
    assert "test/loss" in summary["metrics"]
    state = read_checkpoint(summary["best_checkpoint"])["state_dict"]
    assert all(torch.equal(v, state[f"model.{k}"]) for k, v in exported(more).items())

    # evaluate.py reads the folder: the loss of the export of the same weights
    losses = {}
    for name, ckpt in (("folder", folder), ("export", run_dir / "export")):
        out = tmp_path / f"eval_{name}"
        args = [f"ckpt_path={ckpt}", "split=validation", "stride=32", f"hydra.run.dir={out}"]
        args += [o for o in base if o.startswith("paths.")]
        result = run_cli("evaluate.py", args, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        losses[name] = json.loads((out / "metrics.json").read_text())["metrics"]["validation/loss"]
    assert losses["folder"] == pytest.approx(losses["export"], rel=1e-6)
