"""W&B chooses online/offline mode itself and never prompts."""

import pytest

from lmlab.errors import ConfigError
from lmlab.tracking.wandb import resolve_wandb_mode


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return tmp_path


def test_offline_without_credentials(clean_env):
    assert resolve_wandb_mode("auto") == "offline"


def test_online_with_api_key(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"


def test_online_with_netrc_login(clean_env):
    (clean_env / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    assert resolve_wandb_mode("auto") == "online"


def test_environment_and_explicit_modes_win(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled"
    assert resolve_wandb_mode("offline") == "offline"
    with pytest.raises(ConfigError, match="logger.wandb.mode"):
        resolve_wandb_mode("sometimes")
