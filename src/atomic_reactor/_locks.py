"""Cross-process locks keyed by name (``flock`` on a file under the temp dir)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator

__all__ = ["name_lock"]


@contextlib.contextmanager
def name_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``name`` across threads and processes of this host.

    Used around "tag then push" so two builds of the same image name cannot push
    each other's image.
    """
    directory = os.path.join(tempfile.gettempdir(), "atomic-reactor-locks")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
