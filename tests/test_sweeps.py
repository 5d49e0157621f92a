"""Sweeps as a user runs them: `python train.py -m ...` in a subprocess, on tiny configs.

Grid search (Hydra's basic sweeper), the lmlab_optuna sweeper with a failing trial and a resume, TPE past
its random start-up trials, a sweep killed (SIGTERM, SIGINT) and rerun, the joblib launcher, and bad input
stopping the sweep before its first job.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import ROOT, TINY
from hydra.utils import instantiate
from omegaconf import OmegaConf

# Every job: a few steps of the tiny GPT, no test stage, no export (each trial takes about a second).
FAST = [o for o in TINY if not o.startswith("logger=")] + ["run_test=false", "export.enabled=false"]
OPTUNA = ["hydra/sweeper=lmlab_optuna", "optimizer.lr=tag(log, interval(1e-4, 1e-2))"]


@pytest.fixture(scope="module")
def sweep_args(tmp_path_factory, wikitext_dir) -> list[str]:
    # One token cache for the module: the first sweep builds it, the others reuse it.
    cache = tmp_path_factory.mktemp("sweep_cache")
    return [*FAST, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={cache}"]


def train_multirun(args: list[str], cwd: Path, timeout: int = 300, wrapper: Path | None = None):
    env = {**os.environ, "HOME": str(cwd / "home")}
    command = [sys.executable, *([str(wrapper)] if wrapper else []), str(ROOT / "train.py"), "-m", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def output(result: subprocess.CompletedProcess) -> str:
    """The end of what the command printed (for assertion messages)."""
    return result.stdout[-4000:] + result.stderr[-4000:]


def printed(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_grid_sweep_one_folder_and_one_wandb_run_per_job_and_a_summary(sweep_args, tmp_path):
    sweep_dir = tmp_path / "grid"
    args = [*sweep_args, "logger=many", "optimizer.lr=1e-3,3e-3", "seed=1,2", f"hydra.sweep.dir={sweep_dir}"]
    result = train_multirun(args, tmp_path)
    assert result.returncode == 0, output(result)

    jobs = [sweep_dir / str(i) for i in range(4)]
    groups, names = set(), set()
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["status"] == "completed"
        assert json.loads((job / "job.json").read_text())["status"] == "completed"
        assert len(list((job / "wandb").glob("offline-run-*"))) == 1  # its own W&B run, in its own folder
        wandb_cfg = yaml.safe_load((job / "config_resolved.yaml").read_text())["logger"]["wandb"]
        groups.add(wandb_cfg["group"])
        names.add(wandb_cfg["name"])
    assert groups == {"clm_wikitext2-sweep-grid"} and len(names) == 4

    rows = read_csv(sweep_dir / "summary.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert {(r["optimizer.lr"], r["seed"]) for r in rows} == {
        ("0.001", "1"),
        ("0.001", "2"),
        ("0.003", "1"),
        ("0.003", "2"),
    }
    values = {r["number"]: float(r["best/val/loss"]) for r in rows}
    for job in jobs:
        assert values[job.name] == json.loads((job / "metrics.json").read_text())["metrics"]["best/val/loss"]

    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best["value"] == min(values.values()) and best["trials"] == {"total": 4, "completed": 4}
    # Two seeds per learning rate: mean and sample std over the seeds of each configuration.
    lr = best["best_over_seeds"]["params"]["optimizer.lr"]
    pair = [values[r["number"]] for r in rows if float(r["optimizer.lr"]) == lr]
    assert best["best_over_seeds"]["mean"] == pytest.approx(sum(pair) / 2)
    assert best["best_over_seeds"]["std"] == pytest.approx(abs(pair[0] - pair[1]) / 2**0.5)
    markdown = (sweep_dir / "summary.md").read_text()
    assert "## Mean ± std over seeds" in markdown and markdown.count("(n=2)") == 2
    assert (sweep_dir / "plots" / "optimization_history.png").stat().st_size > 0
    assert (sweep_dir / "plots" / "param_optimizer.lr.png").stat().st_size > 0
    # The summary is in W&B too, as a run of the sweep's group.
    assert list((sweep_dir / "wandb").glob("offline-run-*/files/media/table/sweep/trials_*.table.json"))


@pytest.fixture(scope="module")
def interrupted_and_resumed(sweep_args, tmp_path_factory):
    """A TPE sweep of 4 trials stopped after 2, then started again with the same storage and study.

    Its first trial is forced to fail: data.block_size=100000 does not fit the model (enqueued, so it is
    tried first; the searched block sizes are 16 and 32).
    """
    tmp = tmp_path_factory.mktemp("optuna")
    sweep_dir = tmp / "sweep"
    args = [
        *sweep_args, "logger=csv", *OPTUNA, "data.block_size=range(16, 33, 16)",
        "hydra.sweeper.enqueue_trials=[{data.block_size:100000}]", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    first = train_multirun([*args, "hydra.sweeper.n_trials=2"], tmp)
    after_first = read_csv(sweep_dir / "summary.csv") if (sweep_dir / "summary.csv").exists() else []
    mtimes = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("*/metrics.json")}
    second = train_multirun([*args, "hydra.sweeper.n_trials=4"], tmp)
    return sweep_dir, first, after_first, mtimes, second


@pytest.mark.slow
def test_optuna_sweep_records_a_failed_trial_and_goes_on(interrupted_and_resumed):
    sweep_dir, first, after_first, _, second = interrupted_and_resumed
    assert first.returncode == 0, output(first)
    assert [(r["number"], r["status"]) for r in after_first] == [("0", "failed"), ("1", "completed")]
    assert "Trial 0 failed: ConfigError: data.block_size=100000" in printed(first)

    assert second.returncode == 0, output(second)
    rows = read_csv(sweep_dir / "summary.csv")
    assert [r["status"] for r in rows] == ["failed", "completed", "completed", "completed"]
    assert "larger than the model's maximum positions" in rows[0]["error"]
    markdown = (sweep_dir / "summary.md").read_text()
    assert "4 trials (3 completed, 1 failed)" in markdown
    assert "## Failed trials" in markdown and "1 × ConfigError: data.block_size=100000" in markdown
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    assert best["value"] == min(float(r["best/val/loss"]) for r in rows[1:])
    assert "traceback" in json.loads((sweep_dir / "0" / "job.json").read_text())


@pytest.mark.slow
def test_resumed_sweep_runs_only_the_remaining_trials(interrupted_and_resumed):
    sweep_dir, _, _, mtimes, second = interrupted_and_resumed
    assert second.returncode == 0, output(second)
    assert "2 of 4 trials finished" in printed(second)
    assert "#0 :" not in printed(second) and "#1 :" not in printed(second)
    assert "#2 :" in printed(second) and "#3 :" in printed(second)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    assert mtimes and all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # earlier trials untouched
    study = optuna.load_study(
        study_name="clm_wikitext2-sweep-sweep", storage=f"sqlite:///{sweep_dir / 'optuna.db'}"
    )
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_joblib_launcher_runs_two_trials_at_once(sweep_args, tmp_path):
    sweep_dir = tmp_path / "parallel"
    args = [*sweep_args, "logger=csv", *OPTUNA, "hydra.sweeper.n_trials=2", "hydra/launcher=joblib"]
    result = train_multirun([*args, "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    assert result.returncode == 0, output(result)
    jobs = [json.loads((sweep_dir / str(i) / "job.json").read_text()) for i in range(2)]
    assert all(j["status"] == "completed" for j in jobs)
    assert len({j["pid"] for j in jobs}) == 2
    assert max(j["start"] for j in jobs) < min(j["end"] for j in jobs)  # the two ran at the same time
    assert [r["status"] for r in read_csv(sweep_dir / "summary.csv")] == ["completed", "completed"]


def test_unknown_search_key_stops_the_sweep_before_any_trial(sweep_args, tmp_path):
    sweep_dir = tmp_path / "bad"
    args = [
        *sweep_args,
        "hydra/sweeper=lmlab_optuna",
        "optimizer.lrr=interval(1e-4, 1e-2)",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    result = train_multirun(args, tmp_path)
    assert result.returncode == 2, output(result)
    assert (
        "error: hydra.sweeper.params: optimizer.lrr is not in the config (did you mean optimizer.lr?)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not sweep_dir.exists() or not any(p.name.isdigit() for p in sweep_dir.iterdir())


BLOCK_JOBLIB = """
import runpy, sys
class Missing:  # as if hydra-joblib-launcher (and joblib) were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "joblib" or name.startswith("hydra_plugins.hydra_joblib_launcher"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Missing())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_missing_launcher_plugin_names_the_extra(sweep_args, tmp_path):
    wrapper = tmp_path / "without_joblib.py"
    wrapper.write_text(BLOCK_JOBLIB)
    sweep_dir = tmp_path / "nolauncher"
    args = [*sweep_args, "hydra/launcher=joblib", "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={sweep_dir}"]
    result = train_multirun(args, tmp_path, wrapper=wrapper)
    assert result.returncode == 2, output(result)
    assert "hydra/launcher=joblib needs hydra-joblib-launcher" in result.stderr
    assert 'pip install -e ".[parallel]"' in result.stderr
    assert not sweep_dir.exists()


# the check runs before any sweeper: grid in the default suite, optuna (the same check) in pytest -m slow
@pytest.mark.parametrize("sweeper", ["grid", pytest.param("optuna", marks=pytest.mark.slow)])
def test_a_misspelt_optimized_metric_stops_the_sweep_before_any_trial(sweeper, sweep_args, tmp_path):
    sweep_dir = tmp_path / "typo"
    search = ["optimizer.lr=1e-3,3e-3"] if sweeper == "grid" else OPTUNA
    args = [*sweep_args, "logger=csv", *search, "optimized_metric=best/val/los",
            f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    result = train_multirun(args, tmp_path)
    assert result.returncode == 2, output(result)
    assert (
        "error: optimized_metric=best/val/los is not a metric the trials will return (CausalLMModule, "
        "run_test=false); it could be: best/val/loss, " in result.stderr
    )
    assert "Traceback" not in result.stderr and "#0 :" not in printed(result)
    assert not list(sweep_dir.glob("*/metrics.json")) and not list(sweep_dir.glob("*/checkpoints"))


@pytest.mark.slow
def test_tpe_models_the_results_after_its_startup_trials(sweep_args, tmp_path):
    """4 trials, the first 2 random: trials 2 and 3 are what TPE draws from the results of the ones before."""
    sweep_dir = tmp_path / "tpe"
    args = [*sweep_args, "logger=csv", "hparams_search=clm_lr_warmup", "hydra.sweeper.n_trials=4",
            "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    result = train_multirun(args, tmp_path)
    assert result.returncode == 0, output(result)
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    trials = optuna.load_study(study_name="clm_wikitext2-sweep-tpe", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    sampler = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.sweeper.sampler
    assert sampler.n_startup_trials == 2

    def replay(values, sampler):
        """The parameters the sampler asks for when told these results, one trial after the other."""
        study = optuna.create_study(direction="minimize", sampler=sampler)
        asked = []
        for value in values:
            trial = study.ask(trials[0].distributions)
            asked.append(trial.params)
            study.tell(trial, value)
        return asked

    values = [t.value for t in trials]
    assert replay(values, instantiate(sampler)) == [t.params for t in trials]  # the sweep is TPE's own draw
    swapped = replay([values[1], values[0], *values[2:]], instantiate(sampler))
    assert swapped[:2] == [t.params for t in trials[:2]]  # start-up: random, whatever the results
    assert swapped[2] != trials[2].params  # then drawn from a model of the results: other results, other draw
    random = replay(values, optuna.samplers.RandomSampler(seed=sampler.seed))
    assert random[:2] == swapped[:2] and random[2] != trials[2].params


def kill_in_trial(args: list[str], cwd: Path, sweep_dir: Path, trial: int, signum: int) -> tuple[int, str]:
    """Run the sweep; once trial ``trial - 1`` has completed and trial ``trial`` is training (it has saved its
    first checkpoint), send ``signum`` to the sweep process. Return its exit code and what it printed."""
    log = cwd / f"killed-{trial}.log"
    env = {**os.environ, "HOME": str(cwd / "home")}
    before, running = sweep_dir / str(trial - 1) / "job.json", sweep_dir / str(trial) / "checkpoints"

    def training() -> bool:
        return before.exists() and any(running.glob("step*.ckpt"))

    with log.open("w") as out:
        sweep = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "-m", *args], cwd=cwd, env=env,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 300
        while not training() and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        finished = sweep.poll() is not None or (sweep_dir / str(trial) / "job.json").exists()
        assert not finished, log.read_text()[-3000:]
        sweep.send_signal(signum)
        code = sweep.wait(timeout=120)
    return code, log.read_text()


# Through the real CLI, 30-40 s each: in `pytest -m slow`. The default suite covers the same loop in-process
# (tests/test_sweep_loop.py::test_sigterm_stops_the_sweep_with_143_and_its_trial_runs_again).
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_killed_sweep_reruns_only_its_missing_trials(signum, sweep_args, tmp_path):
    """2 trials wanted; the signal comes in trial 1. The same command again trains trial 1's parameters
    again, as trial 2 (a new folder, from the start), and does not train trial 0 again."""
    sweep_dir, name = tmp_path / "killed", signal.Signals(signum).name
    # 60 steps a trial, validated every 20: the signal comes after trial 1's first validation, as it trains
    args = [*sweep_args, "logger=csv", "hparams_search=clm_lr_warmup", "hydra.sweeper.n_trials=2",
            "trainer.max_steps=60", "trainer.val_check_interval=20", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    code, killed = kill_in_trial(args, tmp_path, sweep_dir, 1, signum)
    assert code == 128 + signum, killed[-3000:]
    if signum == signal.SIGTERM:  # Lightning stops the training after its batch and saves a checkpoint
        assert json.loads((sweep_dir / "1" / "metrics.json").read_text())["status"] == "preempted"
        assert list((sweep_dir / "1" / "checkpoints").glob("sigterm-step*.ckpt"))
    assert f"The sweep was interrupted ({name}): 1 of 2 trials finished" in killed
    assert "2 trials (1 completed, 1 interrupted)" in (sweep_dir / "summary.md").read_text()
    trained = (sweep_dir / "0" / "metrics.json").stat().st_mtime_ns

    rerun = train_multirun(args, tmp_path)
    assert rerun.returncode == 0, output(rerun)
    assert "1 of 2 trials finished" in printed(rerun)
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    trials = optuna.load_study(study_name="clm_wikitext2-sweep-killed", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[1].user_attrs["error"] == f"interrupted ({name})"
    assert trials[2].params == trials[1].params and trials[2].user_attrs["rerun_of"] == 1
    assert [sum(text.count(f"#{n} :") for text in (killed, printed(rerun))) for n in range(3)] == [1, 1, 1]
    assert (sweep_dir / "0" / "metrics.json").stat().st_mtime_ns == trained  # not trained again
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert "3 trials (2 completed, 1 interrupted)" in (sweep_dir / "summary.md").read_text()
    assert yaml.safe_load((sweep_dir / "best.yaml").read_text())["trials"]["completed"] == 2
