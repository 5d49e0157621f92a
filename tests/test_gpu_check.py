"""bench/gpu_check.py --smoke: the GPU check's plumbing on CPUs (train.py children: one process, DDP, FSDP)."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

# GPT-2 with tied embeddings at the smoke shape: vocabulary 50257 and 1024 positions, 2 layers x 64 wide
SMOKE_PARAMS = 50257 * 64 + 1024 * 64 + 2 * (12 * 64 * 64 + 13 * 64) + 2 * 64
NUMERIC = ("tokens_per_sec", "tokens_per_sec_per_device", "step_ms", "mfu", "logged_mfu", "peak_mem_gib",
           "compile_s", "warmup_s", "wall_s")  # fmt: skip


@pytest.mark.slow
def test_smoke_run_prints_and_writes_the_table(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--work-dir", str(tmp_path / "work"),
           "--results-dir", str(results)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"parameters: {SMOKE_PARAMS:,}" in proc.stdout
    assert "| config | devices | non-finite check | tokens/s |" in proc.stdout

    result = json.loads((results / "gpu_check_smoke.json").read_text())
    assert result["params"] == SMOKE_PARAMS and result["machine"]["cores"] >= 1
    rows = {(r["config"], r["nonfinite_check"]): r for r in result["rows"]}
    assert sorted(rows) == sorted((c, k) for c in ("single", "ddp", "fsdp") for k in ("on", "off"))
    for (config, _), row in rows.items():
        if config == "fsdp" and row["status"].startswith("skipped"):  # no conf/trainer/fsdp_cpu.yaml
            continue
        assert row["status"] == "ok", row
        assert row["devices"] == (1 if config == "single" else 2)
        for key in NUMERIC:
            assert isinstance(row[key], (int, float)) and row[key] > 0, (config, key, row[key])
        assert len(row["peak_mem_gib_per_device"]) == row["devices"]
        # the run's own perf/mfu over the same windows (FSDP: counted before the model is sharded)
        assert row["logged_mfu"] == pytest.approx(row["mfu"], rel=0.2), config
    assert "| single | 1 | on |" in (results / "gpu_check_smoke.md").read_text()
