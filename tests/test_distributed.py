"""Several processes on CPU through `accelerate launch` (gloo): DDP replicas agree; FSDP shards the
weights yet trains exactly as DDP does; an FSDP run resumes exactly, and its checkpoints resume
in one process too; the AR baseline trains sharded."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, metrics, tiny
from sedd_core import load_model
from training.train import main

STEPS = {"training.steps": 6, "training.accum": 2, "training.checkpoint_every": 3, "training.eval_every": 3,
         "training.sample_every": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(corpus, out, resume=False, **extra):
    """Train on two processes (tests/ddp_worker.py); returns what the worker reports."""
    result = out.with_suffix(".json")
    flags = ["--resume"] if resume else []
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           str(ROOT / "tests" / "ddp_worker.py"), str(result), *flags,
           *tiny(corpus, out, **STEPS | {"training.precision": "fp32"} | extra)]  # sharding, not rounding, on trial
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                        "PYTHONFAULTHANDLER": "1"}  # a crash prints every thread's stack
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(result.read_text())


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """The same six steps (two accumulation steps each) under DDP and under FSDP."""
    root = tmp_path_factory.mktemp("distributed")
    return root, {"ddp": launch(corpus, root / "ddp"), "fsdp": launch(corpus, root / "fsdp", **{"training.fsdp": True})}


def losses(out):
    return {r["step"]: r["loss"] for r in metrics(out) if "loss" in r}


def assert_same_weights(a, b, rtol=1e-5):
    for (k, va), vb in zip(load_model(a)[0].state_dict().items(), load_model(b)[0].state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=rtol, atol=1e-6, msg=k)


def test_ddp_replicas_agree(runs):
    ddp = runs[1]["ddp"]
    assert ddp["world"] == 2 and ddp["backend"] == "gloo" and not ddp["fsdp"]
    assert ddp["checksums"][0] == pytest.approx(ddp["checksums"][1], rel=1e-6)
    assert ddp["local"] == [pytest.approx(ddp["total"], rel=1e-3)] * 2  # every process holds all of the weights


def test_fsdp_shards_and_trains_as_ddp_does(runs):
    root, (ddp, fsdp) = runs[0], (runs[1]["ddp"], runs[1]["fsdp"])
    assert fsdp["fsdp"] and fsdp["world"] == 2
    assert all(n < 0.55 * fsdp["total"] for n in fsdp["local"]), fsdp  # each process keeps about half
    assert fsdp["checksums"][0] == fsdp["checksums"][1]  # the gathered weights are the same everywhere
    assert fsdp["checksums"][0] == pytest.approx(ddp["checksums"][0], rel=1e-5)
    a, b = losses(root / "ddp"), losses(root / "fsdp")
    assert sorted(b) == list(range(1, 7)) and all(b[s] == pytest.approx(a[s], rel=1e-5) for s in a)
    valid = [[r["valid_ppl"] for r in metrics(root / run) if "valid_ppl" in r] for run in ("ddp", "fsdp")]
    assert len(valid[1]) == 3 and valid[1] == pytest.approx(valid[0], rel=1e-5)
    assert_same_weights(root / "ddp" / "model", root / "fsdp" / "model")  # the exported EMA weights


def test_fsdp_resume_repeats_uninterrupted_run(runs, corpus):
    root = runs[0]
    out = root / "fsdp_resumed"
    launch(corpus, out, **{"training.fsdp": True, "training.steps": 3})
    launch(corpus, out, resume=True, **{"training.fsdp": True})
    a, b = losses(root / "fsdp"), losses(out)
    assert sorted(b) == list(range(1, 7)) and all(b[s] == pytest.approx(a[s], rel=1e-5) for s in a)
    assert_same_weights(root / "fsdp" / "model", out / "model")


def test_fsdp_checkpoint_resumes_in_one_process(runs, corpus, tmp_path, capsys):
    """Checkpoints hold whole tensors whatever the layout that wrote them."""
    src = runs[0] / "fsdp" / "checkpoints" / "step_00000006.pt"
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / src.name).write_bytes(src.read_bytes())
    main([*tiny(corpus, tmp_path / "run", **STEPS | {"training.steps": 7}), "--resume"])
    assert "resumed from step 6" in capsys.readouterr().out
    assert sorted(losses(tmp_path / "run")) == [7]


def test_accelerate_fsdp_flag_points_to_the_config_key(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch --use_fsdp` sets
    with pytest.raises(SystemExit) as err:
        main(tiny(corpus, tmp_path / "run"))
    assert err.value.code == 2 and "set training.fsdp=true" in capsys.readouterr().err


def test_ar_baseline_trains_sharded(corpus, tmp_path):
    ar = launch(corpus, tmp_path / "ar", **{"training.fsdp": True, "objective": "ar"})
    assert ar["fsdp"] and all(n < 0.55 * ar["total"] for n in ar["local"])
    assert ar["checksums"][0] == ar["checksums"][1]
    valid = [r["valid_ppl"] for r in metrics(tmp_path / "ar") if "valid_ppl" in r]
    assert len(valid) == 3 and valid[-1] < valid[0]
