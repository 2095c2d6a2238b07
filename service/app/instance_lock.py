"""One `subtone run` per user: an exclusive fcntl lock on a file in the user's runtime folder.

The lock goes with the process (a crash leaves no stale lock to clean up).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from subtone.config.settings import APP_NAME


def lock_path() -> Path:
    """$XDG_RUNTIME_DIR/subtone/subtone.lock, or a private folder in /tmp where there is none."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    folder = Path(runtime) / APP_NAME if runtime and Path(runtime).is_dir() else None
    if folder is not None:
        try:
            folder.mkdir(exist_ok=True, mode=0o700)
        except OSError:
            folder = None
    if folder is None:  # containers, servers, sudo shells: no runtime dir
        folder = Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}"
        folder.mkdir(exist_ok=True, mode=0o700)
    return folder / "subtone.lock"


class InstanceLock:
    """`acquire()` is False when another process holds the lock; its pid is in `holder`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or lock_path()
        self._fd: int | None = None
        self.holder = ""

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
