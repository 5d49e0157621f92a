"""Every shipped recipe composes, instantiates and trains a couple of steps; every preset builds."""

import pytest
from conftest import CONF, compose
from hydra.utils import instantiate

from lmlab.stages.train import train

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
ALL_EXPERIMENTS = sorted(
    str(p.relative_to(CONF / "experiment").with_suffix(""))
    for p in (CONF / "experiment").rglob("*.yaml")
    if not p.name.startswith("_")
)
# from-scratch causal-LM pretraining: Llama-style, Muon + AdamW, warmup-stable-decay
MODERN = {"clm_wikitext2", "clm_text_files"}
OWN_RECIPE = ("optimizer=", "scheduler=")


def test_the_required_recipes_exist():
    assert {"clm_wikitext2", "mlm_wikitext2", "clm_continue", "clm_text_files"} <= set(EXPERIMENTS)


def test_default_is_the_clm_wikitext2_recipe(tmp_path):
    default = compose([], tmp_path)
    explicit = compose(["experiment=clm_wikitext2"], tmp_path)
    for group in ("data", "tokenizer", "model", "task", "optimizer", "scheduler", "trainer"):
        assert default[group] == explicit[group], group


@pytest.mark.parametrize("experiment", [None, *ALL_EXPERIMENTS])
def test_pretraining_is_the_modern_recipe_and_everything_else_adamw(experiment, tmp_path):
    """The default and the from-scratch causal-LM recipes are Llama + Muon + WSD; every other recipe (fine-tuning,
    masked LM, generation, the GPT sweep example) keeps one AdamW, whose optimizer.lr its own settings use."""
    cfg = compose([f"experiment={experiment}"] if experiment else [], tmp_path)
    if experiment is None or experiment in MODERN:
        assert cfg.model._target_ == "lmlab.models.LlamaFactory" and cfg.model.config.hidden_size == 256
        assert cfg.optimizer._target_ == "lmlab.optim.MuonAdamW"
        assert cfg.scheduler.name == "wsd"
    else:
        assert cfg.optimizer._target_ == "torch.optim.AdamW", experiment
        assert cfg.optimizer.lr > 0


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_trains(experiment, tiny_overrides, tmp_path, wikitext_dir, small_pretrained_gpt):
    # the experiment's own optimizer and schedule (tiny_overrides pin the GPT-2 recipe's)
    overrides = [f"experiment={experiment}", *(o for o in tiny_overrides if not o.startswith(OWN_RECIPE))]
    if experiment in MODERN:
        overrides = [o if o != "model=gpt_tiny" else "model=llama_tiny" for o in overrides]
    if experiment.startswith("mlm"):
        overrides = [o if o != "model=gpt_tiny" else "model=bert_tiny" for o in overrides]
    if experiment == "clm_continue":
        overrides = [o for o in overrides if not o.startswith(("model=", "tokenizer."))]
        overrides += [f"model.pretrained={small_pretrained_gpt}"]
    if experiment == "classify_table":
        rows = "text,label\n" + "".join(f"{'good' if i % 2 else 'bad'} item {i},{i % 2}\n" for i in range(40))
        (tmp_path / "t.csv").write_text(rows)
        overrides = [o for o in overrides if not o.startswith(("model=", "tokenizer.", "data.block_size"))]
        overrides += [
            "model=bert_tiny",
            "model.pretrained=null",
            "tokenizer=wordpiece",
            "tokenizer.vocab_size=300",
        ]
        overrides += [
            f"data.source.files.train={tmp_path / 't.csv'}",
            f"data.source.files.validation={tmp_path / 't.csv'}",
        ]
        overrides += ["trainer.max_epochs=1", "trainer.max_steps=4"]
    if experiment == "clm_text_files":
        overrides += [
            f"data.source.files.train={wikitext_dir}/wikitext-2/wiki.train.tokens",
            "data.source.doc_boundary=line",
        ]
    if experiment.startswith("instruct"):  # a pretrained decoder (LoRA) on instruction data
        overrides = [
            o
            for o in overrides
            if not o.startswith(("model=", "tokenizer.", "data.block_size", "paths.data"))
        ]
        overrides += [f"model.pretrained={small_pretrained_gpt}", "data.max_source_length=64",
                      "data.max_target_length=16", "task.val_generate_samples=2", "task.generation.num_beams=1"]  # fmt: skip
        if experiment == "instruct":
            rows = "".join(f'{{"prompt": "repeat {w}", "response": "{w}"}}\n' for w in ["alpha", "bravo"] * 8)
            (tmp_path / "i.jsonl").write_text(rows)
            overrides += [
                f"data.source.files.train={tmp_path / 'i.jsonl'}",
                f"data.source.files.validation={tmp_path / 'i.jsonl'}",
            ]
        else:
            from gen_fixtures import write_preset_layouts

            overrides += [f"paths.data_dir={write_preset_layouts(tmp_path / 'presets')}"]
    cfg = compose(overrides, tmp_path / "run")
    metrics = train(cfg)
    assert metrics["val/loss"] > 0
    run = tmp_path / "run"
    assert (run / "config_resolved.yaml").is_file()
    assert (run / "export" / "config.json").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_a_run_without_validation_data_trains_and_exports(tiny_overrides, tmp_path):
    """data.splits.validation=null (e.g. training on all of a small set): no validation, not an error."""
    cfg = compose([*tiny_overrides, "data.splits.validation=null"], tmp_path / "run")
    metrics = train(cfg)
    assert metrics["train/loss"] > 0 and not any(k.startswith(("val/", "best/")) for k in metrics)
    assert (tmp_path / "run" / "export" / "config.json").is_file()
    assert "test/loss" in metrics


@pytest.mark.parametrize(
    ("preset", "head", "vocab", "expected"),
    [
        ("gpt_small", "causal_lm", 8192, None),
        ("bert_small", "masked_lm", 8192, None),
        # the published sizes of GPT-2 small and BERT-base (base models, with their own vocabularies)
        ("gpt2_124m", "causal_lm", 50257, 124_439_808),
        ("bert_base", "masked_lm", 30522, 109_482_240),
    ],
)
def test_model_presets(preset, head, vocab, expected, tmp_path):
    from transformers import AutoModel

    factory = instantiate(compose([f"model={preset}"], tmp_path).model)
    factory.check(head, block_size=128)
    config = factory.hf_config()
    config.vocab_size = vocab
    n_params = sum(p.numel() for p in AutoModel.from_config(config).parameters())
    if expected is not None:
        assert n_params == expected


def test_evaluate_config_composes(tmp_path):
    cfg = compose(["ckpt_path=x"], tmp_path, config_name="evaluate")
    assert cfg.split == "test" and cfg.get("data") is None  # the training data, read from the checkpoint
    cfg = compose(["ckpt_path=x", "data=wikitext2"], tmp_path, config_name="evaluate")
    assert cfg.data.splits.test == "test"
