"""Training checkpoints: one file per save, written atomically; resume from the newest complete one.

A checkpoint that does not load, or lacks part of the state, is skipped (one line says so) and the
next older one is used; a resuming run sets the skipped ones aside as `step_N.pt.damaged`, so that
they neither shadow the checkpoints it writes next nor get them pruned.
"""
import re
from pathlib import Path
from typing import Callable, List, Optional

import torch

from sedd_core.files import atomic_write

NAME = re.compile(r"^step_(\d{8})\.pt$")
REQUIRED = {"model": dict, "optimizer": dict, "scheduler": dict, "ema": dict, "step": int, "position": int,
            "tokens": int}


def checkpoints(ckpt_dir: Path) -> List[Path]:
    """The checkpoint files in `ckpt_dir`, oldest first."""
    return sorted(p for p in ckpt_dir.iterdir() if NAME.match(p.name)) if ckpt_dir.is_dir() else []


def save_state(ckpt_dir: Path, step: int, state: dict, keep: int = 2) -> Path:
    """Write `step_XXXXXXXX.pt` through a temporary file and a rename; keep the newest `keep`."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / f"step_{step:08d}.pt"
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    for old in checkpoints(ckpt_dir)[:-keep]:
        old.unlink()
    return path


def read_state(path: Path) -> dict:
    """A checkpoint's state; ValueError saying what is wrong when it does not load or is incomplete."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged bytes make the unpickler raise almost anything
        raise ValueError(f"it does not load ({type(err).__name__})") from err
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a training state")
    wrong = [k for k, typ in REQUIRED.items() if not isinstance(state.get(k), typ)]
    if wrong or not isinstance(state["ema"].get("shadow"), dict):
        raise ValueError(f"it lacks {wrong or ['ema.shadow']}")
    return state


def load_latest(ckpt_dir: Path, log: Callable[[str], None] = print, set_aside: bool = False) -> Optional[dict]:
    """The newest complete checkpoint, or None. Each one skipped is reported in one line through
    `log`, and with `set_aside` renamed to `step_N.pt.damaged`."""
    for path in reversed(checkpoints(ckpt_dir)):
        try:
            return read_state(path)
        except ValueError as err:
            aside = path.with_name(path.name + ".damaged")
            log(f"warning: skipping checkpoint {path}: {err}" + (f"; set aside as {aside.name}" if set_aside else ""))
            if set_aside:
                path.replace(aside)
    return None
