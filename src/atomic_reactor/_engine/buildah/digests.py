"""The registry manifest digests images were pulled and pushed as, kept across processes.

Docker keeps an image's ``RepoDigests`` (``repo@sha256:...`` for each repository it
was pulled from or pushed to); buildah's storage keeps only the manifest digest an
image had first, which need not be any registry's (the same image pushed to two
registries may get two digests; a local build pushed later has none). The buildah
engine records here, per storage root, what each pull and push learned from the
registry: ``(image id, repository) -> digest``. A record counts only for the image
id it names, so a name that moved to another image does not inherit its digest.

One JSON file per storage (``$XDG_STATE_HOME/atomic-reactor/buildah-digests/``, name
derived from the storage root), rewritten atomically under an ``flock``; at most
:data:`LIMIT` records, the oldest dropped first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["LIMIT", "DigestRecord", "default_record"]

#: records kept per storage
LIMIT = 4096


def _state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "atomic-reactor" / "buildah-digests"


def default_record(storage_root: str | None) -> DigestRecord:
    """The record for the storage at ``storage_root`` (None: buildah's default)."""
    root = os.path.realpath(storage_root or "/var/lib/containers/storage")
    name = hashlib.sha256(root.encode()).hexdigest()[:16]
    return DigestRecord(_state_dir() / f"{name}.json")


def _bare(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


class DigestRecord:
    """``(image id, repository) -> manifest digest``, in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: the records as last read, with the file's (inode, mtime, size) then: a file
        #: of thousands of records takes milliseconds to parse, and a build reads it at
        #: every look-up of an image (it is replaced, never written in place)
        self._read: tuple[tuple[int, int, int], list[list[str]]] | None = None

    def _load(self) -> list[list[str]]:
        """The records (a list not to be changed: it may be the one kept)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                stat = os.fstat(handle.fileno())
                key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                read = self._read
                if read is not None and read[0] == key:
                    return read[1]
                loaded = json.loads(handle.read())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.debug("digest record %s unreadable (%s); starting afresh", self.path, exc)
            return []
        entries = loaded.get("records") if isinstance(loaded, dict) else None
        found = [entry for entry in entries or ()
                 if isinstance(entry, list) and len(entry) == 3
                 and all(isinstance(part, str) for part in entry)]
        self._read = (key, found)
        return found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def remember(self, image_id: str, repository: str, digest: str) -> None:
        """Record that ``image_id`` is ``repository@digest`` in its registry now."""
        if not image_id or not repository or not digest.startswith("sha256:"):
            return
        entry = [_bare(image_id), repository, digest]
        try:
            with self._locked():
                entries = [old for old in self._load()
                           if not (old[0] == entry[0] and old[1] == repository)]
                entries.append(entry)
                self._write(entries[-LIMIT:])
        except OSError as exc:  # a cache: the build goes on without it
            logger.debug("cannot record the digest of %s: %s", repository, exc)

    def _write(self, entries: list[list[str]]) -> None:
        fd, temporary = tempfile.mkstemp(prefix=".digests-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # dumps, not dump: dump encodes piecewise in Python (3x slower here)
                handle.write(json.dumps({"records": entries}))
                handle.flush()
                stat = os.fstat(handle.fileno())
            os.replace(temporary, self.path)
            self._read = ((stat.st_ino, stat.st_mtime_ns, stat.st_size), entries)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def for_image(self, image_id: str) -> dict[str, str]:
        """``repository -> digest`` recorded for ``image_id``."""
        return self.by_image().get(_bare(image_id), {})

    def by_image(self) -> dict[str, dict[str, str]]:
        """Every record: bare image id -> ``repository -> digest``."""
        found: dict[str, dict[str, str]] = {}
        for image, repository, digest in self._load():
            found.setdefault(image, {})[repository] = digest
        return found
