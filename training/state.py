"""Training checkpoints: one file per save, written atomically; resume from the newest that loads."""
import re
from pathlib import Path
from typing import Optional

import torch

from sedd_core.files import atomic_write

NAME = re.compile(r"^step_(\d{8})\.pt$")


def save_state(ckpt_dir: Path, step: int, state: dict, keep: int = 2) -> Path:
    """Write `step_XXXXXXXX.pt` through a temporary file and a rename; keep the newest `keep`."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / f"step_{step:08d}.pt"
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    for old in sorted(p for p in ckpt_dir.iterdir() if NAME.match(p.name))[:-keep]:
        old.unlink()
    return path


def load_latest(ckpt_dir: Path) -> Optional[dict]:
    """The newest checkpoint that loads (a damaged newest one is skipped with a warning), or None."""
    if not ckpt_dir.is_dir():
        return None
    for path in sorted((p for p in ckpt_dir.iterdir() if NAME.match(p.name)), reverse=True):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError) as err:
            print(f"warning: skipping unreadable checkpoint {path}: {err}")
    return None
