"""The pieces of a sweep: search-space syntax, mean ± std over seeds, W&B names, the shipped search spaces,
the launcher configs (SLURM without a cluster, a missing plugin), and the metric names known before a trial."""

import statistics
from pathlib import Path

import pytest
from conftest import CONF, GLUE_TINY, TINY
from conftest import compose as compose_run
from gen_fixtures import GEN_TINY, copy_task_overrides, write_copy_task
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf, open_dict, read_write
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.lmlab_optuna_sweeper import launcher_stand_ins
from lmlab.errors import ConfigError
from lmlab.stages.train import train
from lmlab.sweeps import launchers
from lmlab.sweeps.aggregate import best_config, group_over_seeds
from lmlab.sweeps.metric import METRIC_NAME, check_optimized_metric, normalize_direction
from lmlab.sweeps.naming import job_run_name, sweep_group
from lmlab.sweeps.records import TrialRecord
from lmlab.sweeps.results import SweepSummary
from lmlab.sweeps.returned import returned_metric_names
from lmlab.sweeps.search_space import check_keys_exist, parse_search_space
from lmlab.tasks.metric_names import task_metric_names

SEARCH_SPACES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))


def hydra_config(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_search_space_syntax_of_hydra_optuna_sweeper():
    params = {
        "a": "interval(0.0, 1.0)",
        "b": "tag(log, interval(1e-5, 1e-3))",
        "c": "range(2, 6)",
        "d": "choice(8, 16)",
        "e": "gpt_tiny,gpt_small",
        "f": "tag(log, int(interval(1, 64)))",
        "g": "range(0.1, 0.5, 0.1)",
        "h": "3",
    }
    space = parse_search_space(params, ["+i=choice(true, false)", "a=interval(0.0, 2.0)"])
    d = space.distributions
    assert d["a"] == FloatDistribution(0.0, 2.0)  # the command line wins over the config
    assert d["b"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert d["c"] == IntDistribution(2, 5)  # Hydra's range excludes its stop value
    assert d["d"] == CategoricalDistribution([8, 16])
    assert d["e"] == CategoricalDistribution(["gpt_tiny", "gpt_small"])
    assert d["f"] == IntDistribution(1, 64, log=True)
    assert d["g"].low == 0.1 and d["g"].high == pytest.approx(0.4) and d["g"].step == 0.1
    assert space.fixed == ["h=3"]
    # A trial's overrides parse back to its values (Hydra's own grammar).
    values = {"a": 0.123456789, "b": 3e-5, "c": 4, "e": "gpt_small", "i": False}
    parsed = OverridesParser.create().parse_overrides(space.overrides(values))
    assert {o.key_or_group: o.value() for o in parsed} == {**values, "h": 3}
    assert space.overrides({"i": True})[-1] == "+i=true"


def test_mean_and_std_over_seeds():
    values = {(1e-3, 1): 2.0, (1e-3, 2): 2.5, (1e-3, 3): 2.2, (3e-3, 1): 1.9, (3e-3, 2): 2.9}
    records = [
        TrialRecord(i, "completed", v, {"lr": lr, "seed": seed})
        for i, ((lr, seed), v) in enumerate(values.items())
    ]
    records.append(TrialRecord(5, "failed", None, {"lr": 3e-3, "seed": 3}, error="nan"))
    groups = {g.params["lr"]: g for g in group_over_seeds(records)}
    assert groups[1e-3].mean == pytest.approx(statistics.mean([2.0, 2.5, 2.2]))
    assert groups[1e-3].std == pytest.approx(statistics.stdev([2.0, 2.5, 2.2]))
    assert groups[3e-3].n == 2 and groups[3e-3].failed == 1 and groups[3e-3].seeds == [1, 2]
    assert best_config(list(groups.values()), "minimize").params == {"lr": 1e-3}
    assert best_config(list(groups.values()), "maximize").params == {"lr": 3e-3}
    assert group_over_seeds([TrialRecord(0, "completed", 1.0, {"lr": 1e-3})]) == []  # no seeds: no table
    once = [TrialRecord(i, "completed", 1.0 + i, {"lr": 10.0**-i, "seed": i}) for i in range(3)]
    assert SweepSummary("s", Path("."), "m", "minimize", once).groups == []  # one seed each: no table either


@pytest.fixture
def restore_hydra_config():
    saved = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = saved


def test_wandb_group_and_name_follow_the_sweep(tmp_path, restore_hydra_config):
    def job(**hydra):
        cfg = hydra_config(f"hydra.sweep.dir={tmp_path / '2024-05-01_12-00-00'}")
        with read_write(cfg), open_dict(cfg):
            for key, value in hydra.items():
                OmegaConf.update(cfg, f"hydra.{key}", value, force_add=True)
        HydraConfig.instance().set_config(cfg)

    job()
    assert sweep_group("clm") == "clm" and job_run_name("run") == "run"  # a single run
    job(mode=RunMode.MULTIRUN, **{"job.num": 3})
    assert sweep_group("clm") == "clm-sweep-2024-05-01_12-00-00" and job_run_name("run") == "run-3"
    job(mode=RunMode.MULTIRUN, **{"job.num": 3, "sweeper.study_name": "lr-study"})
    assert sweep_group("clm") == "lr-study"  # workers sharing a study share a group


@pytest.mark.parametrize("name", SEARCH_SPACES)
def test_shipped_search_spaces_compose_and_search_existing_keys(name):
    glue = name.startswith("glue")  # fine-tuning spaces, composed with a GLUE recipe (maximize its metric)
    # clm_lr_warmup searches one AdamW's optimizer.lr: the GPT sweep recipe's, not the Muon default's
    experiment = {"clm_lr_warmup": "clm_tiny_sweep"}.get(name, "glue/rte" if glue else None)
    cfg = hydra_config(f"hparams_search={name}", *([f"experiment={experiment}"] if experiment else []))
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.lmlab_optuna_sweeper.sweeper.LmlabOptunaSweeper"
    direction = "maximize" if glue else "minimize"
    assert sweeper.n_trials >= 8 and normalize_direction(sweeper.direction) == direction
    assert check_optimized_metric(cfg) == ("best/val/accuracy" if glue else "best/val/loss")
    space = parse_search_space(OmegaConf.to_container(sweeper.params), [])
    check_keys_exist(space, cfg)
    assert len(space.params) >= 2 and not space.fixed
    sampler = instantiate(sweeper.sampler)
    assert type(sampler).__name__ == ("RandomSampler" if name.endswith("random") else "TPESampler")


def test_pretraining_searches_the_default_recipes_learning_rates_schedule_and_batch_size():
    params = hydra_config("hparams_search=clm_tpe").hydra.sweeper.params
    assert set(params) == {
        "optimizer.muon.lr", "optimizer.adamw.lr", "scheduler.warmup_ratio", "scheduler.decay_ratio",
        "optimizer.adamw.weight_decay", "data.batch_size",
    }  # fmt: skip


def test_glue_search_optimizes_the_monitored_metric():
    experiments = ["experiment=glue/rte"] if (CONF / "experiment" / "glue" / "rte.yaml").exists() else []
    cfg = hydra_config(
        "hparams_search=glue_tpe", *experiments, "monitor.metric=val/accuracy", "monitor.mode=max"
    )
    assert cfg.optimized_metric == "best/val/accuracy" and check_optimized_metric(cfg) == "best/val/accuracy"
    assert normalize_direction(cfg.hydra.sweeper.direction) == "maximize"
    params = cfg.hydra.sweeper.params
    assert set(params) == {
        "optimizer.lr",
        "trainer.max_epochs",
        "data.batch_size",
        "scheduler.warmup_ratio",
        "seed",
    }
    check_keys_exist(parse_search_space(OmegaConf.to_container(params), []), cfg)


def test_slurm_launcher_config_makes_the_expected_sbatch_script(tmp_path, monkeypatch):
    import submitit

    # submitit checks that srun exists; no job is submitted (map_array is replaced).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    executors = []
    monkeypatch.setattr(
        submitit.AutoExecutor, "map_array", lambda self, fn, *args: executors.append(self) or []
    )

    cfg = hydra_config(
        "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.tasks_per_node=4", "hydra.launcher.setup=[source .venv/bin/activate]",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.job.name=train",
    )  # fmt: skip
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([["optimizer.lr=1e-3"]], initial_job_idx=0)
    script = executors[0]._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in (
        "--partition=gpu", "--nodes=1", "--gpus-per-node=4", "--ntasks-per-node=4", "--cpus-per-task=8",
        "--mem=64GB", "--time=240", "--job-name=train",
    ):  # fmt: skip
        assert f"#SBATCH {line}\n" in script, line
    assert "source .venv/bin/activate" in script
    assert str(tmp_path / "sweep" / ".submitit") in script


def test_a_launcher_that_is_not_installed_is_named_with_its_extra(monkeypatch):
    cfg = hydra_config("hydra/launcher=joblib")
    launchers.check_launcher(cfg)  # installed here (the dev extra)

    def without_joblib(module):
        return not module.startswith("hydra_plugins.hydra_joblib")

    monkeypatch.setattr(launchers, "importable", without_joblib)
    monkeypatch.setattr(launcher_stand_ins, "importable", without_joblib)
    message = r'hydra/launcher=joblib needs hydra-joblib-launcher.*pip install -e "\.\[parallel\]"'
    with pytest.raises(ConfigError, match=message):
        launchers.check_launcher(cfg)
    # ... and Hydra gets a stand-in config for it, so `hydra/launcher=joblib` reaches that check.
    assert launcher_stand_ins.stand_in_configs() == {"joblib": {"_target_": cfg.hydra.launcher._target_}}


# ------------------------------------------------------------------------ metric names known before a trial
def table_overrides(folder: Path) -> list[str]:
    """experiment=classify_table on a labeled CSV table: train, dev and a scored test file."""
    rows = "\n".join(f"a {'fine' if i % 2 else 'poor'} film number {i},{i % 2}" for i in range(24))
    for split in ("train", "dev", "test"):
        (folder / f"{split}.csv").write_text(f"review,label\n{rows}\n")
    splits = {"train": "train", "validation": "dev", "test": "test"}
    files = [f"data.source.files.{stage}={folder / name}.csv" for stage, name in splits.items()]
    return ["experiment=classify_table", *GLUE_TINY, *files, "data.source.text_columns=[review]",
            f"paths.cache_dir={folder / 'cache'}"]  # fmt: skip


def task_overrides(task: str, request, tmp_path: Path) -> list[str]:
    if task in ("clm", "mlm"):
        data = request.getfixturevalue("wikitext_dir")
        base = [*TINY, f"paths.data_dir={data}", f"paths.cache_dir={tmp_path}"]
        return base if task == "clm" else [*base, "experiment=mlm_wikitext2", "model=bert_tiny"]
    if task.startswith("glue/"):
        glue = request.getfixturevalue("glue_dir")
        return [f"experiment={task}", *GLUE_TINY, f"paths.data_dir={glue}", f"paths.cache_dir={tmp_path}"]
    if task == "table":
        return table_overrides(tmp_path)
    model = "t5_tiny" if task.endswith("t5") else "gpt_tiny"
    copy = write_copy_task(tmp_path / "copy")
    return [f"experiment={task}", f"model={model}", *GEN_TINY, *copy_task_overrides(copy, tmp_path / "cache")]


def build_task_module(cfg):
    """The task module as the training stage builds it (the contracts of lmlab.data.base and lmlab.tasks.base)."""
    head = get_class(cfg.task._target_).HEAD
    datamodule = instantiate(cfg.data, _partial_=True)(tokenizer=instantiate(cfg.tokenizer))
    datamodule.set_head(head)
    tokenizer = datamodule.prepare_tokenizer()
    datamodule.prepare_data()
    model = instantiate(cfg.model).build(head, tokenizer, datamodule.head_config())
    return instantiate(cfg.task, _partial_=True)(
        model=model, tokenizer=tokenizer, **datamodule.module_kwargs()
    )


TASKS = [
    "clm",
    "mlm",
    "glue/sst2",
    "glue/mnli",
    "glue/stsb",
    "table",
    "gen/translation_t5",
    "gen/translation_gpt",
]


@pytest.mark.parametrize("task", TASKS)
def test_metric_names_from_the_config_are_those_the_built_task_module_logs(task, request, tmp_path):
    cfg = compose_run(task_overrides(task, request, tmp_path), tmp_path / "run")
    names = task_metric_names(cfg)
    module = build_task_module(cfg)
    assert names.logged == module.logged_metrics() and names.task == type(module).__name__


def sweepable(metrics: dict) -> set[str]:
    """What metrics.json holds that a sweep may optimize (learning rates are settings)."""
    assert all(METRIC_NAME.match(k) or k.startswith("lr-") for k in metrics), sorted(metrics)
    return {k for k in metrics if METRIC_NAME.match(k)}


def test_a_sweep_accepts_the_metrics_train_returns(tiny_overrides, tmp_path):
    cfg = compose_run([*tiny_overrides, "run_test=true", "export.enabled=false"], tmp_path / "run")
    expected = set(returned_metric_names(cfg))
    assert sweepable(train(cfg)) == expected - {"perf/mfu"}  # no peak FLOP/s known for a CPU


def test_a_scored_test_table_and_the_auxiliary_lm_loss_are_known_too(tmp_path):
    extra = ["run_test=true", "task.aux_lm_weight=0.5", "trainer.max_steps=4", "trainer.log_every_n_steps=1",
             "export.enabled=false", "run_predict=false"]  # fmt: skip
    cfg = compose_run([*table_overrides(tmp_path), *extra], tmp_path / "run")
    expected = set(returned_metric_names(cfg))
    returned = sweepable(train(cfg))
    assert returned <= expected
    test = {f"test/{name}" for name in ("accuracy", "f1_macro", "combined_score", "loss")}
    assert test | {"train/aux_lm_loss"} <= returned
    assert {f"best/{name}" for name in returned if name.startswith("val/")} <= returned
