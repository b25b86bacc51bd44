"""Layers kept as *tar-split* files: the exact tar put back together from its files.

Engines that unpack a layer keep, beside its files, what the tar had that the files
do not (vbatts/tar-split: gzipped JSON lines). An entry of type 2 carries raw tar
bytes, headers and padding, base64-encoded in ``payload``; one of type 1 names a
file (``name``, or ``name_raw`` in base64 for a name that is not UTF-8) and its
``size``, whose bytes are that file in the layer's directory. Put back together they
give the layer's uncompressed tar, byte for byte the one whose sha256 is its diff id.
containers/storage (buildah) and dockerd (its ``layerdb``) keep the same format.

* :func:`layer_tar`: the tar's bytes, streamed;
* :func:`tar_size`: its length, from the tar-split file alone (for a header written
  before the layer);
* :func:`verified`: a stream passed on, failing at the end unless it is the diff id;
* :func:`pieces`: a stream in pieces of about a megabyte (small files and the headers
  between them joined).

Errors are ``EngineError`` messages that begin with ``label`` (whose storage it is); a
file that cannot be opened (the tar-split itself: a layer removed meanwhile) is the
``OSError`` it raised, for the caller to word.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

from atomic_reactor.errors import EngineError

__all__ = ["layer_tar", "pieces", "tar_size", "verified"]

_CHUNK = 1 << 20


def _entries(tar_split: str, label: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The tar-split file's entries and their line numbers."""
    try:
        with gzip.open(tar_split, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                if not isinstance(entry, dict) or "type" not in entry:
                    raise EngineError(f"{label}: {tar_split}: line {number} is not a "
                                      "tar-split entry")
                yield number, entry
    except EOFError:
        raise EngineError(f"{label}: {tar_split} ends early") from None


def _payload(entry: dict[str, Any], tar_split: str, number: int, label: str) -> bytes:
    payload = entry.get("payload")
    if not payload:
        return b""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise EngineError(f"{label}: {tar_split}: line {number} has a payload that is "
                          "not base64") from None


def _unknown(kind: object, tar_split: str, number: int, label: str) -> EngineError:
    return EngineError(f"{label}: {tar_split}: line {number} has an unknown entry type "
                       f"{kind!r}")


def tar_size(tar_split: str, *, label: str = "storage") -> int:
    """The length of the tar that ``tar_split`` puts back together."""
    size = 0
    for number, entry in _entries(tar_split, label):
        kind = entry["type"]
        if kind == 2:
            size += len(_payload(entry, tar_split, number, label))
        elif kind == 1:
            size += max(0, int(entry.get("size") or 0))
        else:
            raise _unknown(kind, tar_split, number, label)
    return size


def _member_path(diff_dir: str, entry: dict[str, Any], label: str) -> str:
    raw = entry.get("name_raw")
    name: bytes = base64.b64decode(raw) if raw else str(entry.get("name") or "").encode()
    parts = [part for part in name.split(b"/") if part not in (b"", b".")]
    if not parts or b".." in parts:
        raise EngineError(f"{label}: tar-split names {name!r}, not a file of the layer")
    return os.path.join(os.fsencode(diff_dir), *parts).decode("utf-8", "surrogateescape")


def _inside(diff_dir: str, path: str, seen: dict[str, bool], label: str) -> None:
    """Refuse ``path`` when its directory, symbolic links resolved, is not in
    ``diff_dir``: a layer's own symlink (``a -> /etc``) must not make a later entry
    (``a/passwd``) read a file of the host (its bytes would reach a registry before the
    diff id check fails). The answer is kept per directory in ``seen``."""
    parent = os.path.dirname(path)
    inside = seen.get(parent)
    if inside is None:
        root = os.path.realpath(diff_dir)
        real = os.path.realpath(parent)
        inside = seen[parent] = real == root or real.startswith(root + os.sep)
    if not inside:
        raise EngineError(f"{label}: {path} leads out of the layer's directory")


def _file_bytes(path: str, size: int, label: str) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise EngineError(f"{label}: cannot read {path} of the layer "
                          f"({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        left = size
        while left:
            data = handle.read(min(left, _CHUNK))
            if not data:
                raise EngineError(f"{label}: {path} is shorter than the {size} bytes its "
                                  "layer's tar-split says")
            left -= len(data)
            yield data


def layer_tar(tar_split: str, diff_dir: str, *, label: str = "storage") -> Iterator[bytes]:
    """The layer's uncompressed tar, put back together from its tar-split file
    ``tar_split`` and the files of its directory ``diff_dir``."""
    seen: dict[str, bool] = {}
    for number, entry in _entries(tar_split, label):
        kind = entry["type"]
        if kind == 2:
            payload = _payload(entry, tar_split, number, label)
            if payload:
                yield payload
        elif kind == 1:
            size = int(entry.get("size") or 0)
            if size <= 0:
                continue
            path = _member_path(diff_dir, entry, label)
            _inside(diff_dir, path, seen, label)
            yield from _file_bytes(path, size, label)
        else:
            raise _unknown(kind, tar_split, number, label)


def verified(chunks: Iterator[bytes], size: int, diff_id: str, *, layer: str,
             label: str = "storage") -> Iterator[bytes]:
    """``chunks`` passed on; an ``EngineError`` at the end unless they are ``size``
    bytes whose sha256 is ``diff_id`` (nothing more is yielded past that size).
    ``layer`` names the layer in the message."""
    hasher = hashlib.sha256()
    count = 0
    for chunk in chunks:
        count += len(chunk)
        if count > size:
            break
        hasher.update(chunk)
        yield chunk
    digest = "sha256:" + hasher.hexdigest()
    if count != size or digest != diff_id:
        raise EngineError(f"{label}: layer {layer} put back together from its tar-split "
                          f"is not its diff id {diff_id} ({count} bytes, "
                          f"{digest if count == size else 'size differs'}, expected "
                          f"{size} bytes)")


def pieces(chunks: Iterator[bytes], size: int = _CHUNK) -> Iterator[bytes]:
    """``chunks`` in pieces of about ``size`` bytes: small ones (small files' bytes, the
    headers between them) joined, big ones passed on as they come."""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        if len(chunk) >= size:
            if pending:
                yield b"".join(pending)
                pending, held = [], 0
            yield chunk
            continue
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)
