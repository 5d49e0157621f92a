"""The bad-input catalogue, end to end: each case runs `python train.py` / `python evaluate.py` as a user
would and checks the exit code, the one-line message (naming the file, field or override and the fix), that
no traceback is shown, and that no run output was left looking complete.

A full disk while writing a checkpoint cannot be caused from the command line; it is simulated in-process in
tests/test_reliability.py::test_full_disk_while_writing_a_checkpoint.
"""

from __future__ import annotations

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


# name -> (script, extra arguments(tmp, data dir), expected exit code, substrings of stderr)
CASES = {
    "missing_data_dir": (
        "train.py",
        lambda tmp, data: [f"paths.data_dir={tmp / 'missing'}"],
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


@pytest.mark.parametrize("case", sorted(CASES))
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
