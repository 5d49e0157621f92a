"""Secrets never reach the console, the run folder (W&B's files and Hydra's included) or W&B."""

import socket
import sys

import pytest
from omegaconf import OmegaConf
from test_cli import run_cli

from lmlab.config.secrets import masked_argv, scrub
from lmlab.config.tree import print_config_tree

ENV_SECRET = "env-secret-0123456789abcdef"  # the value of WANDB_API_KEY
KEY_SECRET = "key-secret-fedcba9876543210"  # given to a secret key on the command line


def test_values_of_secret_keys_are_masked_wherever_they_appear():
    config = {
        "my_api_key": KEY_SECRET,
        "tags": [KEY_SECRET, "pretrain"],
        "url": "https://example.org/data?token=abcdef&part=1",
        "override_dirname": "optimizer.lr=1,+hub_token=xyz,seed=2",
        "data": {"pad_token": "<pad>"},
    }
    assert scrub(config, secrets=[]) == {
        "my_api_key": "***",
        "tags": ["***", "pretrain"],
        "url": "https://example.org/data?token=***&part=1",
        "override_dirname": "optimizer.lr=1,+hub_token=***,seed=2",
        "data": {"pad_token": "<pad>"},
    }
    # a short value is masked under its key only (masking it in all text would garble it)
    assert scrub({"password": "abc", "note": "abc"}, secrets=[]) == {"password": "***", "note": "abc"}


def test_process_arguments_are_masked_while_recorded_then_restored(monkeypatch):
    argv = ["train.py", f"+my_api_key='{KEY_SECRET}'", f"tags=[{KEY_SECRET},pretrain]", "optimizer.lr=1"]
    monkeypatch.setattr(sys, "argv", argv)
    with masked_argv():
        assert sys.argv == ["train.py", "+my_api_key=***", "tags=[***,pretrain]", "optimizer.lr=1"]
    assert sys.argv is argv and argv[1] == f"+my_api_key='{KEY_SECRET}'"  # DDP workers need the real ones


def test_config_tree_prints_masked_values(capsys, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", ENV_SECRET)
    cfg = OmegaConf.create(
        {
            "tags": [ENV_SECRET],
            "logger": {"wandb": {"tags": "${tags}", "project": "lmlab"}},
            "my_api_key": KEY_SECRET,
            "ckpt_path": "???",
        }
    )
    print_config_tree(cfg)
    out = capsys.readouterr().out
    assert ENV_SECRET not in out and KEY_SECRET not in out
    assert "***" in out and "lmlab" in out and "???" in out  # the rest is shown; missing values too


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_no_secret_reaches_console_run_folder_or_wandb(tmp_path, tiny_overrides):
    """The default logger (W&B) with credentials whose server cannot be reached: offline after one warning
    line, and neither secret in the output, any file of the run (W&B's offline run, .hydra) or W&B's
    folders."""
    run_dir = tmp_path / "run"
    args = [
        *[o for o in tiny_overrides if not o.startswith("logger=")],
        "trainer.max_steps=2",
        f"tags=[{ENV_SECRET},{KEY_SECRET},pretrain]",
        f"+my_api_key={KEY_SECRET}",
        "logger.wandb.connect_timeout=2",
        f"hydra.run.dir={run_dir}",
    ]
    env = {
        "WANDB_SERVICE": None,  # its own W&B service, not one this test process may have started
        "WANDB_MODE": None,
        "WANDB_API_KEY": ENV_SECRET,
        "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
        "WANDB_DIR": str(tmp_path / "wandb-dir"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
    }
    result = run_cli("train.py", args, tmp_path, **env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if "did not answer within 2 s" in line]
    assert len(warnings) == 1 and "wandb sync" in warnings[0]
    (wandb_run,) = list((run_dir / "wandb").glob("offline-run-*/*.wandb"))
    assert b"+my_api_key=***" in wandb_run.read_bytes()  # W&B recorded the arguments, masked

    assert ENV_SECRET not in output and KEY_SECRET not in output
    assert "***" in output  # the config tree, masked
    leaks = [
        str(path.relative_to(tmp_path))
        for path in tmp_path.rglob("*")
        if path.is_file() and any(s.encode() in path.read_bytes() for s in (ENV_SECRET, KEY_SECRET))
    ]
    assert not leaks, f"a secret was written to {leaks}"
