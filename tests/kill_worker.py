"""Train, and die by SIGKILL at a chosen point: `python tests/kill_worker.py MODULE ATTR N [train args]`.

Runs `training.train.main(train args)` with MODULE.ATTR (ATTR may be dotted: `Trainer.checkpoint`)
wrapped so that the process kills itself right after the Nth call returns: `kill -9` at a known
place. The umask hides new files and folders from others: what a run exports must not depend on it.
"""
import importlib
import os
import signal
import sys

from training.train import main


def die_after(module: str, attr: str, n: int):
    *path, name = attr.split(".")
    owner = importlib.import_module(module)
    for part in path:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


if __name__ == "__main__":
    module, attr, n, *argv = sys.argv[1:]
    os.umask(0o077)
    die_after(module, attr, int(n))
    main(argv)
