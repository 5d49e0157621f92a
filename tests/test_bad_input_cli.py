"""The bad-input catalogue, end to end: each case runs `python train.py` / `python evaluate.py` as a user
would and checks the exit code, the one-line message (naming the file, field or override and the fix), that
no traceback is shown, and that no run output was left looking complete.

Three classes of input get past our own checks and are refused underneath: values a library rejects
(reported as `error: <stage>: <the library's message>` naming the config group), damaged input files (the
file and where it broke), and a checkpoint that does not fit the run (what it holds, what the run builds).
More cases of each, in-process: tests/test_errors.py.

A full disk while writing a checkpoint cannot be caused from the command line; it is simulated in-process in
tests/test_reliability.py::test_full_disk_while_writing_a_checkpoint.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from conftest import TINY
from test_cli import run_cli


def _copy_wikitext(src: Path, dst: Path, train: bytes | None = None) -> Path:
    """A copy of the fixture data dir, with the train split replaced by ``train`` bytes if given."""
    shutil.copytree(src, dst)
    if train is not None:
        (dst / "wikitext-2" / "wiki.train.tokens").write_bytes(train)
    return dst


def _table(tmp: Path, header: str) -> list[str]:
    rows = "\n".join(f"a fine film number {i},{i % 2}" for i in range(8))
    for split in ("train", "dev"):
        (tmp / f"{split}.csv").write_text(f"{header}\n{rows}\n")
    return [
        "experiment=classify_table",
        "model=bert_tiny",
        "model.pretrained=null",
        "tokenizer=wordpiece",
        f"data.source.files.train={tmp / 'train.csv'}",
        f"data.source.files.validation={tmp / 'dev.csv'}",
        "data.source.text_columns=[review]",
        "trainer.accelerator=cpu",
    ]


def _text_files(tmp: Path, name: str, content: bytes) -> list[str]:
    """Arguments of a causal-LM run on one local training file holding ``content``."""
    (tmp / name).write_bytes(content)
    return ["experiment=clm_text_files", f"data.source.files.train={tmp / name}"]


def _truncated_gz(tmp: Path, data: Path) -> list[str]:
    packed = gzip.compress((data / "wikitext-2" / "wiki.train.tokens").read_bytes())
    return _text_files(tmp, "corpus.txt.gz", packed[: len(packed) // 2])


def _damaged_jsonl(tmp: Path, data: Path) -> list[str]:
    lines = [b'{"text": "alpha bravo charlie delta"}'] * 20
    lines[6] = b'{"text": "alpha bravo'  # a record cut short
    return _text_files(tmp, "corpus.jsonl", b"\n".join(lines) + b"\n")


# name -> (script, extra arguments(tmp, data dir), expected exit code, substrings of stderr)
CASES = {
    "missing_data_dir": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={tmp / 'missing'}", "data.source.fallback=null"],
        2,
        ["error: wikitext-2 (tokenized) train split: no data found", "paths.data_dir"],
    ),
    "invalid_utf8": (
        "train.py",
        lambda tmp, data: [
            f"paths.data_dir={_copy_wikitext(data, tmp / 'd', train=b' = A = ' + bytes([10]) + b' caf' + bytes([0xE9]) + bytes([10]))}"
        ],
        2,
        ["wiki.train.tokens: invalid UTF-8 at line 2"],
    ),
    "empty_train_split": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={_copy_wikitext(data, tmp / 'd', train=b'')}"],
        2,
        ["wiki.train.tokens", "is empty"],
    ),
    "wrong_column": (
        "train.py",
        lambda tmp, data: _table(tmp, header="text,label"),
        2,
        ["train.csv", "'review'", "text_columns"],
    ),
    "wrong_type_in_override": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "optimizer.lr=abc"],
        2,
        ["optimizer.lr='abc' must be"],
    ),
    "unknown_config_name": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "model=gpt_enormous"],
        1,
        ["Could not find 'model/gpt_enormous'", "gpt_small"],
    ),
    "incompatible_model_and_task": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "task=mlm"],
        2,
        ["has no masked_lm head"],
    ),
    "block_size_beyond_the_model": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "data.block_size=1024"],
        2,
        ["data.block_size=1024 is larger than the model's maximum positions"],
    ),
    "unwritable_cache_dir": (
        "train.py",
        # a path under a regular file cannot be created, whoever runs the test (root included)
        lambda tmp, data: [f"paths.data_dir={data}", f"paths.cache_dir={_file(tmp / 'blocker')}/cache"],
        2,
        ["paths.cache_dir=", "is not writable", "set paths.cache_dir to a writable folder"],
    ),
    "run_dir_under_a_file": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", f"hydra.run.dir={_file(tmp / 'blocker')}/run"],
        2,
        ["hydra.run.dir=", "blocker/run cannot be created", "is a file; set hydra.run.dir to a folder"],
    ),
    "missing_checkpoint": (
        "evaluate.py",
        lambda tmp, data: [f"ckpt_path={tmp / 'none.ckpt'}"],
        2,
        ["no such file"],
    ),
    # values a library rejects although our own checks let them through
    "value_torch_rejects": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "optimizer.lr=-1"],
        2,
        [
            "error: optimizer: Invalid learning rate: -1",
            "set on the command line: optimizer=adamw optimizer.lr=-1",
        ],
    ),
    "precision_lightning_rejects": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "trainer.precision=17"],
        2,
        ["error: trainer: Precision 17 is invalid", "trainer.precision=17"],
    ),
    "own_check_inside_instantiate": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={data}", "model.implementation=fast"],
        2,
        ["error: model.implementation='fast' must be hf or native"],
    ),
    # damaged input files: the file, and where it broke
    "truncated_gzip_text": (
        "train.py",
        _truncated_gz,
        2,
        ["corpus.txt.gz: damaged file, the gzip stream ends early: the file is truncated", "at line "],
    ),
    "damaged_jsonl": (
        "train.py",
        _damaged_jsonl,
        2,
        ["corpus.jsonl:7: not valid JSON at column 10 (Unterminated string"],
    ),
    "corrupt_checkpoint": (
        "evaluate.py",
        lambda tmp, data: [f"ckpt_path={_file(tmp / 'half.ckpt', b'PK' + bytes(100))}"],
        2,
        ["is not a readable checkpoint"],
    ),
}


def _file(path: Path, content: bytes = b"") -> Path:
    path.write_bytes(content)
    return path


# each case starts train.py (~9 s); these run with pytest -m slow, the others in the default suite
SLOW_CASES = {
    "missing_data_dir",  # in-process: test_errors.py::test_missing_data_dir
    "run_dir_under_a_file",
    "unknown_config_name",
    "wrong_type_in_override",
    "block_size_beyond_the_model",
    "damaged_jsonl",
    "empty_train_split",
    "incompatible_model_and_task",  # in-process: test_errors.py (the "has no masked_lm head" check)
    "invalid_utf8",
    "missing_checkpoint",
    "own_check_inside_instantiate",
    "precision_lightning_rejects",
    "truncated_gzip_text",
    "unwritable_cache_dir",
    "value_torch_rejects",  # tests/test_errors.py checks the message and exit code 2 in-process
    "wrong_column",
}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in sorted(CASES)]
)
def test_bad_input_stops_with_a_message(case, tmp_path, wikitext_dir):
    script, extra, code, expected = CASES[case]
    run_dir = tmp_path / "run"
    args = extra(tmp_path, wikitext_dir)
    if script == "train.py" and "experiment=classify_table" not in args:
        args = [*TINY, *args]
    if not any(a.startswith("paths.cache_dir=") for a in args):
        args.append(f"paths.cache_dir={tmp_path / 'cache'}")
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args.append(f"hydra.run.dir={run_dir}")
    result = run_cli(script, args, tmp_path, HYDRA_FULL_ERROR=None)  # as a user runs it: no full traces
    assert result.returncode == code, result.stderr[-3000:]
    for text in expected:
        assert text in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # nothing that looks like a finished run: no metrics, no export, no checkpoint
    for name in ("metrics.json", "export", "checkpoints"):
        assert not (run_dir / name).exists(), name


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, wikitext_dir) -> tuple[Path, list[str]]:
    """One tiny pretraining run through train.py: its folder and the arguments that made it."""
    tmp = tmp_path_factory.mktemp("finished")
    args = [*TINY, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp / 'cache'}"]
    result = run_cli("train.py", [*args, f"hydra.run.dir={tmp / 'run'}"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run", args


@pytest.mark.parametrize(
    "change, differences",
    [
        (["model.config.n_layer=3"], ["layers: checkpoint 2, run 3"]),
        pytest.param(  # the same comparison with another field: pytest -m slow
            ["task=mlm", "model=bert_tiny", "tokenizer=wordpiece"],
            [
                "task: checkpoint CausalLMModule, run MaskedLMModule",
                "head: checkpoint causal_lm, run masked_lm",
            ],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_resume_that_does_not_fit_the_checkpoint(finished_run, tmp_path, change, differences):
    """Resuming with another model size or another task: what the checkpoint holds and what the run builds,
    before any weight is loaded (and before the data is prepared: nothing written to a fresh cache)."""
    run_dir, args = finished_run
    ckpt = sorted((run_dir / "checkpoints").glob("*.ckpt"))[0]
    args = [a for a in args if not a.startswith("paths.cache_dir=")] + [
        f"paths.cache_dir={tmp_path / 'cache'}"
    ]
    again = tmp_path / "again"
    result = run_cli("train.py", [*args, *change, f"ckpt_path={ckpt}", f"hydra.run.dir={again}"], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"error: ckpt_path={ckpt} does not fit this run: the checkpoint holds a gpt2 causal_lm"
        in result.stderr
    )
    assert "this run builds a " in result.stderr and f"{run_dir}/config_resolved.yaml" in result.stderr
    for text in differences:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "cache").rglob("tokens.bin"))
    assert not (again / "metrics.json").exists() and not (again / "checkpoints").exists()
