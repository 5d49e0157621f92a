"""W&B chooses online/offline mode itself, never prompts and never waits on a server without bound;
evaluate.py logs the same examples tables as training."""

import json
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import compose
from gen_fixtures import write_copy_task

from lmlab.errors import ConfigError
from lmlab.stages.evaluate import evaluate
from lmlab.tracking.reachability import server_answers
from lmlab.tracking.wandb import build_wandb_logger, choose_wandb_mode, resolve_wandb_mode


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


# ------------------------------------------------------------------------ an unreachable or silent server
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A loopback socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def http_server():
    """A loopback HTTP server that answers GET at once (404) and never answers POST (W&B's GraphQL)."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def do_POST(self):
            release.wait(60)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def fresh_wandb(monkeypatch):
    """wandb reads its environment once per process and hands its service on to child processes
    (WANDB_SERVICE): start and end with a fresh library state, as a new process would, and send no error
    reports anywhere."""
    import wandb

    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    saved = os.environ.pop("WANDB_SERVICE", None)
    wandb.teardown()
    yield
    wandb.teardown()
    os.environ.pop("WANDB_SERVICE", None)
    if saved is not None:
        os.environ["WANDB_SERVICE"] = saved


def _offline_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "logs offline" in r.getMessage()]


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_credentials_without_a_server_go_offline_with_one_warning(
    clean_env, monkeypatch, caplog, server, request
):
    url = (
        f"http://127.0.0.1:{_closed_port()}"
        if server == "closed"
        else request.getfixturevalue("silent_server")
    )
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    assert not server_answers(url, timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="lmlab.tracking.wandb"):
        assert choose_wandb_mode("auto", str(clean_env), connect_timeout=0.5) == "offline"
    (warning,) = _offline_warnings(caplog)
    assert f"{url} did not answer within 0.5 s" in warning and "wandb sync" in warning


def test_no_credentials_warn_the_same_way(clean_env, caplog):
    with caplog.at_level(logging.WARNING, logger="lmlab.tracking.wandb"):
        assert choose_wandb_mode("auto", str(clean_env), connect_timeout=0.5) == "offline"
    (warning,) = _offline_warnings(caplog)
    assert "no credentials found" in warning and "wandb sync" in warning


def test_an_answering_server_keeps_the_run_online(clean_env, monkeypatch, http_server, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", http_server)
    with caplog.at_level(logging.WARNING, logger="lmlab.tracking.wandb"):
        assert choose_wandb_mode("auto", str(clean_env), connect_timeout=5) == "online"
    assert not _offline_warnings(caplog)


def test_an_online_start_that_times_out_continues_offline(
    clean_env, monkeypatch, http_server, caplog, request
):
    """The server answers the reachability check but never W&B's own requests: after init_timeout the run
    starts offline, with one warning line, instead of failing."""
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", http_server)
    request.getfixturevalue("fresh_wandb")  # after the environment is set
    logger = build_wandb_logger(
        save_dir=str(clean_env / "run"), connect_timeout=5, init_timeout=1, tags=["t"]
    )
    assert logger._wandb_init["mode"] == "online" and logger._wandb_init["settings"]["init_timeout"] == 1.0
    with caplog.at_level(logging.WARNING, logger="lmlab.tracking.wandb"):
        run = logger.experiment
    try:
        assert run.settings.mode == "offline"
        (warning,) = _offline_warnings(caplog)
        assert "wandb.init failed online" in warning
    finally:
        run.finish()
    assert list((clean_env / "run" / "wandb").glob("offline-run-*/*.wandb"))


# ---------------------------------------------------------------------- evaluate.py logs the examples table
def _tables(run_dir, key_folder: str) -> list[dict]:
    files = sorted((run_dir / "wandb").glob(f"offline-run-*/files/media/table/{key_folder}/*.table.json"))
    return [json.loads(p.read_text()) for p in files]


def test_evaluate_logs_the_generation_examples_table(small_pretrained_gpt, tmp_path, fresh_wandb):
    data = write_copy_task(tmp_path / "copy")
    out = tmp_path / "eval"
    overrides = [
        f"ckpt_path={small_pretrained_gpt}", "evaluation=generation", "data=seq2seq_files",
        f"data.source.files='{data}/{{split}}.{{lang}}'", "data.source.source_lang=src",
        "data.source.target_lang=tgt", "data.splits.test=test", "data.max_target_length=6", "max_samples=8",
        "generation.num_beams=1", "++log_examples=5", "logger=wandb", f"paths.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    evaluate(compose(overrides, out, config_name="evaluate"))
    (table,) = _tables(out, "test")
    assert table["columns"] == ["index", "source", "reference", "prediction"] and len(table["data"]) == 5
    predictions = [json.loads(x) for x in (out / "predictions" / "test.jsonl").read_text().splitlines()]
    assert [row[3] for row in table["data"]] == [p["prediction"] for p in predictions[:5]]
    assert [row[2] for row in table["data"]] == [p["references"][0] for p in predictions[:5]]


def test_evaluate_logs_the_continuation_examples_table(
    small_pretrained_gpt, wikitext_dir, tmp_path, fresh_wandb
):
    out = tmp_path / "eval"
    overrides = [
        f"ckpt_path={small_pretrained_gpt}", "evaluation=continuation", "data=wikitext2",
        f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}", "logger=wandb",
        "continuation.samples=12", "continuation.prompt_tokens=16", "continuation.new_tokens=8",
    ]  # fmt: skip
    evaluate(compose(overrides, out, config_name="evaluate"))
    (table,) = _tables(out, "test")
    assert len(table["data"]) == 10  # the training callback's default number of rows
    assert {row[0] for row in table["data"]} == set(range(10))
