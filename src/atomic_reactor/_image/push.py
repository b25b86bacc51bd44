"""Pushing an image ourselves: read it from the engine once, compress once, upload everywhere.

1. :func:`prepare_image` reads the image as a ``docker save`` stream (any engine's
   ``save_image``), unpacks it safely and compresses every layer once, on every
   core (``compression.compress_stream``: pigz, zstd -T0, or library fallbacks);
   a layer starts compressing as soon as the stream has delivered it. The result
   (:class:`PreparedImage`) is the config blob, the layer blobs and the manifest
   (Docker schema 2 or OCI), identical for every registry.
2. :func:`upload_prepared` sends those blobs to every target registry at the same
   time (one thread per registry) through :class:`~atomic_reactor._registry.upload.
   BlobUploader`: HEAD first, cross-repository mounts for the second and later
   repositories of a registry, chunked uploads with resume or restart, and the
   manifest PUT under every tag.

:class:`ImagePush` overlaps the two: while the engine exports the image (docker's
save sends its first byte only after writing the whole image out) each registry's
first upload session is opened (:class:`LiveUpload`, a standby); a layer no earlier
push has seen is uploaded to every registry while it is compressed; a layer seen
before is taken from the blob store (:class:`~atomic_reactor._image.blobcache.
BlobStore`) or compressed in a pool while the stream goes on, and it and the config
go up (HEAD first, mount where it can) as soon as they are ready, one lane per
registry. What is left once the stream has ended is the manifest, and whatever of
that early work failed, done again the regular way.

Layer media types follow the compression: gzip ``...diff.tar.gzip`` /
``...layer.v1.tar+gzip``, zstd ``application/vnd.oci.image.layer.v1.tar+zstd``
(OCI manifests only), none the plain tar types.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from atomic_reactor._buildlog import write_output
from atomic_reactor._engine.base import EngineEvent
from atomic_reactor._image.blobcache import BlobStore, LayerDigestCache
from atomic_reactor._image.compression import (
    Readable,
    compress_stream,
    detect_compression,
    method_of,
    planned_tool,
    uncompressed_layer,
)
from atomic_reactor._image.hashing import file_digest, sha256_digest
from atomic_reactor._image.layout import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    Descriptor,
    ImageArchive,
    ManifestFormat,
    image_manifest,
    layer_media_type,
)
from atomic_reactor._image.tarstream import safe_extract
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._registry.upload import DEFAULT_CHUNK_SIZE, Blob, BlobUploader, UploadStats
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import AtomicReactorError, PluginConfigError

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker, TransferProgress

#: where a push reports what it does, for progress displays (DockerTasker.report_progress)
ProgressSink = Callable[["TransferProgress"], None]

#: how an upload outcome reads in a progress event (the engines' wording)
_OUTCOME_STATUS = {"skipped": "Layer already exists", "uploaded": "Pushed"}

logger = logging.getLogger(__name__)

__all__ = [
    "COMPRESSIONS",
    "ImagePush",
    "LaterMapping",
    "LiveUpload",
    "PreparedImage",
    "PushSettings",
    "PushedTag",
    "RegistryPush",
    "RegistryTarget",
    "base_layer_blobs",
    "engine_archive",
    "first_repository",
    "prepare_image",
    "upload_prepared",
]

Compression = Literal["gzip", "zstd", "none"]
#: layers from this size on are compressed straight from the engine's stream
_STREAM_MIN = 1 << 20
#: compressed pieces a live upload may be behind the compressor (then it waits)
_LIVE_QUEUE = 32
#: bytes a live upload sends between two progress reports
_LIVE_PIECE = 1 << 20
COMPRESSIONS: tuple[str, ...] = ("gzip", "zstd", "none")


@dataclass(frozen=True)
class PushSettings:
    """How layers are compressed and described.

    ``manifest_format`` None: Docker schema 2, or OCI when the compression is zstd
    (Docker manifests have no zstd layers). ``level`` None: the method's default.
    """

    compression: str = "gzip"
    level: int | None = None
    manifest_format: ManifestFormat | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retry: RetryPolicy | None = None
    #: gzip: store the blocks that do not compress (no CPU spent on random data)
    adaptive: bool = True
    #: gzip: the system's zlib, whose output does not depend on the CPU, not zlib-ng
    #: (a reproducible build's layers get one digest on every machine with that zlib)
    portable: bool = False

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise PluginConfigError(f"unknown compression {self.compression!r} "
                                    f"({', '.join(COMPRESSIONS)})", argument="compression")
        if self.manifest_format not in (None, "docker", "oci"):
            raise PluginConfigError(f"unknown manifest format {self.manifest_format!r} "
                                    "(docker, oci)", argument="manifest_format")
        if self.compression == "zstd" and self.manifest_format == "docker":
            raise PluginConfigError("zstd layers need an OCI manifest (manifest_format "
                                    "'oci')", argument="manifest_format")
        if self.level is not None:
            method = method_of(self.compression)
            if method is None:
                raise PluginConfigError("a compression level needs a compression "
                                        "(gzip or zstd)", argument="compression_level")
            if not method.lowest <= self.level <= method.highest:
                raise PluginConfigError(f"{self.compression} levels are {method.lowest} to "
                                        f"{method.highest}, not {self.level}",
                                        argument="compression_level")

    @property
    def format(self) -> ManifestFormat:
        if self.manifest_format is not None:
            return self.manifest_format
        return "oci" if self.compression == "zstd" else "docker"


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to upload: config and layer blobs on disk, the manifest's bytes."""

    config: Blob
    layers: tuple[Blob, ...]
    manifest: bytes
    media_type: str
    diff_ids: tuple[str, ...]
    compression: str
    tools: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (*self.layers, self.config)

    def descriptor(self) -> Descriptor:
        """The manifest's descriptor (e.g. the ``subject`` of an attached artifact)."""
        return Descriptor(self.media_type, self.digest, len(self.manifest))


@dataclass(frozen=True)
class RegistryTarget:
    """One registry and the names (with this registry, repository and tag) to push there."""

    registry: str
    names: tuple[ImageName, ...]
    insecure: bool = False
    secret: str | None = None


@dataclass(frozen=True)
class PushedTag:
    """One name pushed: the manifest's digest and size, and the attempts it took."""

    registry: str
    image: str
    digest: str
    size: int
    attempts: int = 1


@dataclass(frozen=True)
class RegistryPush:
    """What was pushed to one registry (tags) and how (blob counts)."""

    registry: str
    tags: tuple[PushedTag, ...]
    uploaded: int
    mounted: int
    skipped: int
    bytes_sent: int
    retries: int
    seconds: float
    resumed: int = 0
    restarted: int = 0


def engine_archive(tasker: DockerTasker, image: str) -> Iterable[bytes]:
    """``image`` as a docker-archive stream from its engine, the fastest way it has
    (``ContainerEngine.read_image``: dockerd's or buildah's storage read directly where
    this process can, else ``docker save`` / ``buildah push docker-archive:``)."""
    return tasker.read_image_stream(image)


def _submit(pool: concurrent.futures.ThreadPoolExecutor, func: Callable[..., Any],
            *args: Any) -> concurrent.futures.Future[Any]:
    """``pool.submit`` in a copy of this context (the build's log follows the work)."""
    return pool.submit(contextvars.copy_context().run, func, *args)


# -- preparing -----------------------------------------------------------------------------


def _compress_into(source: Readable, out_path: str, settings: PushSettings,
                   media_type: str, sinks: Sequence[Callable[[bytes], object]] = ()
                   ) -> tuple[Blob, str]:
    """Compress the stream ``source`` into the blob file ``out_path`` (hashed on the way;
    ``sinks`` get the compressed bytes too)."""
    hasher = hashlib.sha256()
    size = 0
    with open(out_path, "wb") as out:
        def write(data: bytes) -> None:
            nonlocal size
            out.write(data)
            hasher.update(data)
            size += len(data)
            for sink in sinks:
                sink(data)

        tool = compress_stream(source, write, settings.compression, settings.level,
                               what="push", adaptive=settings.adaptive,
                               portable=settings.portable)
    return Blob(digest="sha256:" + hasher.hexdigest(), size=size, path=out_path,
                media_type=media_type), tool


def _compress_layer(path: str, index: int, blob_dir: str, plain_dir: str,
                    settings: PushSettings, media_type: str,
                    store: BlobStore | None = None,
                    reuse: Mapping[str, Descriptor] | None = None) -> tuple[Blob, str]:
    """The blob of layer file ``path`` compressed as ``settings`` say, and the tool used
    (``store``: taken from there when it has it, and kept there when it had not;
    ``reuse``: diff id -> the base image's blob of that layer, taken as it is)."""
    found = detect_compression(path)
    if settings.compression == "none":
        plain = uncompressed_layer(path, plain_dir) if found else path
        digest, size = file_digest(plain)
        return Blob(digest=digest, size=size, path=plain, media_type=media_type), "none"
    if found == settings.compression and settings.level is None:
        digest, size = file_digest(path)  # already as wanted (an OCI archive's blob)
        return Blob(digest=digest, size=size, path=path, media_type=media_type), "as-is"
    plain = uncompressed_layer(path, plain_dir) if found else path
    if store is not None and os.path.getsize(plain) < _STREAM_MIN:
        store = None  # small: compressed again in milliseconds, not worth a file
    # the layer's diff id, hashed once: for the base's own blob and the store's key
    diff_id = file_digest(plain)[0] if reuse or store is not None else ""
    known = reuse.get(diff_id) if reuse else None
    if known is not None:
        return Blob(digest=known.digest, size=known.size, media_type=media_type), "reused"
    how = planned_tool(settings.compression, adaptive=settings.adaptive,
                       portable=settings.portable) \
        if store is not None else None
    key = None
    if store is not None and how is not None:
        key = store.key(diff_id, settings.compression, settings.level, how)
        kept = store.get(key, os.path.join(blob_dir, f"layer-{index}.kept"))
        if kept is not None:
            stored, digest, size = kept
            logger.debug("layer %s: compressed before (%s)", diff_id, digest)
            return Blob(digest=digest, size=size, path=stored, media_type=media_type), how
    with open(plain, "rb") as source:
        blob, tool = _compress_into(source, os.path.join(blob_dir, f"layer-{index}"),
                                    settings, media_type)
    if store is not None and key is not None and tool == how and blob.path is not None:
        store.put(key, blob.path, blob.digest)
    return blob, tool


class LiveUpload:
    """Uploads one blob into one repository while the blob is being compressed.

    :meth:`write` takes the compressed bytes as they come; a thread of its own sends
    them, as they come, in one ``PATCH`` (chunked transfer encoding: the registry
    writes and hashes them as they arrive, and saves its hash state once, not per
    chunk). The pieces are shared, not copied, between the uploads of one layer.
    :meth:`close` ends the body and closes the session with the digest. Any failure
    just ends it (:attr:`error`): the regular upload, HEAD first, with chunks and
    resume, follows.

    ``progress(sent)`` is called (in the upload's thread) with the bytes sent so far.

    The thread opens the session (client, scheme, credentials, ``POST``) at once and
    starts the ``PATCH`` with the first bytes: an upload made before the layer is
    known (a *standby*, :meth:`ImagePush.run` makes one per registry before the
    engine's export sends its first byte) has its set-up done by then. One given up
    before any byte came (:meth:`abort`) cancels its session (``DELETE``).
    """

    _END = object()

    def __init__(self, target: RegistryTarget, repo: str, settings: PushSettings, *,
                 progress: Callable[[int], object] | None = None) -> None:
        self.registry = target.registry
        self.repo = repo
        self.error: BaseException | None = None
        self.sent = 0
        self._target = target
        self._retry = settings.retry or RetryPolicy()
        self._progress = progress
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_LIVE_QUEUE)
        self._digest = ""
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,), name=f"live-{target.registry}",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def assign(self, progress: Callable[[int], object] | None) -> None:
        """What a standby reports its bytes sent to (set before the first :meth:`write`)."""
        self._progress = progress

    @property
    def failed(self) -> bool:
        """The upload ended already (its session could not be opened)."""
        return self._stopped.is_set()

    def write(self, data: bytes) -> None:
        if data and not self._stopped.is_set():
            self._put(data)

    def close(self, digest: str) -> None:
        """No more bytes: the session is to be closed as ``digest`` (see :meth:`wait`)."""
        self._digest = digest
        self._put(self._END)

    def wait(self) -> bool:
        """Wait for the upload's end; True when the registry has the blob now."""
        self._thread.join()
        return self.error is None

    def abort(self, *, wait: bool = True) -> None:
        self._stopped.set()
        if wait:
            self._thread.join()

    def _next(self) -> object:
        """The next item :meth:`write` or :meth:`close` queued; :class:`_Aborted` when
        the upload was given up."""
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopped.is_set():
                    raise _Aborted from None
                continue
            if self._stopped.is_set():
                raise _Aborted
            return item

    def _pieces(self, first: object) -> Iterator[memoryview]:
        """The body of the ``PATCH``: ``first`` and what :meth:`write` got after it, in
        ``_LIVE_PIECE`` slices (progress between them), until :meth:`close`; an abort
        breaks the request."""
        item = first
        while True:
            if item is self._END:
                return
            assert isinstance(item, bytes)
            view = memoryview(item)
            for start in range(0, len(view), _LIVE_PIECE):
                piece = view[start:start + _LIVE_PIECE]
                yield piece
                self.sent += len(piece)
                if self._progress is not None:
                    self._progress(self.sent)
            item = self._next()

    def _run(self) -> None:
        client = RegistryClient(self._target.registry, insecure=self._target.insecure,
                                secret=self._target.secret, retry=self._retry)
        location: str | None = None
        uploader = BlobUploader(client, retry=self._retry)
        try:
            location = uploader.open_session(self.repo)
            try:
                first = self._next()
            except _Aborted:  # never used (a standby no layer needed)
                uploader.cancel_session(self.repo, location)
                self.error = _Aborted()
                return
            location = uploader.send_stream(self.repo, location, self._pieces(first))
            uploader.close_session(self.repo, location, self._digest)
        except BaseException as exc:  # the regular upload takes over
            self.error = exc
            logger.debug("live upload to %s/%s ended: %s", self.registry, self.repo, exc)
        finally:
            self._stopped.set()
            client.close()


class _Aborted(Exception):
    """The live upload was given up by its producer."""


_TOP_LEVEL_LAYER = re.compile(r"[0-9a-f]{64}\.tar")
#: how both engines' docker-archives name the image config (its digest)
_CONFIG_NAME = re.compile(r"[0-9a-f]{64}\.json")


def _stream_layer_name(name: str) -> str | None:
    """The layer an archive member holds (the name the layer digest cache keys it by):
    ``<id>`` of a legacy ``docker save``'s ``<id>/layer.tar``, ``<hex>`` of buildah's
    ``<hex>.tar``; None for any other member."""
    if name.endswith("/layer.tar"):
        return name.rpartition("/")[0]
    if _TOP_LEVEL_LAYER.fullmatch(name):
        return name.removesuffix(".tar")
    return None


def prepare_image(saved: Iterable[bytes], scratch: str, settings: PushSettings, *,
                  live: Callable[[str, int], Sequence[LiveUpload]] | None = None,
                  live_done: set[tuple[str, str, str]] | None = None,
                  learned: dict[str, str] | None = None,
                  early: Callable[[Blob], object] | None = None,
                  store: BlobStore | None = None,
                  reuse: Mapping[str, Descriptor] | None = None) -> PreparedImage:
    """Unpack the ``docker save`` (or OCI archive) stream ``saved`` into ``scratch`` and
    compress its layers; return what to upload.

    ``live(name, size)`` may give uploads for the layer the stream names ``name`` (its
    directory; ``size``: its uncompressed bytes), fed while it is compressed; the
    ``(registry, repo, digest)`` of those that completed are added to ``live_done``.
    ``learned`` gets ``name -> digest`` of the layers compressed from the stream.
    ``early(blob)`` is called (in any thread) with each layer blob no live upload
    took, as soon as it is compressed, and with the image config as soon as the
    stream brought it (a top-level ``<sha256>.json`` whose bytes have that digest),
    so its upload can start while the stream goes on. ``store``: layers no live
    upload took are compressed in the pool (the stream goes on meanwhile) or taken
    from there when an earlier push kept them (see :class:`BlobStore`). ``reuse``: diff
    id -> the blob a base image has for that layer in the target registries: such a
    layer is not compressed, its blob is mounted (see :meth:`BlobUploader.upload`).
    """
    started = time.monotonic()
    unpacked = os.path.join(scratch, "saved")
    blob_dir = os.path.join(scratch, "blobs")
    plain_dir = os.path.join(scratch, "plain")
    os.makedirs(blob_dir, exist_ok=True)
    os.makedirs(plain_dir, exist_ok=True)
    manifest_format = settings.format
    media_type = layer_media_type(manifest_format, settings.compression)
    pending: dict[str, concurrent.futures.Future[tuple[Blob, str]]] = {}
    config_type = DOCKER_CONFIG if manifest_format == "docker" else OCI_CONFIG
    streamed: dict[str, tuple[Blob, str]] = {}
    root = os.path.realpath(unpacked)
    closing: list[tuple[LiveUpload, str]] = []

    def consume(name: str, member: tarfile.TarInfo, data: IO[bytes]) -> bool:
        # a legacy docker save names layers <id>/layer.tar, buildah's docker-archive
        # <diff id>.tar (with <id>/layer.tar a link to it): compressed straight from
        # the stream (the engine's reading, the compressor, our writing and the live
        # uploads overlap)
        layer_name = _stream_layer_name(name)
        if layer_name is None or settings.compression == "none" \
                or member.size < _STREAM_MIN or f"sha256:{layer_name}" in (reuse or {}):
            return False
        uploads = list(live(layer_name, member.size)) if live is not None else []
        if not uploads and store is not None:
            return False  # unpacked: the pool takes it from the store or compresses it
        logger.debug("layer %s (%d bytes): compressed from the stream, %d live uploads",
                     layer_name, member.size, len(uploads))
        try:
            blob, tool = _compress_into(
                data, os.path.join(blob_dir, f"streamed-{len(streamed)}"), settings,
                media_type, [upload.write for upload in uploads])
        except BaseException:
            for upload in uploads:  # not waited for: one may be held by its registry
                upload.abort(wait=False)
            raise
        for upload in uploads:  # their last bytes go while the stream goes on
            upload.close(blob.digest)
            closing.append((upload, blob.digest))
        if not uploads and early is not None:
            early(blob)
        streamed[os.path.join(root, name)] = (blob, tool)
        if learned is not None:
            learned[layer_name] = blob.digest
        return True

    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                               thread_name_prefix="push-compress") as pool:
        def announce(future: concurrent.futures.Future[tuple[Blob, str]]) -> None:
            if early is not None and not future.cancelled() and future.exception() is None:
                early(future.result()[0])

        def on_file(name: str, path: str) -> None:
            real = os.path.realpath(path)
            if _stream_layer_name(name) is not None and real not in streamed:
                future = pending[real] = _submit(pool, _compress_layer, real, len(pending),
                                                 blob_dir, plain_dir, settings, media_type,
                                                 store, reuse)
                future.add_done_callback(announce)
            elif early is not None and _CONFIG_NAME.fullmatch(name):
                with open(path, "rb") as handle:
                    data = handle.read()
                config = Blob.of_bytes(data, config_type)
                if config.digest == f"sha256:{name[:-5]}":  # content-addressed: the config
                    early(config)

        try:
            safe_extract(saved, unpacked, on_file=on_file, consume=consume)
            archive = ImageArchive.open(unpacked)
            futures: list[concurrent.futures.Future[tuple[Blob, str]]] = []
            for index, path in enumerate(archive.layer_files):
                if path in streamed:
                    done_now: concurrent.futures.Future[tuple[Blob, str]] = \
                        concurrent.futures.Future()
                    done_now.set_result(streamed[path])
                    futures.append(done_now)
                    continue
                future = pending.get(path)
                if future is None:
                    future = _submit(pool, _compress_layer, path, 1000 + index, blob_dir,
                                     plain_dir, settings, media_type, store, reuse)
                    future.add_done_callback(announce)
                    pending[path] = future
                futures.append(future)
            done = [future.result() for future in futures]
        except BaseException:
            # a failure or a cancel: the live uploads are given up, not waited for (a
            # registry may hold one; their threads are daemons)
            for upload, _ in closing:
                upload.abort(wait=False)
            closing.clear()
            raise
        finally:
            for future in pending.values():
                future.cancel()
            for upload, digest in closing:
                if upload.wait() and live_done is not None:
                    live_done.add((upload.registry, upload.repo, digest))
                elif upload.error is not None:
                    logger.info("uploading %s to %s while compressing failed (%s); "
                                "uploading it again", digest, upload.registry, upload.error)
    layers = tuple(blob for blob, _ in done)
    config = Blob.of_bytes(archive.config_bytes, config_type)
    manifest = image_manifest(
        manifest_format, Descriptor(config_type, config.digest, config.size),
        [Descriptor(blob.media_type, blob.digest, blob.size) for blob in layers])
    media = json.loads(manifest)["mediaType"]
    logger.debug("image prepared in %.2f s: %d layers (%s)", time.monotonic() - started,
                 len(layers), ", ".join(sorted({tool for _, tool in done})))
    return PreparedImage(config=config, layers=layers, manifest=manifest, media_type=media,
                         diff_ids=tuple(archive.diff_ids), compression=settings.compression,
                         tools=tuple(tool for _, tool in done))


class LaterMapping(Mapping[str, Descriptor]):
    """A mapping worked out in a background thread, started now; the first look into
    it waits for it (an error there leaves it empty). For what a push needs only once
    the image's first layer arrives (:func:`base_layer_blobs`: registry round trips)."""

    def __init__(self, compute: Callable[[], Mapping[str, Descriptor]]) -> None:
        self._found: Mapping[str, Descriptor] = {}
        context = contextvars.copy_context()  # its log lines go to the build's log
        self._thread = threading.Thread(target=context.run, args=(self._run, compute),
                                        daemon=True, name="push-lookup")
        self._thread.start()

    def _run(self, compute: Callable[[], Mapping[str, Descriptor]]) -> None:
        try:
            self._found = compute()
        except Exception as exc:  # what it could not learn is left out
            logger.debug("push lookup failed: %s", exc)

    def _ready(self) -> Mapping[str, Descriptor]:
        self._thread.join()
        return self._found

    def __getitem__(self, key: str) -> Descriptor:
        return self._ready()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ready())

    def __len__(self) -> int:
        return len(self._ready())


def base_layer_blobs(client: RegistryClient, name: ImageName, architecture: str | None = None,
                     os_name: str | None = None) -> dict[str, Descriptor]:
    """diff id -> the gzip blob of that layer in base image ``name`` (a repository of
    ``client``'s registry; for a list, the manifest of ``architecture``/``os_name``):
    what a push of an image built on it to that registry can mount instead of
    compressing and uploading the layer again. Empty where the layers are not gzip or
    do not match the config's diff ids."""
    repo = name.get_repo()
    manifest, _ = client.get_manifest(repo, name.digest or name.tag or "latest")
    if manifest.get("mediaType") in (DOCKER_MANIFEST_LIST, OCI_INDEX) or \
            "manifests" in manifest:
        chosen = [entry for entry in manifest.get("manifests") or ()
                  if isinstance(entry, dict)
                  and (entry.get("platform") or {}).get("architecture") == architecture
                  and (entry.get("platform") or {}).get("os", "linux") == (os_name or "linux")]
        if len(chosen) != 1 or not chosen[0].get("digest"):
            return {}
        manifest, _ = client.get_manifest(repo, str(chosen[0]["digest"]))
    layers = [entry for entry in manifest.get("layers") or () if isinstance(entry, dict)]
    config_digest = (manifest.get("config") or {}).get("digest")
    if not layers or not config_digest:
        return {}
    config = json.loads(client.get_blob(repo, str(config_digest)))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        return {}
    found: dict[str, Descriptor] = {}
    for diff_id, layer in zip(diff_ids, layers, strict=True):
        if layer.get("mediaType") in (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP) and \
                layer.get("digest") and isinstance(layer.get("size"), int):
            found[str(diff_id)] = Descriptor(str(layer["mediaType"]), str(layer["digest"]),
                                             int(layer["size"]))
    return found


# -- uploading -------------------------------------------------------------------------------


def first_repository(target: RegistryTarget) -> str:
    """The repository of ``target`` that gets the blobs first (the others mount them)."""
    return target.names[0].get_repo()


def progress_label(target: RegistryTarget) -> str:
    """How progress reports name the push to ``target``: its first name."""
    return str(target.names[0]) if target.names else target.registry


@dataclass(frozen=True)
class EarlyUpload:
    """What an upload started while the image was prepared did: its outcome, the
    repository a mount came from, its counts."""

    outcome: str
    source: str | None
    stats: UploadStats


#: (registry, repository, digest) -> an upload started while the image was prepared
EarlyUploads = Mapping[tuple[str, str, str], "concurrent.futures.Future[EarlyUpload]"]


def _early_upload(client: RegistryClient, repo: str, blob: Blob, source: str | None,
                  settings: PushSettings) -> EarlyUpload:
    """Put ``blob`` into ``repo`` (HEAD first, a mount from ``source`` where it can)."""
    stats = UploadStats()
    uploader = BlobUploader(client, chunk_size=settings.chunk_size,
                            retry=settings.retry or RetryPolicy(), stats=stats)
    return EarlyUpload(uploader.upload(repo, blob, mount_from=source), source, stats)


class _Lane:
    """Runs jobs one after another in a daemon thread of its own (one registry's early
    uploads, or its part of a push to several): a push given up (a cancel) does not wait
    for a job a registry holds."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any],
                                            contextvars.Context, Callable[..., Any],
                                            tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, func: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, contextvars.copy_context(), func, args))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, context, func, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = context.run(func, *args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def close(self, *, wait: bool) -> None:
        """No more jobs; with ``wait``, the queued ones are done when this returns."""
        self._jobs.put(None)
        if wait:
            self._thread.join()


def _push_one(prepared: PreparedImage, target: RegistryTarget, settings: PushSettings,
              before_manifest: Callable[[ImageName], object] | None,
              live_done: set[tuple[str, str, str]] | frozenset[tuple[str, str, str]] = frozenset(),
              mount_sources: Mapping[tuple[str, str], str] | None = None,
              progress: ProgressSink | None = None,
              progress_ids: Mapping[str, str] | None = None,
              reported_start: bool = False,
              early: EarlyUploads | None = None,
              given_up: threading.Event | None = None) -> RegistryPush:
    from atomic_reactor.core import TransferProgress

    started = time.monotonic()
    stats = UploadStats()
    retry = settings.retry or RetryPolicy()
    client = RegistryClient(target.registry, insecure=target.insecure, secret=target.secret,
                            retry=retry)
    pushed: list[PushedTag] = []
    label = progress_label(target)
    sizes = {blob.digest: blob.size for blob in prepared.layers}
    ids = progress_ids or {}

    def layer_id(digest: str) -> str:
        return ids.get(digest) or digest[7:19]

    def report(state: Literal["start", "event", "done", "failed"],
               event: EngineEvent | None = None) -> None:
        if progress is not None:
            progress(TransferProgress("push", label, state, event))

    def on_chunk(digest: str, offset: int) -> None:
        if digest in sizes:
            report("event", EngineEvent(layer=layer_id(digest), status="Pushing",
                                        current=offset, total=sizes[digest]))

    if not reported_start:
        report("start")
    try:
        uploader = BlobUploader(client, chunk_size=settings.chunk_size, retry=retry,
                                stats=stats, on_progress=on_chunk if progress else None)
        repos: dict[str, list[ImageName]] = {}
        for name in target.names:
            repos.setdefault(name.get_repo(), []).append(name)
        first: str | None = None
        for repo, names in repos.items():
            for blob in prepared.blobs:
                _stop_if(given_up)
                source: str | None = None
                went_live = (target.registry, repo, blob.digest) in live_done
                started_early = _early_result(early, (target.registry, repo, blob.digest),
                                              given_up)
                if went_live:
                    stats.add(uploaded=1)
                    outcome = "uploaded"
                elif started_early is not None:
                    outcome, source = started_early.outcome, started_early.source
                    done = started_early.stats
                    stats.add(uploaded=done.uploaded, mounted=done.mounted,
                              skipped=done.skipped, bytes_sent=done.bytes_sent,
                              retries=done.retries, resumed=done.resumed,
                              restarted=done.restarted)
                else:
                    source = first or (mount_sources or {}).get((target.registry, blob.digest))
                    outcome = uploader.upload(repo, blob, mount_from=source)
                if blob.digest in sizes:
                    # sizes only for bytes that went over the wire, as the engines report
                    # it; a live upload's bar keeps the total it had (as docker's "Pushed")
                    sent = outcome == "uploaded" and not went_live
                    status = _OUTCOME_STATUS.get(outcome, f"Mounted from {source}")
                    report("event", EngineEvent(layer=layer_id(blob.digest), status=status,
                                                current=blob.size if sent else None,
                                                total=blob.size if sent else None))
                what = "config" if blob is prepared.config else "layer"
                label_repo = str(names[0])
                write_output(f"push {label_repo}: {what} {blob.digest[7:19]}: "
                             + {"skipped": "already there",
                                "mounted": f"mounted from {source}"}.get(
                                    outcome, f"uploaded ({blob.size} bytes)") + "\n")
            first = first or repo
            for name in names:
                _stop_if(given_up)  # a cancelled push publishes no tag
                if before_manifest is not None:
                    before_manifest(name)
                # the first name's attempts count the blobs' retries too
                before = stats.retries if pushed else 0
                reference = name.tag or name.digest or "latest"
                digest = uploader.put_manifest(repo, reference, prepared.manifest,
                                               prepared.media_type)
                pushed.append(PushedTag(registry=target.registry, image=str(name),
                                        digest=digest, size=len(prepared.manifest),
                                        attempts=1 + stats.retries - before))
                write_output(f"push {name}: {reference}: digest: {digest} "
                             f"size: {len(prepared.manifest)}\n")
    except BaseException:
        report("failed")
        raise
    finally:
        client.close()
    report("done")
    return RegistryPush(registry=target.registry, tags=tuple(pushed), uploaded=stats.uploaded,
                        mounted=stats.mounted, skipped=stats.skipped,
                        bytes_sent=stats.bytes_sent, retries=stats.retries,
                        seconds=round(time.monotonic() - started, 3), resumed=stats.resumed,
                        restarted=stats.restarted)


class _GivenUp(Exception):
    """The push failed or was cancelled elsewhere: this registry's part stops."""


def _stop_if(given_up: threading.Event | None) -> None:
    if given_up is not None and given_up.is_set():
        raise _GivenUp("the push was given up")


def _early_result(early: EarlyUploads | None, key: tuple[str, str, str],
                  given_up: threading.Event | None = None) -> EarlyUpload | None:
    """The early upload of ``key`` once it ended; None when there was none or it failed
    (the regular upload follows). :class:`_GivenUp` when ``given_up`` is set meanwhile
    (a registry may hold the early upload for long)."""
    future = (early or {}).get(key)
    if future is None:
        return None
    while True:
        # the job's own failure is read, not raised: what is raised while waiting (a
        # cancel's BuildCancelled in the main thread) goes on up
        try:
            error = future.exception(timeout=0.2)
        except concurrent.futures.TimeoutError:
            if given_up is not None and given_up.is_set():
                raise _GivenUp from None
            continue
        except concurrent.futures.CancelledError:
            return None
        break
    if error is None:
        return future.result()
    logger.info("uploading %s to %s while the image was prepared failed (%s); "
                "uploading it again", key[2], key[0], error)
    return None


def upload_prepared(prepared: PreparedImage, targets: Sequence[RegistryTarget],
                    settings: PushSettings, *,
                    before_manifest: Callable[[ImageName], object] | None = None,
                    live_done: set[tuple[str, str, str]] | None = None,
                    mount_sources: Mapping[tuple[str, str], str] | None = None,
                    progress: ProgressSink | None = None,
                    progress_ids: Mapping[str, str] | None = None,
                    reported_start: bool = False,
                    early: EarlyUploads | None = None) -> list[RegistryPush]:
    """Upload ``prepared`` to every target at once; results in the order of ``targets``.

    ``before_manifest(name)`` is called before each manifest PUT. When one
    registry fails, the others finish, then the first error is raised.
    ``progress_ids``: blob digest -> the layer id progress reports used for it
    already (a live upload's); ``reported_start``: each target's ``"start"`` was
    reported already; ``early``: the blob uploads started while the image was
    prepared (waited for, and done again where they failed).
    """
    if not targets:
        return []
    done = frozenset(live_done or ())
    if len(targets) == 1:
        return [_push_one(prepared, targets[0], settings, before_manifest, done,
                          mount_sources, progress, progress_ids, reported_start, early)]
    # one daemon lane per registry: after a cancel nothing waits for an upload a
    # registry holds; each lane stops at its next blob and publishes no manifest
    given_up = threading.Event()
    lanes = [_Lane(f"push-{target.registry}") for target in targets]
    finished = False
    try:
        futures = [lane.submit(_push_one, prepared, target, settings, before_manifest, done,
                               mount_sources, progress, progress_ids, reported_start, early,
                               given_up)
                   for lane, target in zip(lanes, targets, strict=True)]
        concurrent.futures.wait(futures)
        finished = True
    finally:
        if not finished:  # a cancel
            given_up.set()
        for lane in lanes:
            lane.close(wait=finished)
    results: list[RegistryPush] = []
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
        results.append(future.result())
    return results


@dataclass
class ImagePush:
    """Prepare once, upload to every target; cleans its scratch directory on close."""

    saved: Callable[[], Iterable[bytes]]
    settings: PushSettings = field(default_factory=PushSettings)
    workdir: str | None = None
    #: upload layers no earlier push has seen while they are compressed
    live: bool = True
    cache: LayerDigestCache | None = None
    #: compressed blobs of layers pushed before (default: ``blobs/`` beside the cache's
    #: file); None with ``live`` off too
    store: BlobStore | None = None
    #: progress of each registry's upload (e.g. DockerTasker.report_progress)
    progress: ProgressSink | None = None
    #: registry -> a repository there that may hold the layers (the pulled base image's):
    #: layers are mounted from it when the registry has them, else uploaded
    mount_repos: Mapping[str, str] = field(default_factory=dict)
    #: diff id -> the blob the base image has for that layer in every target registry
    #: (its repository there is ``mount_repos``'): such layers are mounted as they are,
    #: not compressed again (see :func:`prepare_image`)
    reuse: Mapping[str, Descriptor] = field(default_factory=dict)

    def _report(self, targets: Sequence[RegistryTarget],
                state: Literal["start", "failed"]) -> None:
        from atomic_reactor.core import TransferProgress

        if self.progress is not None:
            for target in targets:
                self.progress(TransferProgress("push", progress_label(target), state))

    def _live_progress(self, target: RegistryTarget, layer: str, size: int
                       ) -> Callable[[int], None] | None:
        """What a live upload to ``target`` calls with its bytes sent: a ``Pushing``
        event of ``layer``, against its uncompressed ``size`` (the compressed one is
        known only at the end; a total that changed would restart a bar's speed)."""
        from atomic_reactor.core import TransferProgress

        progress = self.progress
        if progress is None:
            return None
        label = progress_label(target)

        def sent(count: int) -> None:
            progress(TransferProgress("push", label, "event", EngineEvent(
                layer=layer, status="Pushing", current=min(count, size), total=size)))

        return sent

    def run(self, targets: Sequence[RegistryTarget], *,
            before_manifest: Callable[[ImageName], object] | None = None
            ) -> tuple[PreparedImage, list[RegistryPush]]:
        scratch = tempfile.mkdtemp(prefix="push-", dir=self.workdir or None)
        standby: dict[int, LiveUpload] = {}
        lanes: list[tuple[_Lane, RegistryClient]] = []
        started: dict[tuple[str, str, str], concurrent.futures.Future[EarlyUpload]] = {}
        finished = False
        try:
            live_done: set[tuple[str, str, str]] = set()
            learned: dict[str, str] = {}
            cache = self.cache if self.cache is not None else LayerDigestCache()
            settings = self.settings

            live_ids: dict[str, str] = {}
            # one upload per registry opens its session while the engine exports the
            # image (docker's save sends its first byte after writing the whole image
            # out): the first new layer's bytes go out as soon as they come
            if self.live and settings.compression != "none":
                standby = {index: LiveUpload(target, first_repository(target), settings)
                           for index, target in enumerate(targets) if target.names}

            def live(name: str, size: int) -> list[LiveUpload]:
                # a layer seen before (a base image's) goes the careful way: HEAD first
                key = cache.key(name, settings.compression, settings.level)
                if not self.live or cache.get(key) is not None:
                    return []
                layer = live_ids[name] = name.rpartition("/")[2][:12]
                uploads = []
                for index, target in enumerate(targets):
                    progress = self._live_progress(target, layer, size)
                    upload = standby.pop(index, None)
                    if upload is None or upload.failed:
                        upload = LiveUpload(target, first_repository(target), settings,
                                            progress=progress)
                    else:
                        upload.assign(progress)
                    uploads.append(upload)
                return uploads

            # blobs the stream brings that no live upload takes (layers pushed before,
            # the config) start going up at once, one registry lane each
            started_lock = threading.Lock()

            def early(blob: Blob) -> None:
                for index, target in enumerate(targets):
                    if not target.names:
                        continue
                    repo = first_repository(target)
                    key = (target.registry, repo, blob.digest)
                    source = None
                    if blob.media_type != config_type:
                        source = cache.location(target.registry, blob.digest) \
                            or self.mount_repos.get(target.registry)
                    with started_lock:
                        if key not in started:
                            started[key] = lanes[index][0].submit(
                                _early_upload, lanes[index][1], repo, blob, source, settings)

            config_type = DOCKER_CONFIG if settings.format == "docker" else OCI_CONFIG
            if self.live:
                retry = settings.retry or RetryPolicy()
                lanes.extend((_Lane(f"early-{target.registry}"),
                              RegistryClient(target.registry, insecure=target.insecure,
                                             secret=target.secret, retry=retry))
                             for target in targets)

            self._report(targets, "start")
            try:
                try:
                    store = self.store if self.store is not None or not self.live \
                        else BlobStore(cache.path.parent / "blobs")
                    prepared = prepare_image(self.saved(), scratch, settings, live=live,
                                             live_done=live_done, learned=learned,
                                             early=early if self.live else None,
                                             store=store, reuse=self.reuse)
                finally:
                    for upload in standby.values():  # no new layer came for them
                        upload.abort(wait=False)
            except BaseException:
                self._report(targets, "failed")
                raise
            mounts = {(target.registry, blob.digest): repo for target in targets
                      for blob in prepared.layers
                      if (repo := cache.location(target.registry, blob.digest)
                          or self.mount_repos.get(target.registry)) is not None}
            progress_ids = {learned[name]: layer for name, layer in live_ids.items()
                            if name in learned}
            results = upload_prepared(prepared, targets, settings,
                                      before_manifest=before_manifest, live_done=live_done,
                                      mount_sources=mounts, progress=self.progress,
                                      progress_ids=progress_ids,
                                      reported_start=self.progress is not None,
                                      early=started)
            remembered = {cache.key(name, settings.compression, settings.level): digest
                          for name, digest in learned.items()}
            remembered.update({cache.location_key(target.registry, blob.digest):
                               first_repository(target)
                               for target in targets for blob in prepared.layers})
            cache.remember(remembered)
            finished = True
            return prepared, results
        except OSError as exc:
            raise AtomicReactorError(f"push: {exc}") from None
        finally:
            # after a failure or a cancel nothing waits for a registry (their threads
            # are daemons); else the standbys' sessions were cancelled meanwhile and the
            # early uploads were waited for
            for upload in standby.values():
                upload.abort(wait=finished)
            for future in started.values():
                future.cancel()
            for lane, client in lanes:
                # the lane's last job: after a failure its thread closes the client once
                # the job a registry holds is over, and nothing here waits for that
                lane.submit(client.close)
                lane.close(wait=finished)
            shutil.rmtree(scratch, ignore_errors=True)
