"""Ranks started by torchrun or srun agree on one run folder and one checkpoint, then train as one run."""

import json
import textwrap

import pytest
import torch
from conftest import TINY
from launchers import ROOT, srun_tasks, torchrun_nodes
from safetensors.torch import load_file

from lmlab.checkpoints import checkpoint_step, find_resume_checkpoint

# Rank 0 decides (its process id), every rank prints what it was told; then the process group Lightning would
# create at the same address works (under srun it shares the server that rank 0 started for the agreement).
PROBE = """
import json, os, torch.distributed as dist
from lmlab.scale.launch import agree, external_launch
launch = external_launch()
value = agree("probe", lambda: str(os.getpid()))
assert agree("probe", lambda: "asked twice") == value
from lmlab.config.run_dir import run_dir  # each rank's clock gives another folder name: rank 0's wins
folder = run_dir("logs/runs", None, [], now=f"made-by-rank{launch.rank}")
os.environ.setdefault("MASTER_ADDR", launch.address); os.environ.setdefault("MASTER_PORT", str(launch.port))
dist.init_process_group("gloo", rank=launch.rank, world_size=launch.world_size)
import torch; t = torch.tensor([launch.rank + 1.0]); dist.all_reduce(t)
seen = dict(pid=str(os.getpid()), value=value, sum=t.item(), folder=folder)
open(f"agreed.{launch.rank}.json", "w").write(json.dumps(seen))
dist.destroy_process_group()
"""


def agreed(folder):
    """What each rank was told, by rank (the probe writes one file per rank: their output interleaves)."""
    return {int(p.suffixes[0][1:]): json.loads(p.read_text()) for p in folder.glob("agreed.*.json")}


# srun (the same agreement over SLURM variables) also runs in pytest -m slow with the launch tests below
@pytest.mark.parametrize("launcher", ["torchrun", pytest.param("srun", marks=pytest.mark.slow)])
def test_ranks_agree_before_the_process_group_exists(launcher, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE))
    if launcher == "torchrun":
        results = torchrun_nodes([str(probe)], tmp_path, nnodes=1, nproc=2)
    else:
        results = srun_tasks([str(probe)], tmp_path, ntasks=2)
    assert all(r.returncode == 0 for r in results), "\n".join(r.stdout[-2000:] for r in results)
    ranks = agreed(tmp_path)
    assert sorted(ranks) == [0, 1]
    assert ranks[0]["value"] == ranks[1]["value"] == ranks[0]["pid"]  # rank 0's choice, on both ranks
    assert ranks[0]["sum"] == ranks[1]["sum"] == 3.0
    assert ranks[0]["folder"] == ranks[1]["folder"] == "logs/runs/made-by-rank0"


# ---- train.py under each launch path (slow: several multi-process runs each) ----

RUN = [
    *TINY,
    "trainer.max_steps=12",
    "trainer.val_check_interval=4",
    "trainer.limit_val_batches=null",
    "callbacks.periodic_checkpoint.every_n_train_steps=5",
    "run_test=false",
]
KILL = ["+callbacks.kill._target_=conftest.SignalAtStep", "+callbacks.kill.step=7"]


def data_overrides(wikitext_dir, tmp_path):
    return [
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, wikitext_dir):
    """The same training in one process with the same global batch (8 sequences): the reference."""
    from launchers import environ, finish, start

    tmp = tmp_path_factory.mktemp("one_process")
    args = [*RUN, *data_overrides(wikitext_dir, tmp), "data.batch_size=8", f"hydra.run.dir={tmp / 'run'}"]
    (result,) = finish([start([__import__("sys").executable, str(ROOT / "train.py"), *args], tmp, environ())])
    assert result.returncode == 0, result.stdout[-3000:]
    return tmp / "run"


def only_run(tmp_path):
    runs = list((tmp_path / "logs" / "clm_wikitext2" / "runs").iterdir())
    assert len(runs) == 1, f"one run folder for all ranks, got {[r.name for r in runs]}"
    return runs[0]


def assert_one_run(run_dir, tmp_path, ranks=2):
    assert len(list((tmp_path / "logs").rglob("metrics.json"))) == 1
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert (run_dir / ".hydra" / "overrides.yaml").is_file() and (run_dir / "config_resolved.yaml").is_file()
    assert (run_dir / "train.log").is_file()
    assert [(run_dir / f"train_rank{r}.log").is_file() for r in range(1, ranks)] == [True] * (ranks - 1)
    assert len(list((tmp_path / "logs").rglob("model.safetensors"))) == 1


def assert_same_export(run_dir, reference, rtol=1e-4, atol=1e-6):
    a = load_file(run_dir / "export" / "model.safetensors")
    b = load_file(reference / "export" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol, msg=key)


def resumed_from(results):
    """The checkpoint each rank said it continues from."""
    text = "".join(r.stdout for r in results)
    return sorted(
        line.split("continuing from ")[1].strip() for line in text.splitlines() if "continuing from" in line
    )


@pytest.mark.slow
def test_torchrun_on_one_node_is_one_run(one_process, wikitext_dir, tmp_path):
    """README: torchrun --standalone --nproc_per_node=2 train.py trainer=ddp_cpu (here with a fixed port)."""
    script = [str(ROOT / "train.py"), *RUN, *data_overrides(wikitext_dir, tmp_path), "trainer=ddp_cpu"]
    (result,) = torchrun_nodes([*script, "data.batch_size=4", "logger=many"], tmp_path, nnodes=1, nproc=2)
    assert result.returncode == 0, result.stdout[-3000:]
    run_dir = only_run(tmp_path)
    assert_one_run(run_dir, tmp_path)
    assert_same_export(run_dir, one_process)
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1  # one W&B run, from rank 0


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "srun"])
def test_two_nodes_killed_and_resumed(launcher, one_process, wikitext_dir, tmp_path):
    """Two "nodes" of one process each, killed together at step 7 (last checkpoint: step 5); the very same
    command with resume=auto continues every rank from that checkpoint, in the same folder, to the same weights
    as one process; one W&B run id across both segments."""
    args = [*RUN, *data_overrides(wikitext_dir, tmp_path), "trainer=ddp_cpu", "trainer.devices=1"]
    args += ["trainer.num_nodes=2", "data.batch_size=4", "resume=auto", "logger=many", *KILL]
    args += [f"+callbacks.kill.once_file={tmp_path / 'killed'}"]
    script = [str(ROOT / "train.py"), *args]

    def launch():
        if launcher == "torchrun":
            return torchrun_nodes(script, tmp_path, nnodes=2, nproc=1)
        return srun_tasks(script, tmp_path, ntasks=2)

    first = launch()
    assert all(r.returncode != 0 for r in first), "every rank was killed"
    run_dir = only_run(tmp_path)
    assert not (run_dir / "metrics.json").exists()
    newest = find_resume_checkpoint(run_dir)
    assert checkpoint_step(newest) == 5

    second = launch()
    assert all(r.returncode == 0 for r in second), "\n".join(r.stdout[-3000:] for r in second)
    assert only_run(tmp_path) == run_dir
    assert resumed_from(second) == [str(newest)] * 2, "every rank continues from the same checkpoint"
    assert_one_run(run_dir, tmp_path)
    assert_same_export(run_dir, one_process)
    ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(ids) == 1 and len(list((run_dir / "wandb").glob("offline-run-*"))) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "stop_step"),
    [(["+callbacks.kill.step=7"], 7), (["+callbacks.kill.step=8", "+callbacks.kill.val_batch=1"], 9)],
    ids=["step", "validation"],
)
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(
    where, stop_step, one_process, wikitext_dir, tmp_path
):
    """SIGTERM to rank 1 only (``kill`` of one process), at the end of step 7, or during the validation at
    step 8 (acted on after step 9 on several processes): no hang, both ranks stop after the same optimizer
    step, one stop checkpoint, status preempted; the same command with resume=auto ends with one process's
    weights."""
    args = [*RUN, *data_overrides(wikitext_dir, tmp_path), "trainer=ddp_cpu", "data.batch_size=4"]
    args += [
        "resume=auto",
        "+callbacks.kill._target_=conftest.SignalAtStep",
        "+callbacks.kill.signal=SIGTERM",
    ]
    args += [*where, "+callbacks.kill.rank=1", f"+callbacks.kill.once_file={tmp_path / 'signalled'}"]
    script = [str(ROOT / "train.py"), *args]

    (first,) = torchrun_nodes(script, tmp_path, nnodes=1, nproc=2)
    assert first.returncode != 0, first.stdout[-3000:]
    assert not (tmp_path / "signalled.rank0").exists() and (tmp_path / "signalled.rank1").exists()
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "preempted"
    saved = sorted(p.name for p in (run_dir / "checkpoints").glob("sigterm-*.ckpt"))
    assert saved == [f"sigterm-step{stop_step:06d}.ckpt"], first.stdout[-3000:]

    (second,) = torchrun_nodes(script, tmp_path, nnodes=1, nproc=2)
    assert second.returncode == 0, second.stdout[-3000:]
    assert resumed_from([second]) == [str(run_dir / "checkpoints" / saved[0])] * 2
    assert_one_run(run_dir, tmp_path)
    assert_same_export(run_dir, one_process)
