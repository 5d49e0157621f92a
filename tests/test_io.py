"""Atomic writes: a crash never leaves a truncated file or a half-written folder under the final name."""

import json

import pytest

from lmlab.utils.io import atomic_write_dir, atomic_write_json


def test_atomic_dir_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "export"

    def write(version):
        def _write(tmp):
            (tmp / "weights").write_text(version)

        return _write

    atomic_write_dir(target, write("v1"))
    atomic_write_dir(target, write("v2"))
    assert (target / "weights").read_text() == "v2"

    def crash(tmp):
        (tmp / "weights").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write_dir(target, crash)
    assert (target / "weights").read_text() == "v2"  # the previous complete version survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_json(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1.5})
    assert json.loads(path.read_text()) == {"a": 1.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
