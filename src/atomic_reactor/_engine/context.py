"""Streaming a build context to the engine as a tar archive.

The Docker SDK writes the whole context into a temporary file and then sends it
in 16 KB pieces; for a large context that costs a full extra copy on disk and
many system calls. Here the archive is produced while it is sent, in 1 MiB
chunks, honouring ``.dockerignore`` exactly as the SDK does
(:mod:`~atomic_reactor._engine.dockerignore`). Entries are sorted,
so the same tree always gives the same archive.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator

from atomic_reactor._engine.dockerignore import included_paths, read_patterns
from atomic_reactor.errors import BuildFailed

__all__ = ["stream_context"]

CHUNK = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE


def _all_paths(root: str) -> Iterator[str]:
    """Every path under ``root``, relative to it (a symlink to a directory is not
    followed); a directory that cannot be listed fails the build."""
    def unreadable(exc: OSError) -> None:
        where = os.path.relpath(exc.filename or root, root)
        raise BuildFailed(f"cannot read {where} in the build context: {exc.strerror}")

    for directory, dirs, files in os.walk(root, onerror=unreadable):
        relative = os.path.relpath(directory, root)
        for name in dirs + files:
            yield name if relative == "." else os.path.join(relative, name)


def _included(root: str, dockerfile: str | None) -> list[str]:
    patterns = read_patterns(root)
    if not patterns:  # nothing is excluded: no matcher needed
        return sorted(_all_paths(root))
    return sorted(included_paths(root, patterns, dockerfile))


def stream_context(root: str, dockerfile: str | None = None) -> Iterator[bytes]:
    """Yield the tar archive of ``root`` (minus ``.dockerignore`` d paths) in chunks."""
    archive = tarfile.TarFile(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT)
    pending = bytearray()
    for relative in _included(root, dockerfile):
        full = os.path.join(root, relative)
        info = archive.gettarinfo(full, arcname=relative)
        if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
            continue  # sockets, FIFOs and devices do not belong in a build context
        pending += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if info.isreg():
            try:
                handle = open(full, "rb")  # noqa: SIM115
            except OSError as exc:
                raise BuildFailed(f"cannot read {relative} in the build context: "
                                  f"{exc.strerror}") from None
            with handle:  # opened above so that only open() errors are translated
                remaining = info.size
                while remaining > 0:
                    data = handle.read(min(CHUNK, remaining))
                    if not data:
                        raise BuildFailed(f"{relative} changed while it was sent")
                    remaining -= len(data)
                    if len(data) >= CHUNK // 4:  # big pieces go out as they are
                        if pending:
                            yield bytes(pending)
                            pending.clear()
                        yield data
                    else:
                        pending += data
            padding = (-info.size) % _BLOCK
            pending += b"\0" * padding
        if len(pending) >= CHUNK:
            yield bytes(pending)
            pending.clear()
    pending += b"\0" * (2 * _BLOCK)
    yield bytes(pending)

