"""What earlier pushes made of a layer: its compressed digest and blob, kept on disk.

A layer of a ``docker save`` stream is named by a content-derived id (the legacy
layer directory, or the diff id of the OCI layout) before its bytes arrive. The
push remembers, per compression and level, which compressed blob each such name
became. A name it has seen before belongs to a layer pushed before (a base
image's, usually): it goes the careful way (HEAD first). A name never seen is a
new layer: it is uploaded while it is being compressed.

The file is ``$XDG_CACHE_HOME/atomic-reactor/layer-digests.json`` (or
``~/.cache/...``; ``ATOMIC_REACTOR_CACHE_DIR`` overrides the directory). It is
only a hint: unreadable or missing, it is started again, and nothing depends on
it being right.

:class:`BlobStore` keeps the compressed blobs of layers pushed before (a base
image's, usually) in ``blobs/`` beside that file, keyed by the layer's
uncompressed digest (computed from the bytes the engine sent) and by how it was
compressed (method, level, adaptive or not, the tool): such a layer is not
compressed again by the next push. A stored blob's digest is in its file name and
computed again from its bytes when it is used (a damaged file is dropped and the
layer compressed as usual);
the oldest blobs go when the store is over its size (``ATOMIC_REACTOR_BLOB_STORE_MB``,
default 2048; 0 keeps none).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["BlobStore", "LayerDigestCache", "cache_dir"]

#: entries kept (the oldest go first)
_LIMIT = 5000
#: megabytes of blobs a BlobStore keeps by default
_STORE_MB = 2048


def cache_dir() -> Path:
    override = os.environ.get("ATOMIC_REACTOR_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "atomic-reactor"


class LayerDigestCache:
    """``key -> compressed digest`` for layers pushed before, and where they went
    (``at:<registry>:<digest> -> repository``, a source for mounts); best effort."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_dir() / "layer-digests.json"
        self._entries: dict[str, str] | None = None

    @staticmethod
    def key(name: str, compression: str, level: int | None) -> str:
        return f"{compression}:{level if level is not None else '-'}:{name}"

    def _load(self) -> dict[str, str]:
        if self._entries is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = {str(k): str(v) for k, v in data.items()} \
                    if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    @staticmethod
    def location_key(registry: str, digest: str) -> str:
        return f"at:{registry}:{digest}"

    def location(self, registry: str, digest: str) -> str | None:
        """A repository of ``registry`` that got blob ``digest`` from an earlier push."""
        return self._load().get(self.location_key(registry, digest))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def remember(self, entries: Mapping[str, str]) -> None:
        """Add ``entries`` (merged with what other processes wrote meanwhile)."""
        if not entries:
            return
        try:
            with self._locked():
                self._entries = None
                merged = {k: v for k, v in self._load().items() if k not in entries}
                merged.update(entries)
                if len(merged) > _LIMIT:
                    merged = dict(list(merged.items())[-_LIMIT:])
                temporary = self.path.with_suffix(f".tmp{os.getpid()}")
                temporary.write_text(json.dumps(merged), encoding="utf-8")
                os.replace(temporary, self.path)
                self._entries = merged
        except OSError as exc:
            logger.debug("could not update %s: %s", self.path, exc)


def _store_limit() -> int:
    """Bytes a :class:`BlobStore` keeps (``ATOMIC_REACTOR_BLOB_STORE_MB``)."""
    try:
        return max(0, int(os.environ.get("ATOMIC_REACTOR_BLOB_STORE_MB", _STORE_MB))) << 20
    except ValueError:
        return _STORE_MB << 20


class BlobStore:
    """Compressed layer blobs kept on disk, keyed by the uncompressed layer's digest and
    how it was compressed; best effort (any error: not stored, or not found)."""

    def __init__(self, directory: Path | None = None, *, limit: int | None = None) -> None:
        self.directory = directory if directory is not None else cache_dir() / "blobs"
        self.limit = _store_limit() if limit is None else limit

    @staticmethod
    def key(diff_id: str, compression: str, level: int | None, how: str) -> str:
        """The store's name for ``diff_id`` compressed so (``how``: the tool, adaptive)."""
        text = f"{compression}:{level if level is not None else '-'}:{how}:{diff_id}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _find(self, key: str) -> tuple[str, str] | None:
        """``(path, digest hex)`` of the file kept under ``key`` (``<key>-<digest hex>``)."""
        prefix = f"{key}-"
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.startswith(prefix):
                        return entry.path, entry.name[len(prefix):]
        except OSError:
            pass
        return None

    def get(self, key: str, into: str) -> tuple[str, str, int] | None:
        """``(path, digest, size)`` of the blob kept under ``key``, linked (or copied) to
        ``into`` first: the push owns that file, so another process trimming the store
        cannot take it away mid-upload. Its bytes are hashed again (a kept file whose
        bytes no longer have its digest is dropped); None when there is none."""
        if self.limit <= 0:
            return None
        found = self._find(key)
        if found is None:
            return None
        path, expected = found
        digest = hashlib.sha256()
        size = 0
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(into)
            try:
                os.link(path, into)
                copy = None
            except OSError:  # another file system: copied as it is hashed
                copy = open(into, "wb")  # noqa: SIM115 (closed below)
            try:
                with open(into if copy is None else path, "rb", buffering=0) as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                        size += len(chunk)
                        if copy is not None:
                            copy.write(chunk)
            finally:
                if copy is not None:
                    copy.close()
            if digest.hexdigest() != expected:
                logger.warning("dropping the damaged blob %s of the blob store", path)
                os.unlink(path)
                os.unlink(into)
                return None
            os.utime(path)  # recently used: the last to go
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(into)
            return None
        return into, f"sha256:{expected}", size

    def put(self, key: str, blob_path: str, digest: str) -> None:
        """Keep the blob file ``blob_path`` (of ``digest``) under ``key`` (a hard link
        where it can)."""
        if self.limit <= 0:
            return
        target = self.directory / f"{key}-{digest.removeprefix('sha256:')}"
        temporary = self.directory / f".{key}.tmp{os.getpid()}.{threading.get_ident()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            try:
                os.link(blob_path, temporary)
            except OSError:
                shutil.copyfile(blob_path, temporary)
            os.replace(temporary, target)
            self._trim()
        except OSError as exc:
            logger.debug("could not keep a blob in %s: %s", self.directory, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()

    def _trim(self) -> None:
        """Remove the least recently used blobs until the store is within its limit
        (entries another process removes meanwhile are skipped)."""
        entries = []
        with os.scandir(self.directory) as found:
            for entry in found:
                if entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    status = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                entries.append((status.st_mtime, status.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.limit:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            total -= size
