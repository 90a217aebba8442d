"""benchmarks/gpu_check.py: says so and exits 0 without a GPU; its quick CPU variant fills every row."""
import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import gpu_check
from conftest import ROOT


@pytest.fixture
def one_thread():
    """One thread: the quick run is a few milliseconds of work, which a second thread on a busy machine
    slows down by orders of magnitude."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quick_run(capsys):
    code = gpu_check.main(["--device", "cpu", "--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, [line for line in lines if line.startswith("| ")], json.loads(lines[-1])


def test_without_a_gpu_it_says_so_and_exits_0():
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}  # no GPU even where the test machine has one
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no GPU is present" in proc.stdout and json.loads(proc.stdout.splitlines()[-1])["gpu"] is None


def test_the_quick_cpu_run_fills_every_row(capsys, one_thread):
    code, table, result = quick_run(capsys)
    assert code == 0 and result["ok"] and result["quick"]
    assert [r["check"] for r in result["rows"]] == list(gpu_check.ROWS)
    assert [line.split(" | ")[0] for line in table[1:]] == [f"| {name}" for name in gpu_check.ROWS]
    rows = {r["check"]: r for r in result["rows"]}
    assert rows[gpu_check.ROWS[0]]["value"] == 0  # CPU against CPU
    assert 0 < rows[gpu_check.ROWS[1]]["value"] < gpu_check.TOLERANCES[gpu_check.ROWS[1]]  # bf16 does round
    assert rows["first_hitting infill"]["ok"] and "8 network calls" in rows["first_hitting infill"]["details"]
    assert rows["training, bf16 autocast"]["value"] > 0
    assert rows["two-process NCCL training"]["details"].startswith("skipped")


def test_a_failed_parity_check_exits_1(capsys, one_thread, monkeypatch):
    monkeypatch.setitem(gpu_check.TOLERANCES, gpu_check.ROWS[1], 0.0)  # bf16 rounding never meets 0
    code, table, result = quick_run(capsys)
    assert code == 1 and not result["ok"]
    assert [r["check"] for r in result["rows"] if r["ok"] is False] == [gpu_check.ROWS[1]]
    assert any(line.startswith(f"| {gpu_check.ROWS[1]} |") and "**NO**" in line for line in table)
