"""What earlier pushes made of a layer: its compressed digest, remembered on disk.

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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["LayerDigestCache", "cache_dir"]

#: entries kept (the oldest go first)
_LIMIT = 5000


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
