"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The temporary file sits beside its target as `.NAME.PID.tmp`; a process killed mid-write leaves one
behind, and `remove_stale` deletes those whose process is gone. `restored_on_failure` does the same for a
folder rewritten file by file (a model folder and its card): a failure puts it back as it was.
"""
import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Union

TEMP = re.compile(r"^\..+\.(\d+)\.tmp$")
FULL = 64 * 2**20  # a failed write with less free space than this is put down to a full disk


def atomic_write(path: Union[str, Path], write: Callable[[str], None], mode: int = 0o644) -> Path:
    """Call `write(tmp)` to fill a temporary file beside `path`, give it `mode`, rename it over `path`.
    On any failure the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch.save words a full disk as a RuntimeError of its own
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else None
        if getattr(err, "errno", None) != errno.ENOSPC and (free is None or free > FULL):
            raise
        raise OSError(f"the disk holding {path.parent} is full ({free or 0:,} bytes free) while writing "
                      f"{path.name}: free some space, then run again") from err
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def restored_on_failure(folder: Union[str, Path]):
    """Run a block that rewrites `folder`; if it raises (Ctrl-C included), the folder is put back as it
    was, or removed if it did not exist. A copy `.NAME.PID.before` beside it holds the old files meanwhile
    (a process killed outright leaves it there)."""
    folder = Path(folder)
    backup = folder.with_name(f".{folder.name}.{os.getpid()}.before")
    shutil.rmtree(backup, ignore_errors=True)
    if folder.exists():
        shutil.copytree(folder, backup)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if backup.exists():
            backup.rename(folder)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def remove_stale(folder: Union[str, Path]) -> int:
    """Delete the temporary files in `folder` left by processes that no longer run; returns how many."""
    removed = 0
    for p in Path(folder).iterdir() if Path(folder).is_dir() else ():
        m = TEMP.match(p.name)
        if m and p.is_file() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
