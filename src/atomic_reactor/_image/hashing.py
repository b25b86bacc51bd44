"""Checksums of streams and files: several digests of one stream, hashed in parallel.

* :class:`ParallelHasher` computes several digests of one stream, each in its own
  thread (hashlib releases the GIL); :func:`checksum_file` uses it for files.
* :func:`sha256_digest` / :func:`file_digest` give registry-style digests
  (``sha256:<hex>``).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atomic_reactor._image.tarstream import CHUNK_SIZE

__all__ = ["Checksums", "ParallelHasher", "checksum_file", "file_digest", "sha256_digest"]



@dataclass(frozen=True)
class Checksums:
    size: int
    sha256: str
    md5: str


class ParallelHasher:
    """Digests of one stream in several algorithms, each hashed in its own thread.

    Use as a context manager (or call :meth:`close`) so the threads end even when
    the producer fails.
    """

    _STOP = object()

    def __init__(self, algorithms: Sequence[str] = ("sha256", "md5"), *,
                 threaded: bool = True, queue_size: int = 16) -> None:
        self.algorithms = tuple(algorithms)
        self.size = 0
        self._hashes = {name: hashlib.new(name) for name in self.algorithms}
        self._threaded = threaded
        self._queues: list[queue.Queue[object]] = []
        self._threads: list[threading.Thread] = []
        self._digests: dict[str, str] | None = None
        if self._threaded:
            for name, digest in self._hashes.items():
                chunks: queue.Queue[object] = queue.Queue(maxsize=queue_size)
                thread = threading.Thread(target=self._work, args=(digest, chunks),
                                          name=f"hash-{name}", daemon=True)
                thread.start()
                self._queues.append(chunks)
                self._threads.append(thread)

    @classmethod
    def _work(cls, digest: Any, chunks: queue.Queue[object]) -> None:
        while True:
            chunk = chunks.get()
            if chunk is cls._STOP:
                return
            digest.update(chunk)

    def update(self, data: bytes) -> None:
        """Feed ``data`` (must not change afterwards: pass ``bytes``)."""
        if not data:
            return
        self.size += len(data)
        if self._threaded:
            for chunks in self._queues:
                chunks.put(data)
        else:
            for digest in self._hashes.values():
                digest.update(data)

    def close(self) -> None:
        for chunks in self._queues:
            chunks.put(self._STOP)
        for thread in self._threads:
            thread.join()
        self._queues = []
        self._threads = []

    def hexdigests(self) -> dict[str, str]:
        """Stop feeding and return ``{algorithm: hex digest}``."""
        if self._digests is None:
            self.close()
            self._digests = {name: digest.hexdigest() for name, digest in self._hashes.items()}
        return dict(self._digests)

    def checksums(self) -> Checksums:
        digests = self.hexdigests()
        return Checksums(size=self.size, sha256=digests["sha256"], md5=digests["md5"])

    def __enter__(self) -> ParallelHasher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def checksum_file(path: str) -> Checksums:
    """Size, sha256 and md5 of the file at ``path`` (read once, hashed in parallel)."""
    with ParallelHasher() as hasher, open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
        return hasher.checksums()



def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (a blob's digest as registries name it)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: str) -> tuple[str, int]:
    """``(sha256:<hex>, size)`` of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size
