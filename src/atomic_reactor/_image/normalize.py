"""Reproducible images: new layers and the config rewritten to depend only on the source.

Two builds of one commit differ in file times (``COPY`` keeps the checkout's
times, ``RUN`` stamps the time it ran), in the config's ``created`` and history
times, and in what the engine records about its build containers. Given
``SOURCE_DATE_EPOCH`` (the commit's time), this module rewrites:

* every layer above the base image's: members in a fixed order (by path, parents
  first), every time clamped to the epoch (later times become the epoch, earlier
  ones stay), no pax ``atime``/``ctime``/fractional ``mtime``, user and group
  *names* empty (numeric ids kept as built), hard links always pointing to the
  first name of their file in that order; contents, modes, ids and extended
  attributes are kept as they are;
* the config: ``created`` is the epoch, history times are clamped to it, the new
  layers' diff ids replace the old ones, and the engine's build-container
  fields (``container``, ``container_config``, the intermediate ``Image``, the
  ``Hostname`` buildah sets to its build container's id) are dropped.

Layers are written uncompressed; whoever compresses them for a push must do so
deterministically (see :mod:`atomic_reactor._image.compression`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import queue
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atomic_reactor._image.compression import uncompressed_layer
from atomic_reactor._image.hashing import ParallelHasher
from atomic_reactor._image.layout import DockerArchiveWriter, ImageArchive
from atomic_reactor._image.tarstream import (
    CHUNK_SIZE,
    END_OF_ARCHIVE,
    ArchiveError,
    FanOut,
    StreamConsumer,
    copy_range,
    header_bytes,
    normalize_member_name,
    normalized_info,
    padding,
    safe_extract,
)

logger = logging.getLogger(__name__)

__all__ = [
    "NormalizedImage",
    "NormalizedLayer",
    "format_epoch",
    "normalize_config",
    "normalize_image",
    "normalize_layer_file",
    "plan_layer",
    "write_layer",
]

#: config fields the Docker legacy builder fills with per-build values (ids of the
#: build container and of intermediate images); not part of the OCI image config
_ENGINE_FIELDS = ("container", "container_config")


def format_epoch(epoch: int) -> str:
    """``epoch`` as an RFC 3339 UTC time (``1970-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds allowed), None if not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:  # Python takes at most 6 fraction digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}" if digits else head + rest
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """One member of the normalised layer: its header and where its data is."""

    header: bytes
    offset: int
    size: int

    @property
    def total(self) -> int:
        return len(self.header) + self.size + len(padding(self.size))


def _sort_key(name: str) -> tuple[bytes, ...]:
    return tuple(part.encode("utf-8", "surrogateescape") for part in name.split("/"))


def _clean_info(info: tarfile.TarInfo, name: str, epoch: int) -> tarfile.TarInfo:
    clean = normalized_info(info, mtime=epoch, clamp=True)
    clean.name = name
    return clean


def plan_layer(path: str, epoch: int) -> list[_Member]:
    """The members of the normalised form of the (uncompressed) layer tar at ``path``."""
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
    except tarfile.TarError as exc:
        raise ArchiveError(f"layer {os.path.basename(path)} is not a tar archive: {exc}") \
            from None
    latest: dict[str, tarfile.TarInfo] = {}
    for member in members:  # a later entry of one name replaces an earlier one
        name = normalize_member_name(member.name)
        if name:
            latest[name] = member
    # hard links: each group of names of one file gets its data on the first name
    # in the new order; the others link to that name
    def root_of(name: str) -> str:
        seen: set[str] = set()
        while name in latest and latest[name].islnk() and name not in seen:
            seen.add(name)
            name = normalize_member_name(latest[name].linkname, what="link target")
        return name

    groups: dict[str, list[str]] = {}
    for name, member in latest.items():
        if member.islnk():
            target = root_of(name)
            if target not in latest or not latest[target].isreg():
                raise ArchiveError(f"layer {os.path.basename(path)}: {name!r} is a hard link "
                                   f"to {member.linkname!r}, which is not a file in the layer")
            groups.setdefault(target, [target]).append(name)
    leader: dict[str, str] = {}
    for names in groups.values():
        first = min(names, key=_sort_key)
        for name in names:
            leader[name] = first
    plan: list[_Member] = []
    for name in sorted(latest, key=_sort_key):
        member = latest[name]
        if name in leader:
            source = latest[root_of(name)] if member.islnk() else member
            info = _clean_info(source, name, epoch)
            if leader[name] == name:
                plan.append(_Member(header_bytes(info), source.offset_data, source.size))
            else:
                info.type = tarfile.LNKTYPE
                info.linkname = leader[name]
                info.size = 0
                plan.append(_Member(header_bytes(info), 0, 0))
            continue
        info = _clean_info(member, name, epoch)
        if member.isreg():
            plan.append(_Member(header_bytes(info), member.offset_data, member.size))
        else:
            info.size = 0
            plan.append(_Member(header_bytes(info), 0, 0))
    return plan


def layer_size(plan: Sequence[_Member]) -> int:
    """Bytes of the layer tar :func:`write_layer` writes for ``plan``."""
    return sum(member.total for member in plan) + len(END_OF_ARCHIVE)


def write_layer(plan: Sequence[_Member], path: str, write: Callable[[bytes], object]) -> None:
    """Write the normalised layer: headers from ``plan``, data read from ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for member in plan:
            write(member.header)
            copy_range(fd, member.offset, member.size, write)
            if member.size:
                write(padding(member.size))
        write(END_OF_ARCHIVE)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class NormalizedLayer:
    diff_id: str
    size: int


def normalize_layer_file(source: str, target: str, epoch: int) -> NormalizedLayer:
    """Write the normalised form of the layer tar ``source`` to ``target``."""
    plan = plan_layer(source, epoch)
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        def both(chunk: bytes) -> None:
            digest.update(chunk)
            out.write(chunk)

        write_layer(plan, source, both)
    return NormalizedLayer(diff_id=f"sha256:{digest.hexdigest()}", size=layer_size(plan))


# -- the config ------------------------------------------------------------------------------


def normalize_config(config: dict[str, Any], epoch: int,
                     diff_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """``config`` made independent of when and in which container it was built."""
    new = copy.deepcopy(config)
    stamp = format_epoch(epoch)
    new["created"] = stamp
    history = new.get("history")
    if isinstance(history, list):
        for entry in history:
            if not isinstance(entry, dict) or "created" not in entry:
                continue
            when = _parse_time(str(entry["created"]))
            if when is None or when > epoch:
                entry["created"] = stamp
    for name in _ENGINE_FIELDS:
        new.pop(name, None)
    inner = new.get("config")
    if isinstance(inner, dict):
        inner.pop("Image", None)  # the id of the intermediate image of the last step
        inner.pop("Hostname", None)  # buildah: the id of its build container
    if diff_ids is not None:
        rootfs = dict(new.get("rootfs") or {"type": "layers"})
        rootfs["diff_ids"] = list(diff_ids)
        new["rootfs"] = rootfs
    return new


def config_bytes(config: dict[str, Any]) -> bytes:
    """The one serialisation of a config this module writes (sorted keys, compact)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


# -- whole images ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalizedImage:
    """What :func:`normalize_image` did.

    ``image_id`` is the normalised image (loaded under ``names``), ``original_image_id``
    the image as built; ``rewritten_layers`` how many layers above the base were rewritten.
    """

    image_id: str
    original_image_id: str
    source_date_epoch: int
    rewritten_layers: int
    diff_ids: tuple[str, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        return self.image_id != self.original_image_id


@dataclass(frozen=True)
class _Written:
    name: str
    diff_id: str
    rewritten: bool


class _LayerWriter:
    """Writes layers into the archive stream as they arrive, in a thread of its own.

    A layer whose digest is one of the base image's is copied as it is (same digest,
    same bytes); every other layer is normalised on the way.
    """

    def __init__(self, writer: DockerArchiveWriter, write: Callable[[bytes], object],
                 base: frozenset[str], epoch: int, plain_dir: str) -> None:
        self.writer = writer
        self.write = write
        self.base = base
        self.epoch = epoch
        self.plain_dir = plain_dir
        self.done: dict[str, _Written] = {}
        self.error: BaseException | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="normalize-layers", daemon=True)
        self._thread.start()

    def submit(self, path: str) -> None:
        self._queue.put(path)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (path := self._queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                self.add(path)
            except BaseException as exc:
                self.error = exc

    def add(self, path: str) -> _Written:
        if path in self.done:
            return self.done[path]
        name = f"layer{len(self.done):04d}/layer.tar"
        source = uncompressed_layer(path, self.plain_dir)
        sha = hashlib.sha256()
        with open(source, "rb", buffering=0) as handle:
            while chunk := handle.read(CHUNK_SIZE):
                sha.update(chunk)
        digest = f"sha256:{sha.hexdigest()}"
        if digest in self.base:
            self.writer.add_layer_file(name, source)
            written = _Written(name, digest, rewritten=False)
        else:
            plan = plan_layer(source, self.epoch)
            size = layer_size(plan)
            self.writer.begin_layer(name, size)
            hasher = ParallelHasher(("sha256",), threaded=False)
            layer = FanOut([hasher.update, self.write])
            write_layer(plan, source, layer.write)
            layer.flush()
            if layer.position != size:
                raise ArchiveError(f"normalised layer {name} has {layer.position} bytes, "
                                   f"{size} were announced")
            self.writer.end_layer()
            written = _Written(name, "sha256:" + hasher.hexdigests()["sha256"], rewritten=True)
        self.done[path] = written
        return written


def normalize_image(save: Callable[[str], Iterable[bytes]],
                    load: Callable[[Iterator[bytes]], object], image: str,
                    names: Sequence[str], *, base_diff_ids: Sequence[str], epoch: int,
                    scratch_dir: str) -> NormalizedImage:
    """Normalise ``image``'s layers above its base's and its config; load the result.

    ``save(image)`` gives the image as a ``docker save`` tar stream and ``load(chunks)``
    loads one (:meth:`DockerTasker.save_image_stream`/``load_image``); the new image is
    loaded under ``names``. Layers that are one of ``base_diff_ids`` are kept as they
    are. The three overlap: each layer is normalised and sent to the engine as soon as
    the save stream has delivered it.
    """
    started = time.monotonic()
    unpacked = os.path.join(scratch_dir, "saved")
    plain_dir = os.path.join(scratch_dir, "plain")
    os.makedirs(plain_dir, exist_ok=True)
    loader: StreamConsumer[object] = StreamConsumer(load, name="normalize-load")
    try:
        stream = FanOut([loader.send])
        writer = DockerArchiveWriter(stream.write)
        layers = _LayerWriter(writer, stream.write, frozenset(base_diff_ids), epoch, plain_dir)

        def on_file(name: str, path: str) -> None:
            if name.endswith("/layer.tar"):  # a layer of the legacy layout: start on it
                layers.submit(os.path.realpath(path))

        try:
            safe_extract(save(image), unpacked, on_file=on_file)
        finally:
            layers.finish()
        saved = time.monotonic()
        archive = ImageArchive.open(unpacked)
        written = [layers.add(path) for path in archive.layer_files]
        writer.layers = [item.name for item in written]  # the image's order, bottom first
        diff_ids = [item.diff_id for item in written]
        config = normalize_config(archive.config, epoch, diff_ids)
        new_id = writer.finish(config_bytes(config), names)
        stream.flush()
        loader.finish()
    except BaseException:
        loader.abort()
        raise
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        shutil.rmtree(plain_dir, ignore_errors=True)
    original_id = "sha256:" + hashlib.sha256(archive.config_bytes).hexdigest()
    rewritten = len({item.name for item in written if item.rewritten})
    seconds = time.monotonic() - started
    logger.debug("normalising %s: saved, unpacked and layers streamed in %.2f s, loaded in "
                 "%.2f s", image, saved - started, time.monotonic() - saved)
    logger.info("normalised %s: %d new layers rewritten, image %s (%.2f s)", image,
                rewritten, new_id[:19], seconds)
    return NormalizedImage(image_id=new_id, original_image_id=original_id,
                           source_date_epoch=epoch, rewritten_layers=rewritten,
                           diff_ids=tuple(diff_ids), seconds=round(seconds, 3))
