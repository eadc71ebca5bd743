"""Crash-safe writes: everything pluralrm writes goes to a temporary file that is renamed into place.

``os.replace`` is atomic on POSIX and Windows when source and target share a directory, so a reader (or
a run killed half-way) sees either the old file or the complete new one, never a torn write.

Temporary files and directories are created with the modes a plain ``open(path, "w")`` / ``mkdir`` would
give (0666 / 0777 less the umask: 0644 / 0755 under the usual umask 022), not ``tempfile``'s private 0600 /
0700: the renamed file *is* the output, and model weights, heads and exports must stay readable by the other
users, containers and Ray workers that the umask lets read them. Some writers replace the file they are given
with one of their own at 0600 (``safetensors`` does, and so every ``save_pretrained``), so the mode is set
again before the rename, and :func:`apply_umask_modes` does the same for a directory written by others.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_beside(target.parent, f".{target.name}.", ".tmp", directory=False)
    wanted = stat.S_IMODE(tmp.stat().st_mode)  # what the kernel gave a new file under this umask
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if stat.S_IMODE(tmp.stat().st_mode) != wanted:
            os.chmod(tmp, wanted)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def temp_dir_beside(target: str | Path) -> Path:
    """A new empty directory beside ``target`` (to be renamed onto it), with ``mkdir``'s umask mode."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _new_beside(target.parent, f".{target.name}.", "", directory=True)


def apply_umask_modes(directory: str | Path) -> None:
    """Give every file and directory under ``directory`` the mode a new one gets under the umask.

    For directories written by other libraries before they are renamed into place (``save_pretrained``
    writes its weights at 0600 through ``safetensors``).
    """
    directory = Path(directory)
    probe = _new_beside(directory, ".mode-probe.", "", directory=True)
    dir_mode = stat.S_IMODE(probe.stat().st_mode)
    probe.rmdir()
    file_mode = dir_mode & 0o666
    os.chmod(directory, dir_mode)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(Path(root) / name, dir_mode)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                os.chmod(path, file_mode)


def _new_beside(parent: Path, prefix: str, suffix: str, *, directory: bool) -> Path:
    """Create a fresh, uniquely named file or directory in ``parent``; the kernel applies the umask to the
    modes asked for (0666 / 0777), exactly as for any file the user creates."""
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: could not create a temporary name starting {prefix!r}")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write one JSON object per line, atomically; returns the number of records written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def cut_torn_line(path: str | Path) -> bytes:
    """The complete lines of an append-only file being resumed.

    A last line without its newline is a write cut by a kill: it is removed from the file (with a warning),
    so that the resumed run appends after whole records only.
    """
    path = Path(path)
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        logger.warning(
            "%s: dropping a torn last line (%d bytes) left by an interrupted run", path, len(data) - end
        )
        with open(path, "r+b") as handle:
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())
    return data[:end]
