"""The loop of the ``lmlab_optuna`` sweeper: ask Optuna for a batch of trials, run them as Hydra jobs through
the configured launcher, tell Optuna each outcome, then write the summary.

Failure tolerance, storage and resume live here, in one place (Optuna's ask-and-tell API):
- a trial that raises, returns NaN/inf or nothing is told FAIL, its error kept as a user attribute, and
  the sweep goes on (``max_failures`` stops it after that many);
- a job that finishes without ``optimized_metric`` stops the sweep at once, listing what train returned;
- finished trials in the storage count toward ``n_trials``: started again with the same storage and study
  name, a sweep runs only the rest. A trial cut short (Ctrl-C, SIGTERM: ``lmlab.sweeps.stop_signals``) is
  marked interrupted and does not count; the resumed sweep trains its parameters again as a new trial.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import Trial, TrialState

from lmlab.errors import ConfigError, LmlabError
from lmlab.sweeps.metric import check_metric_is_returned, check_optimized_metric, normalize_direction
from lmlab.sweeps.naming import sweep_name
from lmlab.sweeps.outcome import describe_error, job_dir_of, judge, read_json
from lmlab.sweeps.records import JOB_INFO
from lmlab.sweeps.results import SweepSummary
from lmlab.sweeps.search_space import SearchSpace, check_keys_exist, check_probes_compose, parse_search_space
from lmlab.sweeps.settings import LmlabOptunaSweeperConf
from lmlab.sweeps.stop_signals import StopSignals
from lmlab.sweeps.study import INTERRUPTED, enqueue_reruns, n_finished, open_study, records_from_study
from lmlab.sweeps.summary import write_summary, write_summary_safely

log = logging.getLogger("lmlab.sweeps")


class OptunaSweep:
    """One run of the sweeper. ``settings.sampler`` is an Optuna sampler; ``compose(overrides)`` composes a
    trial's config (checks before launching)."""

    def __init__(
        self,
        settings: LmlabOptunaSweeperConf,
        config: DictConfig,
        launcher: Any,
        compose: Callable[[list[str]], Any],
    ) -> None:
        self.settings = settings
        self.config = config
        self.launcher = launcher
        self.compose = compose
        self.failures = 0

    def run(self, arguments: Sequence[str]) -> SweepSummary | None:
        s, cfg = self.settings, self.config
        # Everything that can be checked without training, before any trial.
        direction = normalize_direction(s.direction)
        metric = check_optimized_metric(cfg)
        if metric is None:
            raise ConfigError(
                "optimized_metric is not set: name the metric the sweep optimizes, e.g. best/val/loss"
            )
        n_jobs = _n_jobs(s.n_jobs)
        if int(s.n_trials) < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={s.n_trials}: run at least one trial")
        space = parse_search_space(s.params, arguments)
        if not space.params:
            raise ConfigError(
                "nothing to search: hydra.sweeper.params is empty and no override sweeps a value; pick a "
                "search space (hparams_search=clm_tpe) or write e.g. optimizer.lr='tag(log, interval(1e-4, 1e-2))'"
            )
        check_keys_exist(space, cfg)
        check_metric_is_returned(metric, check_probes_compose(space, self.compose))

        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")
        name = sweep_name(cfg.get("experiment_name", "sweep"), sweep_dir, s.study_name)
        study = open_study(s.storage, name, direction, s.sampler)
        self._prepare(study, space)
        log_params = {p.name for p in space.params.values() if p.log_scale}
        try:
            with StopSignals() as signals:
                self._run_loop(study, space, metric, n_jobs, signals)
        finally:  # also when the sweep stops early: the summary of what ran
            summary = write_summary_safely(
                lambda: write_summary(
                    records_from_study(study),
                    sweep_dir,
                    name=name,
                    metric=metric,
                    direction=direction,
                    log_params=log_params,
                ),
                sweep_dir,
            )
        if summary is not None:
            from lmlab.sweeps.wandb_summary import log_summary_to_wandb

            log_summary_to_wandb(summary, cfg)
        return summary

    def _prepare(self, study: optuna.Study, space: SearchSpace) -> None:
        trials = study.get_trials(deepcopy=False)
        if not trials:
            for params in self.settings.enqueue_trials or []:
                params = OmegaConf.to_container(params) if OmegaConf.is_config(params) else dict(params)
                unknown = sorted(set(params) - set(space.params))
                if unknown:
                    raise ConfigError(
                        f"hydra.sweeper.enqueue_trials: {', '.join(unknown)} is not a searched parameter "
                        f"(searched: {', '.join(space.params)})"
                    )
                study.enqueue_trial(params)
        again = enqueue_reruns(study)
        if again:
            log.info("Trials %s were interrupted: their parameters are trained again, as new trials", again)
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        if running:
            log.warning(
                "Trials %s of study %s are still marked running (an earlier sweep was killed, or another worker "
                "runs them): they do not count toward n_trials.", running, study.study_name
            )  # fmt: skip
        earlier = {name for t in trials if t.state == TrialState.COMPLETE for name in t.params}
        if earlier and earlier != set(space.params):
            log.warning("The search space differs from the earlier trials of this study: %s", sorted(earlier))
        log.info(
            "Study %s (storage %s): %d of %d trials finished; searching %s",
            study.study_name, self.settings.storage or "in memory", n_finished(study), self.settings.n_trials,
            ", ".join(f"{n}: {p.distribution}" for n, p in space.params.items()),
        )  # fmt: skip

    def _run_loop(
        self, study: optuna.Study, space: SearchSpace, metric: str, n_jobs: int, signals: StopSignals
    ) -> None:
        """The loop; interrupted (Ctrl-C, SIGTERM), it says how to resume, and a signal's exit code ends it."""
        try:
            self._loop(study, space, metric, n_jobs, signals)
        except BaseException as e:
            if signals.received is None and isinstance(e, Exception):
                raise
            log.warning(
                "The sweep was interrupted%s: %d of %d trials finished. Resume it with the same command and "
                "hydra.sweep.dir=%s (study %s in %s): finished trials are kept, interrupted ones run again.",
                f" ({signals.name})" if signals.received else "", n_finished(study), self.settings.n_trials,
                self.config.hydra.sweep.dir, study.study_name, self.settings.storage or "memory (not resumable)",
            )  # fmt: skip
            if signals.received is None:
                raise
            raise SystemExit(signals.exit_code) from None

    def _loop(
        self, study: optuna.Study, space: SearchSpace, metric: str, n_jobs: int, signals: StopSignals
    ) -> None:
        s = self.settings
        while (remaining := int(s.n_trials) - n_finished(study)) > 0:
            signals.check()
            batch = [study.ask(space.distributions) for _ in range(min(n_jobs, remaining))]
            jobs = []
            for trial in batch:
                overrides = space.overrides(trial.params)
                try:
                    self.compose(overrides)
                except Exception as e:  # noqa: BLE001 - a value that does not compose fails its trial only
                    self._fail(study, trial, f"the config does not compose: {describe_error(e)}")
                    continue
                jobs.append((trial, overrides))
            try:
                with signals.launching():
                    returns = self._launch(jobs)
            except BaseException as e:  # Ctrl-C, SIGTERM, a killed launcher: these trials run again on resume
                why = (
                    f"interrupted ({signals.name})"
                    if signals.received
                    else f"interrupted: {describe_error(e)}"
                )
                for trial, _ in jobs:
                    trial.set_user_attr(INTERRUPTED, True)
                    self._fail(study, trial, why)
                raise
            stop: str | None = None
            for (trial, _), job_return in zip(jobs, returns, strict=True):
                outcome = judge(job_return, metric)
                job_dir = job_dir_of(job_return)
                if job_dir is not None:
                    trial.set_user_attr("job_dir", str(job_dir))
                    duration = read_json(job_dir / JOB_INFO).get("duration_s")
                    if duration is not None:
                        trial.set_user_attr("duration_s", duration)
                if outcome.status == "completed":
                    study.tell(trial, outcome.value)
                else:
                    self._fail(study, trial, outcome.error or "failed")
                if outcome.returned_metrics is not None:
                    stop = outcome.error
            if stop is not None:
                raise ConfigError(stop)
            if s.max_failures is not None and self.failures >= int(s.max_failures):
                raise LmlabError(
                    f"{self.failures} trials failed (hydra.sweeper.max_failures={s.max_failures}): the sweep stops; "
                    "the errors are in summary.md"
                )

    def _fail(self, study: optuna.Study, trial: Trial, error: str) -> None:
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        if not trial.user_attrs.get(INTERRUPTED):
            self.failures += 1
            log.warning("Trial %d failed: %s", trial.number, error.splitlines()[0] if error else "")

    def _launch(self, jobs: list[tuple[Trial, list[str]]]) -> list[Any]:
        """Launch the batch; job folders are numbered by trial (several launches if the numbers have gaps)."""
        returns: list[Any] = []
        start = 0
        while start < len(jobs):
            end = start + 1
            while end < len(jobs) and jobs[end][0].number == jobs[end - 1][0].number + 1:
                end += 1
            group = jobs[start:end]
            returns.extend(self.launcher.launch([o for _, o in group], initial_job_idx=group[0][0].number))
            start = end
        return returns


def _n_jobs(value: Any) -> int:
    n = int(value)
    if n == -1:
        return os.cpu_count() or 1
    if n < 1:
        raise ConfigError(
            f"hydra.sweeper.n_jobs={value}: trials at a time must be at least 1 (or -1: one per CPU)"
        )
    return n
