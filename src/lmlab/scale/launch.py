"""Processes started by an external launcher (torchrun, srun) agree on their run before they train.

Lightning's own launcher starts the other ranks from rank 0 and hands them rank 0's run folder
(``lmlab.scale.hydra_ddp``). With ``torchrun`` or ``srun`` every rank is started on its own, composes its own
config and would resolve its own timestamped ``hydra.run.dir`` (one folder per rank when the clock ticks
between them) and its own ``resume=auto`` choice. Here rank 0 decides such values and the other ranks read
them from the launch's TCP store, before the process group exists:

- under torchrun, the store its agent hosts (``TORCHELASTIC_USE_AGENT_STORE``), keyed by the restart count;
- under srun, a store rank 0 hosts at ``MASTER_ADDR:MASTER_PORT`` (derived from the job as Lightning does).
  It is multi-tenant, so the process group Lightning creates later at the same address shares its server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

AGREE_TIMEOUT = timedelta(minutes=10)

_stores: dict[tuple[str, int], object] = {}  # kept open for the life of the process (rank 0 may host it)
_agreed: dict[str, str] = {}  # a value is agreed once per process; later asks get the same answer


@dataclass(frozen=True)
class Launch:
    """An external multi-process launch: who this process is and where the ranks meet."""

    launcher: str  # "torchrun" or "srun"
    rank: int
    world_size: int
    address: str
    port: int
    agent_store: bool  # torchrun's agent hosts the store; otherwise rank 0 does
    attempt: str  # restarts of the same launch (torchrun --max-restarts, SLURM requeue) agree afresh


def external_launch() -> Launch | None:
    """The torchrun or srun launch this process belongs to, if it has more than one process; else None."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        env = TorchElasticEnvironment()
        launcher, attempt = "torchrun", os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    elif SLURMEnvironment.detect():
        env = SLURMEnvironment()
        launcher, attempt = "srun", os.environ.get("SLURM_RESTART_COUNT", "0")
    else:
        return None
    if env.world_size() <= 1:
        return None
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    return Launch(
        launcher, env.global_rank(), env.world_size(), env.main_address, env.main_port, agent, attempt
    )


def global_rank() -> int:
    """This process's rank as any launcher (Lightning's, torchrun, srun) sets it; 0 when not launched."""
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _store(launch: Launch):
    from torch.distributed import TCPStore

    key = (launch.address, launch.port)
    if key not in _stores:
        host = launch.rank == 0 and not launch.agent_store
        # world_size=None: this store waits for nobody; the process group counts its own members later
        _stores[key] = TCPStore(
            launch.address, launch.port, None, host, AGREE_TIMEOUT, wait_for_workers=False, multi_tenant=True
        )
    return _stores[key]


def agree(name: str, decide: Callable[[], str]) -> str:
    """``decide()`` on rank 0 of an external launch, the same value on every other rank; ``decide()`` alone
    when this process was not started by torchrun or srun with others."""
    if name in _agreed:
        return _agreed[name]
    launch = external_launch()
    if launch is None:
        return decide()
    store = _store(launch)
    key = f"lmlab/{launch.attempt}/{name}"
    if launch.rank == 0:
        value = decide()
        store.set(key, value)
    else:
        try:
            value = store.get(key).decode()
        except RuntimeError as e:  # rank 0 never answered: it failed before this point, or cannot be reached
            raise RuntimeError(
                f"rank {launch.rank} of a {launch.launcher} launch waited {AGREE_TIMEOUT} for rank 0 at "
                f"{launch.address}:{launch.port} to choose '{name}' and got no answer: see rank 0's error"
            ) from e
    _agreed[name] = value
    return value
