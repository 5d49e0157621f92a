"""The lmlab_optuna sweep loop in-process, with a launcher that trains nothing: failed and NaN trials,
a metric train does not return, interruption and resume, and bad input stopped before any trial."""

import json
import math
import os
import signal

import optuna
import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from lmlab.errors import ConfigError, LmlabError
from lmlab.sweeps.optuna_sweep import OptunaSweep
from lmlab.sweeps.settings import LmlabOptunaSweeperConf
from lmlab.sweeps.stop_signals import StopSignals
from lmlab.sweeps.study import RERUN_OF, n_finished

LR = {"optimizer.lr": "tag(log, interval(1e-4, 1e-2))"}


def sweep_config(tmp_path, *overrides):
    """The composed config with its hydra node, as the sweeper gets it; one AdamW, whose optimizer.lr the
    tests search."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "train",
            overrides=["logger=csv", "optimizer=adamw", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides],
            return_hydra_config=True,
        )


def loss(params, job_dir):
    """A smooth stand-in for training: best at lr=1e-3."""
    return abs(math.log10(float(params["optimizer.lr"])) + 3)


class FakeLauncher:
    """Launches nothing: each job's result is ``behave(params, job_dir)`` (its exception: a failed job)."""

    def __init__(self, tmp_path, behave=loss):
        self.sweep_dir = tmp_path / "sweep"
        self.behave = behave
        self.launched = []

    def launch(self, job_overrides, initial_job_idx):
        returns = []
        for i, overrides in enumerate(job_overrides):
            job_dir = self.sweep_dir / str(initial_job_idx + i)
            job_dir.mkdir(parents=True, exist_ok=True)
            self.launched.append(initial_job_idx + i)
            ret = JobReturn(overrides=list(overrides))
            ret.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(job_dir)}}})
            params = dict(o.split("=", 1) for o in overrides)
            try:
                ret.return_value, ret.status = self.behave(params, job_dir), JobStatus.COMPLETED
            except Exception as e:  # noqa: BLE001 - as hydra.core.utils.run_job
                ret.return_value, ret.status = e, JobStatus.FAILED
            returns.append(ret)
        return returns


def settings_of(**settings):
    """The sweeper's settings as Hydra hands them over: a sampler, and the interpolated defaults resolved."""
    return LmlabOptunaSweeperConf(
        **{"sampler": optuna.samplers.RandomSampler(seed=0), "n_jobs": 1, "storage": None, **settings}
    )


def run_sweep(tmp_path, launcher, overrides=(), compose_fn=None, **settings):
    settings = {"n_trials": 4, "params": LR, "storage": f"sqlite:///{tmp_path / 'optuna.db'}", **settings}
    sweep = OptunaSweep(
        settings_of(study_name="test", **settings),
        sweep_config(tmp_path, *overrides),
        launcher,
        compose=compose_fn or (lambda o: None),
    )
    return sweep.run([])


def load(tmp_path):
    return optuna.load_study(study_name="test", storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def test_failed_and_nan_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    def behave(params, job_dir):
        lr = float(params["optimizer.lr"])
        if lr < 1.01e-4:
            raise RuntimeError("CUDA out of memory")
        return float("nan") if lr > 0.99e-2 else loss(params, job_dir)

    launcher = FakeLauncher(tmp_path, behave)
    summary = run_sweep(tmp_path, launcher, enqueue_trials=[{"optimizer.lr": 1e-4}, {"optimizer.lr": 1e-2}])
    assert launcher.launched == [0, 1, 2, 3]
    assert [r.status for r in summary.records] == ["failed", "failed", "completed", "completed"]
    assert summary.records[0].error == "RuntimeError: CUDA out of memory"
    assert summary.records[1].error == "best/val/loss is nan (diverged?)"
    assert summary.best is not None and summary.best.value == min(r.value for r in summary.records[2:])
    markdown = (tmp_path / "sweep" / "summary.md").read_text()
    assert "## Failed trials" in markdown and "2 × " not in markdown  # two different reasons, listed apart
    assert [t.state.name for t in load(tmp_path).trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_an_interrupted_sweep_resumes_with_only_the_remaining_trials(tmp_path):
    def stop_at_third(params, job_dir):
        if job_dir.name == "2":
            raise KeyboardInterrupt
        return loss(params, job_dir)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(tmp_path, FakeLauncher(tmp_path, stop_at_third))
    assert [t.state.name for t in load(tmp_path).trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert "| 2 | interrupted |" in (tmp_path / "sweep" / "summary.md").read_text()

    launcher = FakeLauncher(tmp_path)
    summary = run_sweep(tmp_path, launcher)
    assert launcher.launched == [3, 4]  # the interrupted trial does not count: two more run
    assert [r.status for r in summary.records] == [
        "completed",
        "completed",
        "interrupted",
        "completed",
        "completed",
    ]
    trials = load(tmp_path).trials
    assert n_finished(load(tmp_path)) == 4
    assert trials[3].params == trials[2].params and trials[3].user_attrs[RERUN_OF] == 2  # run again


def test_sigterm_stops_the_sweep_with_143_and_its_trial_runs_again(tmp_path):
    def terminate_third(params, job_dir):
        if job_dir.name == "2":
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill <sweep pid>` while this trial runs
        return loss(params, job_dir)

    original = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        run_sweep(tmp_path, FakeLauncher(tmp_path, terminate_third))
    assert stopped.value.code == 143 and signal.getsignal(signal.SIGTERM) is original
    trials = load(tmp_path).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert trials[2].user_attrs["error"] == "interrupted (SIGTERM)"

    launcher = FakeLauncher(tmp_path)
    run_sweep(tmp_path, launcher)
    trials = load(tmp_path).trials
    assert launcher.launched == [3, 4] and trials[3].params == trials[2].params
    run_sweep(tmp_path, launcher, n_trials=5)  # resumed again: the interrupted trial is not run a third time
    assert launcher.launched == [3, 4, 5] and RERUN_OF not in load(tmp_path).trials[5].user_attrs


def test_a_signal_lightning_handles_or_one_between_trials_stops_the_sweep_before_its_next_trials():
    original = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        ours = signal.getsignal(signal.SIGTERM)
        with stop.launching():
            # a trial in Lightning's fit: Lightning's handler calls ours, and stops the trial itself
            signal.signal(signal.SIGTERM, lambda signum, frame: ours(signum, frame))
            os.kill(os.getpid(), signal.SIGTERM)
            signal.signal(signal.SIGTERM, ours)
        assert stop.received == signal.SIGTERM
        with pytest.raises(SystemExit) as stopped:
            stop.check()  # before asking for the next trials
        assert stopped.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is original

    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # while Optuna is asked or told: recorded, nothing cut in half
        assert stop.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt), stop.launching():
            pytest.fail("no trial starts after the signal")


def test_a_trial_left_running_does_not_count(tmp_path):
    study = optuna.create_study(study_name="test", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    study.ask()  # a sweep killed with -9: its trial stays RUNNING forever
    launcher = FakeLauncher(tmp_path)
    summary = run_sweep(tmp_path, launcher, n_trials=2)
    assert launcher.launched == [1, 2]
    assert [r.status for r in summary.records] == ["running", "completed", "completed"]


def test_a_metric_train_does_not_return_stops_the_sweep_after_the_first_trial(tmp_path):
    def without_metric(params, job_dir):
        summary = {"metrics": {"val/loss": 1.0, "val/ppl": 2.7}, "status": "completed"}
        (job_dir / "metrics.json").write_text(json.dumps(summary))
        return None  # what run_stage returns when optimized_metric is not in the metrics

    launcher = FakeLauncher(tmp_path, without_metric)
    message = "optimized_metric=val/accuracy is not among the metrics train returned: val/loss, val/ppl"
    with pytest.raises(ConfigError, match=message):
        run_sweep(tmp_path, launcher, ["optimized_metric=val/accuracy"], n_trials=20)
    assert launcher.launched == [0]


def test_max_failures_stops_the_sweep(tmp_path):
    def crash(params, job_dir):
        raise ValueError("bug")

    launcher = FakeLauncher(tmp_path, crash)
    with pytest.raises(LmlabError, match=r"2 trials failed \(hydra.sweeper.max_failures=2\)"):
        run_sweep(tmp_path, launcher, n_trials=10, max_failures=2)
    assert launcher.launched == [0, 1]
    assert "2 × ValueError: bug" in (tmp_path / "sweep" / "summary.md").read_text()


def test_resuming_with_the_other_direction_is_an_error(tmp_path):
    run_sweep(tmp_path, FakeLauncher(tmp_path), n_trials=1)
    with pytest.raises(ConfigError, match="created to minimize, but hydra.sweeper.direction=maximize"):
        run_sweep(tmp_path, FakeLauncher(tmp_path), n_trials=2, direction="maximize")


def real_compose(tmp_path):
    return lambda overrides: sweep_config(tmp_path, *overrides)


@pytest.mark.parametrize(
    ("overrides", "settings", "message"),
    [
        (
            [],
            {"direction": "sideways"},
            "hydra.sweeper.direction=sideways is not a direction: use minimize or maximize",
        ),
        (
            [],
            {"params": {"optimizer.lrr": "interval(1e-4, 1e-2)"}},
            r"optimizer.lrr is not in the config \(did you mean optimizer.lr\?\)",
        ),
        (
            [],
            {"params": {"model": "choice(gpt_tiny, gpt_tinyy)"}},
            "the trial with model=gpt_tinyy does not compose",
        ),
        (
            [],
            {"params": {"data.block_size": "interval(64, 16)"}},
            r"data.block_size=interval\(64, 16\) is not a valid search range",
        ),
        ([], {"params": {"seed": "1"}}, "nothing to search"),
        (
            [],
            {"enqueue_trials": [{"optimizer.learning_rate": 1e-3}]},
            "optimizer.learning_rate is not a searched parameter",
        ),
        (
            ["optimized_metric=best/train/loss"],
            {},
            r"train records best values of the validation metrics \(best/val/...\) and of monitor.metric=val/loss",
        ),
        (
            ["optimized_metric=best/val/los"],
            {},
            r"optimized_metric=best/val/los is not a metric the trials will return \(CausalLMModule, "
            r"run_test=true\); it could be: best/val/loss, ",
        ),
        (["optimized_metric=val/accuracy"], {}, "optimized_metric=val/accuracy is not a metric the trials"),
        (["optimized_metric=test/loss", "run_test=false"], {}, "needs the test stage: set run_test=true"),
        (["optimized_metric=accuracy"], {}, "optimized_metric=accuracy is not a metric train returns"),
        (["optimized_metric=null"], {}, "optimized_metric is not set"),
        ([], {"n_jobs": 0}, "hydra.sweeper.n_jobs=0"),
    ],
)
def test_bad_input_fails_before_any_trial(tmp_path, overrides, settings, message):
    launcher = FakeLauncher(tmp_path)
    with pytest.raises(ConfigError, match=message):
        run_sweep(tmp_path, launcher, overrides, compose_fn=real_compose(tmp_path), **settings)
    assert launcher.launched == []


def test_glue_search_space_composes_for_a_glue_task_and_maximizes_its_metric(tmp_path):
    arguments = ["experiment=glue/rte", "hparams_search=glue_tpe"]
    cfg = sweep_config(tmp_path, *arguments)
    composed = []

    def compose_trial(overrides):
        composed.append(sweep_config(tmp_path, *overrides))

    def accuracy(params, job_dir):
        assert params["experiment"] == "glue/rte"
        return 0.5 + float(params["optimizer.lr"]) * 1000  # higher is better

    launcher = FakeLauncher(tmp_path, accuracy)
    sweeper = cfg.hydra.sweeper
    settings = settings_of(
        direction=sweeper.direction,
        n_trials=3,
        params=OmegaConf.to_container(sweeper.params),
        study_name="glue",
    )
    summary = OptunaSweep(settings, cfg, launcher, compose_trial).run(arguments)
    assert summary.metric == "best/val/accuracy" and summary.direction == "maximize"
    assert summary.best.value == max(r.value for r in summary.records)
    trial = composed[-1]  # the last trial's config: the GLUE task with the searched values
    assert (
        trial.data.source.task == "rte" and trial.trainer.max_epochs in (2, 3, 4) and trial.seed in (1, 2, 3)
    )
    assert trial.data.batch_size in (16, 32) and 1e-5 <= trial.optimizer.lr <= 1e-4
