"""The Optuna study of a sweep: created or loaded from its storage (resume), counted, read back as records."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from lmlab.errors import ConfigError
from lmlab.sweeps.records import TrialRecord

log = logging.getLogger("lmlab.sweeps")

INTERRUPTED = "interrupted"  # user attribute of a trial the sweep was stopped in (Ctrl-C, scheduler)
RERUN_OF = "rerun_of"  # user attribute of the trial that runs an interrupted one again: its number
_STATUS = {
    TrialState.COMPLETE: "completed",
    TrialState.FAIL: "failed",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
}


def open_study(storage: str | None, study_name: str, direction: str, sampler: optuna.samplers.BaseSampler):
    """Create the study, or load it with its trials when ``storage`` already holds ``study_name``."""
    if storage and storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, sampler=sampler, direction=direction, load_if_exists=True
        )
    except (ImportError, ValueError, RuntimeError) as e:  # bad URL, missing database driver, ...
        raise ConfigError(
            f"hydra.sweeper.storage={storage}: the Optuna storage cannot be opened: {e}"
        ) from None
    stored = study.direction.name.lower()
    if stored != direction:
        raise ConfigError(
            f"study {study_name} in {storage} was created to {stored}, but hydra.sweeper.direction={direction}: "
            "resume it with the same direction, or start a new study (hydra.sweeper.study_name=<new name>)"
        )
    return study


def counts_toward_n_trials(trial: FrozenTrial) -> bool:
    """Finished trials count; one cut short by an interruption does not (it is run again)."""
    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get(INTERRUPTED, False)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def enqueue_reruns(study: optuna.Study) -> list[int]:
    """Enqueue each interrupted trial's parameters once more (a resumed sweep trains them again, from the
    start, as a new trial); return the numbers of the trials enqueued again."""
    trials = study.get_trials(deepcopy=False)
    done = {t.user_attrs.get(RERUN_OF) for t in trials}
    again = [
        t
        for t in trials
        if t.state == TrialState.FAIL and t.user_attrs.get(INTERRUPTED) and t.number not in done
    ]
    for trial in again:
        study.enqueue_trial(dict(trial.params), user_attrs={RERUN_OF: trial.number})
    return [t.number for t in again]


def n_finished(study: optuna.Study) -> int:
    return sum(counts_toward_n_trials(t) for t in study.get_trials(deepcopy=False))


def status_of(trial: FrozenTrial) -> str:
    if trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED):
        return INTERRUPTED
    return _STATUS.get(trial.state, trial.state.name.lower())


def records_from_study(study: optuna.Study) -> list[TrialRecord]:
    records = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.WAITING:  # enqueued, never started
            continue
        duration = trial.user_attrs.get("duration_s")
        if duration is None and trial.duration is not None:
            duration = trial.duration.total_seconds()
        records.append(
            TrialRecord(
                number=trial.number,
                status=status_of(trial),
                value=trial.value if trial.state == TrialState.COMPLETE else None,
                params=dict(trial.params),
                error=trial.user_attrs.get("error"),
                duration_s=duration,
                job_dir=trial.user_attrs.get("job_dir"),
            )
        )
    return records
