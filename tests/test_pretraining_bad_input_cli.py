"""Bad settings of the Llama-style presets and of optimizer=muon, end to end: `python train.py` stops with
exit code 2 and one message naming the override and the fix, without a traceback; the model settings are
and the optimizer's selection are refused before the tokenizer and the data are prepared (nothing written
to the cache)."""

from __future__ import annotations

import pytest
from conftest import TINY
from test_cli import run_cli

LLAMA = [o for o in TINY if not o.startswith("model=")] + ["model=llama_tiny"]

# name -> (extra arguments, substrings of stderr, refused before data preparation)
CASES = {
    "unknown_mlp": (
        ["model.mlp=swish"],
        ["error: model.mlp='swish' is not a known MLP type; use one of swiglu, geglu, relu2, gelu"],
        True,
    ),
    "heads_do_not_divide_the_width": (
        ["model.config.num_attention_heads=3"],
        [
            "error: model.config.num_attention_heads=3 does not divide model.config.hidden_size=64",
            "Use a head count that divides it (e.g. 1, 2, 4)",
        ],
        True,
    ),
    "kv_heads_do_not_divide_the_heads": (
        ["model.config.num_key_value_heads=3"],
        [
            "error: model.config.num_key_value_heads=3 does not divide model.config.num_attention_heads=4",
            "Use one of 1, 2, 4",
        ],
        True,
    ),
    "qk_norm_with_an_ungated_mlp": (
        ["model.mlp=relu2", "model.qk_norm=true"],
        ["error: model.qk_norm=true with model.mlp=relu2 (an ungated MLP)", "model.qk_norm=false"],
        True,
    ),
    "muon_with_no_hidden_matrix": (
        ["optimizer=muon", "optimizer.muon_exclude=['.']"],
        [
            "error: optimizer=muon: no 2-D hidden weight matrix is left for Muon to train: "
            "optimizer.muon_exclude=['.'] excludes all 14 of them",
            "Narrow optimizer.muon_exclude, or use optimizer=adamw",
        ],
        True,
    ),
}


# the same checks run in-process in tests/test_llama.py; these CLI runs (~8 s each) are in pytest -m slow
SLOW_CASES = {
    "heads_do_not_divide_the_width",
    "unknown_mlp",
    "kv_heads_do_not_divide_the_heads",
    "qk_norm_with_an_ungated_mlp",
}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in sorted(CASES)]
)
def test_bad_setting_stops_with_a_message(case, tmp_path, wikitext_dir):
    extra, expected, before_data = CASES[case]
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    args = [
        *LLAMA,
        *extra,
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli("train.py", args, tmp_path, HYDRA_FULL_ERROR=None)
    assert result.returncode == 2, result.stderr[-3000:]
    for text in expected:
        assert text in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in ("metrics.json", "export", "checkpoints"):
        assert not (run_dir / name).exists(), name
    if before_data:  # no tokenizer trained, no tokens written
        assert not [p for p in cache.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_resuming_an_adamw_checkpoint_with_muon(tmp_path, wikitext_dir):
    """The optimizer state in a checkpoint must be the run's: another optimizer's is refused by name."""
    args = [*LLAMA, "run_test=false", "export.enabled=false"]
    args += [f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    first = run_cli("train.py", [*args, f"hydra.run.dir={tmp_path / 'first'}"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    again = [*args, "optimizer=muon", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'again'}"]
    result = run_cli("train.py", again, tmp_path, HYDRA_FULL_ERROR=None)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: the checkpoint's optimizer state does not fit MuonAdamW" in result.stderr
    assert "[('decay', 15), ('no_decay', 5)]" in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_an_adamw_key_with_the_muon_default_names_the_keys_to_use(tmp_path, wikitext_dir):
    """`optimizer.lr=...` with the pretraining default (Muon): Hydra refuses the key while composing and
    suggests `+optimizer.lr`, which Muon would ignore; train.py adds the keys that exist, and exits 2."""
    args = [o for o in LLAMA if not o.startswith(("optimizer=", "scheduler="))]
    args += ["optimizer.lr=3e-4", f"paths.data_dir={wikitext_dir}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli("train.py", args, tmp_path, HYDRA_FULL_ERROR=None)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: optimizer.lr: the optimizer is optimizer=muon (the pretraining default)" in result.stderr
    assert "optimizer.muon.lr" in result.stderr and "optimizer=adamw" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "hinted"),
    [
        (["optimizer.weight_decay=0.1", "optimizer.lr=1e-3"], "optimizer.lr, optimizer.weight_decay"),
        (["-m", "optimizer.lr=1e-4,3e-4", "seed=1,2"], "optimizer.lr"),  # a grid sweep
        (["-m", "optimizer.lr=tag(log, interval(1e-4, 1e-2))", "hydra/sweeper=lmlab_optuna"], "optimizer.lr"),
        (["optimizer=adamw", "optimizer.lr=1e-3"], None),  # composes: not why a command failed
        (["experiment=glue/rte", "optimizer.lr=2e-5"], None),  # fine-tuning recipes keep AdamW
        (["optimizer.muon.lr=0.03", "model=nonexistent"], None),  # another error: no hint
    ],
)
def test_the_hint_comes_only_for_adamw_keys_that_muon_lacks(argv, hinted):
    from conftest import CONF

    from lmlab.config.override_hints import muon_override_hint

    hint = muon_override_hint(argv, CONF)
    if hinted is None:
        assert hint is None
    else:
        assert hint.startswith(f"{hinted}: the optimizer is optimizer=muon")
