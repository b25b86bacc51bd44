"""What the engines' storage readers share (``docker/storage.py``, ``buildah/storage.py``).

Each reads the images of its engine straight from the engine's files, as a
docker-archive stream (no archive written to disk first), where it can; where it
cannot it says so before the stream's first byte, with :class:`StorageUnsupported`,
and its engine asks the engine itself for the archive instead.
"""

from __future__ import annotations

__all__ = ["StorageUnsupported"]


class StorageUnsupported(Exception):
    """The storage is not one this reader can read (the engine makes the archive)."""
