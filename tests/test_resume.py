"""Kills and damage: a run killed by SIGKILL at any point and resumed has every metrics row exactly
once, an export equal to its last checkpoint's EMA and no temporary files; a damaged newest
checkpoint or a torn metrics line does not stop a resume; a fresh run does not reuse a run's folder."""
import os
import shutil
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from conftest import ROOT, metrics, tiny
from sedd_core import load_model
from training.state import read_state
from training.train import main

RUN = {"training.steps": 6, "training.checkpoint_every": 2, "training.eval_every": 3, "training.sample_every": 1000}
KILLS = {  # where the first run dies: right after the Nth call of MODULE.ATTR (tests/kill_worker.py)
    "before the first checkpoint": ("training.train", "Trainer.train_step", 2),
    "in the first export": ("sedd_core.checkpoint", "save_model", 1),
    "between a checkpoint and its export": ("training.train", "save_state", 1),
    "before a checkpoint's rename": ("torch", "save", 2),
    "right after the last checkpoint": ("training.train", "save_state", 3),
    "right after the last export": ("training.train", "export_folder", 3),  # as train.py imports it
}


def rows(out):
    """(step, kind) of every metrics row, sorted."""
    return sorted((r["step"], "valid" if "valid_ppl" in r else "loss") for r in metrics(out))


def values(out):
    return {(r["step"], k): r[k] for r in metrics(out) for k in ("loss", "valid_ppl") if k in r}


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    main(tiny(corpus, out, **RUN))
    return out


@pytest.mark.parametrize("where", KILLS)
def test_kill_9_and_resume_lose_and_repeat_nothing(corpus, tmp_path, uninterrupted, where):
    out, args = tmp_path / "run", tiny(corpus, tmp_path / "run", **RUN)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_worker.py"), *map(str, KILLS[where]), *args],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    with umask(0o077):  # whatever the umask, others can read the export
        main([*args, "--resume"])
    assert rows(out) == rows(uninterrupted)  # every row exactly once
    assert values(out) == pytest.approx(values(uninterrupted), rel=1e-5)  # and as an uninterrupted run has it
    ema = read_state(out / "checkpoints" / "step_00000006.pt")["ema"]["shadow"]
    exported = load_model(out / "model")[0].state_dict()
    assert all(torch.equal(exported[k], v) for k, v in ema.items())
    assert not list(out.rglob("*.tmp"))
    files = [*(out / "model").iterdir(), *(out / "checkpoints").iterdir()]
    assert stat.S_IMODE((out / "model").stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o644 for p in files}


SHORT = {"training.steps": 4, "training.checkpoint_every": 2, "training.eval_every": 2, "training.sample_every": 1000}
DAMAGE = {
    "random bytes": lambda path: path.write_bytes(os.urandom(4096)),
    "half written": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "a pickled list": lambda path: torch.save([1, 2, 3], path),
    "no ema": lambda path: torch.save({k: v for k, v in read_state(path).items() if k != "ema"}, path),
}


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    """A finished run of 4 steps with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("finished") / "run"
    main(tiny(corpus, out, **SHORT))
    return out


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_falls_back_past_a_damaged_checkpoint(corpus, tmp_path, capsys, finished, damage):
    out = shutil.copytree(finished, tmp_path / "run")
    newest = out / "checkpoints" / "step_00000004.pt"
    DAMAGE[damage](newest)
    capsys.readouterr()
    main([*tiny(corpus, out, **SHORT), "--resume"])
    printed = capsys.readouterr().out
    assert len([line for line in printed.splitlines() if "step_00000004.pt" in line]) == 1  # one line says so
    assert "resumed from step 2" in printed
    assert rows(out) == rows(finished)
    assert read_state(newest)["step"] == 4 and newest.with_name(newest.name + ".damaged").is_file()


def test_resume_drops_a_torn_metrics_line(corpus, tmp_path, capsys, finished):
    out = shutil.copytree(finished, tmp_path / "run")
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "lo')  # a kill in the middle of appending a row
    main([*tiny(corpus, out, **SHORT), "--resume"])  # nothing left to train
    assert rows(out) == rows(finished) and "dropping an unreadable line" in capsys.readouterr().out


def test_a_fresh_run_refuses_a_folder_that_holds_a_run(corpus, tmp_path, capsys, finished):
    out = shutil.copytree(finished, tmp_path / "run")
    with pytest.raises(SystemExit) as err:
        main(tiny(corpus, out, **SHORT))
    assert err.value.code == 2 and "add --resume" in capsys.readouterr().err
    assert rows(out) == rows(finished)


def test_a_kill_right_after_a_checkpoint_leaves_its_weights_exported(corpus, tmp_path):
    """No stale export even before the resume: model/ is written before each checkpoint."""
    out, args = tmp_path / "run", tiny(corpus, tmp_path / "run", **RUN)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_worker.py"), "training.train", "save_state", "2",
                             *args], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    ema = read_state(out / "checkpoints" / "step_00000004.pt")["ema"]["shadow"]
    exported = load_model(out / "model")[0].state_dict()
    assert all(torch.equal(exported[k], v) for k, v in ema.items())


def test_a_full_disk_ends_the_run_in_one_line_and_keeps_every_file_whole(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    calls = []

    def full(state, path):  # torch.save on a full disk: its own wording, no errno
        calls.append(path)
        if len(calls) > 1:
            raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                               "data/3: file write failed (unexpected pos 1536 vs 1472)")
        return real(state, path)
    real = torch.save
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr("sedd_core.files.shutil.disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 4096))
    with pytest.raises(SystemExit) as err:
        main(tiny(corpus, out, **RUN))
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.value.code == 2 and message.startswith("error: the disk holding") and "is full (4,096 bytes free)" in message
    assert "inline_container" not in message
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000002.pt"]  # whole, no temporary file
    assert read_state(out / "checkpoints" / "step_00000002.pt")["step"] == 2
