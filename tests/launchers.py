"""Start train.py as torchrun and srun would (tests only): ranks as separate processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return {**env, "PYTHONPATH": str(ROOT / "tests"), **extra}


def finish(procs: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Wait for every process; their return codes and output (stderr merged into stdout)."""
    done = []
    for p in procs:
        out, _ = p.communicate(timeout=TIMEOUT)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, ""))
    return done


def start(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def torchrun_nodes(
    script: list[str], cwd: Path, nnodes: int, nproc: int
) -> list[subprocess.CompletedProcess]:
    """One torchrun agent per "node", all on this machine: ``--standalone`` for one node (the README's
    command), a static rendezvous at 127.0.0.1 for several."""
    if nnodes == 1:
        return finish(
            [start([TORCHRUN, "--standalone", f"--nproc_per_node={nproc}", *script], cwd, environ())]
        )
    port = free_port()
    procs = [
        start(
            [
                TORCHRUN,
                f"--nnodes={nnodes}",
                f"--node_rank={i}",
                f"--nproc_per_node={nproc}",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                *script,
            ],
            cwd,
            environ(),
        )  # fmt: skip
        for i in range(nnodes)
    ]
    return finish(procs)


def srun_tasks(
    script: list[str], cwd: Path, ntasks: int, job_id: str = "4242"
) -> list[subprocess.CompletedProcess]:
    """``ntasks`` processes with the environment srun gives the tasks of a job (one task per node)."""
    port = free_port()
    procs = []
    for rank in range(ntasks):
        env = environ(
            SLURM_JOB_ID=job_id, SLURM_JOB_NAME="lmlab-test", SLURM_NTASKS=str(ntasks), SLURM_NNODES=str(ntasks),
            SLURM_NTASKS_PER_NODE="1", SLURM_PROCID=str(rank), SLURM_LOCALID="0", SLURM_NODEID=str(rank),
            SLURM_NODELIST="localhost", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        )  # fmt: skip
        procs.append(start([sys.executable, *script], cwd, env))
    return finish(procs)
