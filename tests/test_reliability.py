"""Runs survive kills, preemption and bad numbers: exact resume, SIGTERM saves, atomic files, NaN handling."""

import errno
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY, compose

from lmlab.checkpoints.resume import find_resume_checkpoint
from lmlab.errors import CheckpointError, NonFiniteLossError
from lmlab.stages.train import train

RUN = [
    "trainer.max_steps=24",
    "trainer.val_check_interval=8",
    "callbacks.periodic_checkpoint.every_n_train_steps=5",
    "model.config.resid_pdrop=0.1",  # dropout on: resuming must restore the random generators too
    "run_test=false",
    "export.enabled=false",
]


def run_cli(args, tmp_path, **env):
    environ = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=environ,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    assert not [k for k in a if not torch.equal(a[k], b[k])]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, wikitext_dir):
    tmp = tmp_path_factory.mktemp("straight")
    args = [
        *TINY,
        *RUN,
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"hydra.run.dir={tmp / 'run'}",
    ]
    result = run_cli(args, tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    ("signal", "exit_code"), [("SIGKILL", -9), pytest.param("SIGTERM", 143, marks=pytest.mark.slow)]
)
def test_killed_run_resumes_exactly_with_the_same_command(
    signal, exit_code, uninterrupted, wikitext_dir, tmp_path
):
    """kill -9 after step 13 (last periodic checkpoint: step 10), or SIGTERM (saves at step 13); then the same
    command with resume=auto continues in the same run folder and ends with the uninterrupted run's final
    weights."""
    base = [*TINY, *RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    base += [f"paths.log_dir={tmp_path / 'logs'}", "resume=auto", "logger=many"]
    base += ["+callbacks.kill._target_=conftest.SignalAtStep", "+callbacks.kill.step=13"]
    base += [f"+callbacks.kill.signal={signal}", f"+callbacks.kill.once_file={tmp_path / 'killed'}"]
    first = run_cli(base, tmp_path, WANDB_MODE="offline")
    assert first.returncode == exit_code, first.stderr[-3000:]
    (run_dir,) = (tmp_path / "logs" / "clm_wikitext2" / "runs").iterdir()
    if signal == "SIGTERM":
        assert (run_dir / "checkpoints" / "sigterm-step000013.ckpt").is_file()
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "preempted"
    else:
        assert not (run_dir / "metrics.json").exists()
    # the very same command again (the kill switch fires only once)
    second = run_cli(base, tmp_path, WANDB_MODE="offline")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resume=auto: continuing from" in second.stdout + second.stderr
    assert [p.name for p in (tmp_path / "logs" / "clm_wikitext2" / "runs").iterdir()] == [run_dir.name]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    # last.ckpt holds the final state (step 24, not the periodic save at step 20) of both runs
    for last in (run_dir / "checkpoints" / "last.ckpt", uninterrupted):
        assert torch.load(last, weights_only=True)["global_step"] == 24
    assert_same_weights(run_dir / "checkpoints" / "last.ckpt", uninterrupted)
    # one W&B run: the resumed segment continues the same run id
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(ids) == 1 and len(list((run_dir / "wandb").glob("offline-run-*"))) == 2


# a one-task SLURM job, as sbatch and srun describe it to the process
SLURM_JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "lmlab", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
             "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "SLURM_NODELIST": "localhost"}  # fmt: skip


def test_slurm_requeue_signal_saves_after_a_step_requeues_and_resumes_exactly(
    uninterrupted, tmp_path, tiny_overrides, monkeypatch
):
    """As a SLURM job (its environment, and an `scontrol` that records its arguments): SIGUSR1 (what
    `sbatch --signal=SIGUSR1@90` sends) in step 13 saves requeue-step000013.ckpt after that step, not from
    inside the signal handler as Lightning's auto-requeue would (no hpc_ckpt file), requeues job 4242 and
    exits with 143; the same command again (the requeued job, resume=auto) ends with the uninterrupted run's
    weights."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol-calls"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name, value in SLURM_JOB.items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    overrides = [*tiny_overrides, *RUN, "resume=auto", "+callbacks.kill._target_=conftest.SignalAtStep"]
    overrides += ["+callbacks.kill.step=13", "+callbacks.kill.signal=SIGUSR1"]
    overrides += [f"+callbacks.kill.once_file={tmp_path / 'signalled'}"]
    with pytest.raises(SystemExit) as stopped:
        train(compose(overrides, run))
    assert stopped.value.code == 143
    assert calls.read_text().split() == ["requeue", "4242"]
    assert (run / "checkpoints" / "requeue-step000013.ckpt").is_file()
    assert not list(run.rglob("hpc_ckpt_*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "preempted" and metrics["requeued"] is True
    train(compose(overrides, run))
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert calls.read_text().split() == ["requeue", "4242"]  # once
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 24
    assert_same_weights(run / "checkpoints" / "last.ckpt", uninterrupted)


def test_slurm_plugins_switch_lightnings_requeue_off(tmp_path, tiny_overrides, monkeypatch):
    """On SLURM the trainer gets the configured plugins plus a SLURM environment without Lightning's
    auto-requeue, and lmlab listens to SIGUSR1 (not with slurm_requeue=false); off SLURM nothing changes."""
    import signal

    from lightning.fabric.plugins.environments import SLURMEnvironment

    from lmlab.checkpoints import AtomicCheckpointIO
    from lmlab.reliability.slurm import trainer_plugins

    cfg = compose(tiny_overrides, tmp_path / "run")
    assert trainer_plugins(cfg) == ({}, None)
    for name, value in SLURM_JOB.items():
        monkeypatch.setenv(name, value)
    kwargs, signum = trainer_plugins(cfg)
    io, environment = kwargs["plugins"]
    assert isinstance(io, AtomicCheckpointIO) and isinstance(environment, SLURMEnvironment)
    assert environment.auto_requeue is False and signum == signal.SIGUSR1
    kwargs, signum = trainer_plugins(compose([*tiny_overrides, "slurm_requeue=false"], tmp_path / "run"))
    assert kwargs["plugins"][1].auto_requeue is False and signum is None


def test_requeue_names_array_tasks_and_says_what_to_do_when_scontrol_fails(tmp_path, monkeypatch, caplog):
    from lmlab.reliability.slurm import requeue_job, slurm_job_id

    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    assert slurm_job_id() == "4200_7"
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol here
    assert requeue_job() is False
    assert "Could not requeue SLURM job 4200_7" in caplog.text
    assert "submit the same script again" in caplog.text


ENDINGS = {
    "max_steps": [],
    "max_epochs": ["trainer.max_steps=-1", "trainer.max_epochs=2", "+trainer.limit_train_batches=12"],
    # the second validation (step 16) is no improvement of 100: stop
    "early_stopping": ["callbacks=early_stopping", "callbacks.early_stopping.patience=1",
                       "callbacks.early_stopping.min_delta=100"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("ending", "final_step"), [("max_steps", 24), ("max_epochs", 24), ("early_stopping", 16)]
)
def test_last_checkpoint_holds_the_final_state(ending, final_step, tmp_path, tiny_overrides, monkeypatch):
    """Periodic saves at steps 10 and 20; last.ckpt is written once more when training ends, with the final
    weights (those exported) and lmlab's metadata; the same command again (resume=auto) trains no step."""
    from safetensors.torch import load_file

    from lmlab.tasks.lm import LanguageModelModule

    steps = []
    real_step = LanguageModelModule.training_step

    def counted(self, batch, batch_idx):
        steps.append(self.global_step)
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(LanguageModelModule, "training_step", counted)
    run = tmp_path / "run"
    overrides = [
        *tiny_overrides,
        *RUN,
        "callbacks.periodic_checkpoint.every_n_train_steps=10",
        *ENDINGS[ending],
    ]
    overrides += ["resume=auto", "export.enabled=true", "export.weights=last"]
    train(compose(overrides, run))
    assert len(steps) == final_step
    ckpts = run / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert last["global_step"] == final_step
    assert last["lmlab"]["head"] == "causal_lm" and last["lmlab"]["tokenizer_files"]  # written by RunMetadata
    exported = load_file(run / "export" / "model.safetensors")
    assert exported and all(torch.equal(v, last["state_dict"][f"model.{k}"]) for k, v in exported.items())
    # saved once at the end: last.ckpt only, no periodic file for the final step, no temporary files
    names = sorted(p.name for p in ckpts.iterdir() if not p.name.startswith("step"))
    assert (
        names
        == ["last.ckpt", "periodic-step000010.ckpt", "periodic-step000020.ckpt"][: 3 - (final_step < 20)]
    )

    before = (ckpts / "last.ckpt").stat().st_mtime_ns
    steps.clear()
    train(compose(overrides, run))
    assert steps == [] and (ckpts / "last.ckpt").stat().st_mtime_ns == before
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_resume_skips_a_truncated_checkpoint(tmp_path, tiny_overrides):
    run = tmp_path / "run"
    train(compose([*tiny_overrides, *RUN, "trainer.max_steps=12"], run))
    ckpts = run / "checkpoints"
    newest = ckpts / "last.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a kill in the middle of a write (non-atomic writer)
    found = find_resume_checkpoint(run)
    assert found is not None and found != newest
    assert torch.load(found, weights_only=True)["global_step"] == 10  # periodic-step000010.ckpt
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        train(compose([*tiny_overrides, f"ckpt_path={newest}"], tmp_path / "again"))


def test_full_disk_while_writing_a_checkpoint(tmp_path, tiny_overrides, monkeypatch):
    import lmlab.checkpoints.atomic_io as cio

    real_save = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 3:  # the first checkpoints succeed, then the disk is full mid-write
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(cio.torch, "save", save)
    with pytest.raises(CheckpointError, match="no space left on the device while writing the checkpoint"):
        train(compose([*tiny_overrides, *RUN], tmp_path / "run"))
    files = list((tmp_path / "run" / "checkpoints").iterdir())
    assert files and not [p for p in files if p.name.startswith(".")]  # no temporary leftovers
    for path in files:  # every file under a final name is complete
        assert torch.load(path, weights_only=True)["global_step"] >= 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


def test_nonfinite_loss_stops_naming_the_step(tmp_path, tiny_overrides, monkeypatch):
    from lmlab.tasks.lm import LanguageModelModule

    real = LanguageModelModule._forward_loss

    def poisoned(self, batch, stage, batch_idx, with_accuracy):
        loss, acc, n = real(self, batch, stage, batch_idx, with_accuracy)
        if stage == "train" and self.global_step == 3:
            loss = loss * float("nan")
        return loss, acc, n

    monkeypatch.setattr(LanguageModelModule, "_forward_loss", poisoned)
    with pytest.raises(
        NonFiniteLossError, match=r"the training loss is nan at step 3 .*task.on_nonfinite_loss=skip"
    ):
        train(compose([*tiny_overrides, *RUN], tmp_path / "stop"))
    saved = sorted(p.name for p in (tmp_path / "stop" / "nonfinite").iterdir())
    assert saved == ["batch-step3-rank0.pt", "weights-before-step3-rank0.pt"]
    assert json.loads((tmp_path / "stop" / "metrics.json").read_text())["status"] == "failed"

    metrics = train(compose([*tiny_overrides, *RUN, "task.on_nonfinite_loss=skip"], tmp_path / "skip"))
    assert metrics["val/loss"] == metrics["val/loss"]  # finite: the poisoned batch was skipped


def test_deterministic_runs_are_bitwise_identical(tmp_path, tiny_overrides):
    import csv

    def losses(name):
        train(compose([*tiny_overrides, *RUN, "trainer.deterministic=true"], tmp_path / name))
        with open(tmp_path / name / "csv" / "metrics.csv") as f:
            return [r["train/loss"] for r in csv.DictReader(f) if r.get("train/loss")]

    first, second = losses("a"), losses("b")
    assert len(first) == 24 and first == second


def test_secrets_never_reach_run_files(tmp_path, tiny_overrides, monkeypatch):
    secret = "wandb-secret-0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    run = tmp_path / "run"
    train(compose([*tiny_overrides, *RUN, f"tags=[{secret}]"], run))
    leaks = []
    for path in run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if secret.encode() in data:
                leaks.append(str(path.relative_to(run)))
    assert not leaks, f"secret written to {leaks}"
    assert "***" in (run / "config_resolved.yaml").read_text()


def test_a_readonly_data_dir_is_never_written(tmp_path, tiny_overrides, wikitext_dir):
    before = sorted((p.relative_to(wikitext_dir), p.stat().st_mtime_ns) for p in wikitext_dir.rglob("*"))
    train(compose([*tiny_overrides, *RUN, "trainer.max_steps=2"], tmp_path / "run"))
    after = sorted((p.relative_to(wikitext_dir), p.stat().st_mtime_ns) for p in wikitext_dir.rglob("*"))
    assert before == after
