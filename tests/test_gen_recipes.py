"""Every generation recipe (conf/experiment/gen/) composes and trains 2 steps on its preset's data layout;
the decoder-only ones also start from a pretraining export; evaluate.py runs on what they write."""

import json

import pytest
from conftest import CONF, compose
from gen_fixtures import GEN_TINY, write_preset_layouts

from lmlab.stages.evaluate import evaluate
from lmlab.stages.train import train

RECIPES = sorted(f"gen/{p.stem}" for p in (CONF / "experiment" / "gen").glob("*.yaml"))
TINY_MODEL = {"t5": "t5_tiny", "bart": "bart_tiny", "gpt": "gpt_tiny"}
TWO_STEPS = [
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "tokenizer.vocab_size=300",
    "tokenizer.min_frequency=1",
    "data.max_eval_samples=8",
    "data.max_test_samples=8",
    "data.batch_size=4",
    "task.val_generate_samples=4",
    "task.generation.max_new_tokens=6",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_preset_layouts(tmp_path_factory.mktemp("presets"))


def test_the_generation_recipes_exist():
    assert {
        "gen/translation_t5",
        "gen/summarization_bart",
        "gen/translation_gpt",
        "gen/summarization_gpt",
    } <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_two_steps(recipe, data_dir, tmp_path):
    model = TINY_MODEL[recipe.rsplit("_", 1)[1]]
    overrides = [f"experiment={recipe}", f"model={model}", *GEN_TINY, *TWO_STEPS, f"paths.data_dir={data_dir}",
                 f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    for stage in ("val", "test"):
        assert {
            f"{stage}/{m}" for m in ("loss", "bleu", "rouge1", "rougeLsum", "gen_len", "distinct_2")
        } <= set(metrics)
    assert (tmp_path / "run" / "export" / "config.json").is_file()
    test = [json.loads(x) for x in (tmp_path / "run" / "predictions" / "test.jsonl").read_text().splitlines()]
    assert len(test) == 8
    if "summarization" in recipe:
        assert len(test[0]["references"]) == 3  # DialogSum test: three references per dialogue


@pytest.mark.parametrize("recipe", ["gen/translation_gpt", "gen/summarization_gpt"])
def test_decoder_only_recipe_from_a_pretraining_export(recipe, data_dir, small_pretrained_gpt, tmp_path):
    overrides = [f"experiment={recipe}", "model=pretrained", "tokenizer=pretrained",
                 f"model.pretrained={small_pretrained_gpt}", *GEN_TINY,
                 *[o for o in TWO_STEPS if not o.startswith("tokenizer.")], "data.max_source_length=96",
                 "data.max_target_length=32", f"paths.data_dir={data_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    metrics = train(compose(overrides, tmp_path / "run"))
    assert metrics["test/gen_len"] >= 1
    result = evaluate(
        compose(
            [
                f"ckpt_path={tmp_path / 'run' / 'export'}",
                "logger=none",
                f"paths.data_dir={data_dir}",
                f"paths.cache_dir={tmp_path / 'cache'}",
            ],
            tmp_path / "eval",
            config_name="evaluate",
        )  # fmt: skip
    )
    assert set(result) >= {"test/bleu", "test/rougeL", "test/rep_ngram"}
