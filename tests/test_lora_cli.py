"""Bad LoRA settings, end to end: `python train.py finetune=lora ...` stops with exit code 2 and one message
naming the override and the fix, without a traceback, before the tokenizer and the data are prepared."""

from __future__ import annotations

import pytest
from conftest import TINY
from test_cli import run_cli

# name -> (extra arguments, substrings of stderr)
CASES = {
    "target_matches_nothing": (
        ["finetune.target_modules=[q_proj,v_proj]"],
        [
            "error: finetune.target_modules: ['q_proj', 'v_proj'] match no layer of model",
            "Its adaptable layers: c_attn, c_fc, c_proj",
        ],
    ),
    "rank_zero": (["finetune.r=0"], ["error: finetune.r=0 must be a positive integer"]),
    "negative_rank": (["finetune.r=-4"], ["error: finetune.r=-4 must be a positive integer"]),
    "model_from_scratch": (
        ["model=gpt_tiny", "tokenizer=bpe", "tokenizer.vocab_size=400"],
        ["error: finetune=lora adapts pretrained weights", "set model.pretrained"],
    ),
}


# the same checks run in-process in tests/test_lora.py; these CLI runs (~10 s each) are in pytest -m slow
SLOW_CASES = {"model_from_scratch", "negative_rank", "rank_zero"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in sorted(CASES)]
)
def test_bad_lora_setting_stops_with_a_message(case, tmp_path, wikitext_dir, small_pretrained_gpt):
    extra, expected = CASES[case]
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    args = [
        "experiment=clm_continue",
        *[o for o in TINY if not o.startswith(("model=", "tokenizer."))],
        *([] if "model=gpt_tiny" in extra else [f"model.pretrained={small_pretrained_gpt}"]),
        "finetune=lora",
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
    assert not [p for p in cache.rglob("*") if p.is_file()]  # no tokenizer trained, no tokens written


@pytest.mark.slow
def test_lora_run_and_evaluate_the_adapter(tmp_path, wikitext_dir, small_pretrained_gpt):
    """The documented commands: a LoRA run, then evaluate.py on its adapter folder and on its merged export."""
    run_dir = tmp_path / "run"
    args = [
        "experiment=clm_continue",
        *[o for o in TINY if not o.startswith(("model=", "tokenizer."))],
        f"model.pretrained={small_pretrained_gpt}",
        "finetune=lora",
        f"paths.data_dir={wikitext_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli("train.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = "".join(p.read_text() for p in run_dir.glob("*.log"))
    assert "LoRA (r=8, alpha=16) on c_attn,c_fc,c_proj" in log and "trainable of" in log
    ppl = {}
    for name in ("export/adapter", "export"):
        out = tmp_path / name.replace("/", "_")
        evaluated = run_cli(
            "evaluate.py", [f"ckpt_path={run_dir / name}", "logger=none", f"hydra.run.dir={out}"], tmp_path
        )
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        ppl[name] = (out / "metrics.json").read_text()
    assert '"head": "causal_lm"' in ppl["export/adapter"]
