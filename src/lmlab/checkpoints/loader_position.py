"""Put the training loader of a resumed run exactly where the checkpoint left it.

The training loader (``lmlab.data.loaders``) is stateful: the checkpoint holds how far into the shuffled
epoch it was, and Lightning gives that back to the loader on resume. Three gaps remain between Lightning
2.6 and torchdata's ``StatefulDataLoader``; each made a resumed run train on other batches than the
uninterrupted one:

- the iterator of the resumed epoch is created before Lightning sets the sampler's epoch, so it replays
  the position in the *first* epoch's order, not in the current one's;
- when ``configure_optimizers`` asks for ``trainer.estimated_stepping_batches`` (schedules of epoch-based
  runs), the loader is built before the checkpoint is restored and its position is never loaded
  (Lightning issue #20550);
- a position at the end of an epoch (a checkpoint after its last batch) makes torchdata start another pass
  in the finished epoch's order.

``take_position`` reads the position and its epoch out of the checkpoint as it is loaded (dropping it when
the epoch's last batch was done: Lightning then starts the next epoch afresh); ``reseat`` creates the
resumed run's iterator again when training starts, after setting the sampler's epoch and loading that
position.
"""

from __future__ import annotations

from typing import Any

from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch import Trainer


def take_position(checkpoint: dict[str, Any]) -> tuple[int | None, list[dict[str, Any]]]:
    """The epoch and the training loader states of a checkpoint. Empty states where there are none, or where
    the epoch's last batch was done: those are also removed from the checkpoint, so that Lightning does not
    load them either, and the epoch is then None (the resumed run's own)."""
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    loop_state = fit_loop.get("state_dict", {})
    states = loop_state.get("combined_loader") or []
    if not states or fit_loop.get("epoch_loop.batch_progress", {}).get("is_last_batch"):
        loop_state["combined_loader"] = []
        return None, []
    # the epoch the position belongs to: the last one started (a run stopped by `trainer.should_stop` has
    # already counted it as processed)
    return fit_loop["epoch_progress"]["current"]["ready"] - 1, states


def reseat(trainer: Trainer, epoch: int | None, states: list[dict[str, Any]]) -> None:
    """Create the training iterator again, in the epoch of the saved position (if any), at that position."""
    loop = trainer.fit_loop
    loader, fetcher = loop._combined_loader, loop._data_fetcher
    if loader is None or fetcher is None:
        return
    for dataloader in loader.flattened:
        _set_sampler_epoch(dataloader, loop.epoch_progress.current.processed if epoch is None else epoch)
    loader._load_state_dicts(states)
    loop._combined_loader_states_to_load = []  # loaded now; never again later
    iter(fetcher)
