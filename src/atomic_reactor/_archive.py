"""Tar archives, safely and in streams.

* :func:`safe_extract` unpacks a tar stream into a directory and never writes
  outside it: absolute names, ``..``, links pointing out, writing through a
  symbolic link, replacing a directory, device files and FIFOs are refused with
  :class:`ArchiveError`. It reads the archive as a stream (a file object or an
  iterator of byte chunks, e.g. ``docker save`` output), never holding a member
  in memory.
* :class:`ImageArchive` reads an unpacked ``docker save`` archive, both layouts:
  ``<id>/layer.tar`` (Docker before 25) and ``blobs/sha256/<hex>`` (OCI layout).
* :func:`header_bytes`, :func:`padding` and :data:`END_OF_ARCHIVE` write tar
  streams by hand (so a member's size can be announced before its data is made).
* :class:`ParallelHasher` computes several digests of one stream, each in its own
  thread (hashlib releases the GIL), :func:`checksum_file` uses it for files.
* :class:`FanOut` and :class:`StreamConsumer` tee one produced stream into a file,
  hashers and a consumer running in another thread (an engine loading an image).
"""

from __future__ import annotations

import bz2
import copy
import gzip
import hashlib
import io
import json
import lzma
import os
import queue
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

from atomic_reactor.errors import ArchiveError

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "END_OF_ARCHIVE",
    "ArchiveError",
    "Checksums",
    "FanOut",
    "ImageArchive",
    "IteratorReader",
    "ParallelHasher",
    "StreamConsumer",
    "checksum_file",
    "detect_compression",
    "header_bytes",
    "normalize_member_name",
    "padding",
    "prefetch",
    "safe_extract",
    "uncompressed_layer",
]

BLOCK_SIZE = tarfile.BLOCKSIZE
#: how much is read or written at once when copying streams
CHUNK_SIZE = 1 << 20
#: the two zero blocks that end a tar archive
END_OF_ARCHIVE = bytes(2 * BLOCK_SIZE)

T = TypeVar("T")




# -- names ----------------------------------------------------------------------------


def normalize_member_name(name: str, *, what: str = "entry") -> str:
    """``name`` as a clean relative path (``""`` for the archive's root).

    Leading ``./`` and trailing ``/`` are dropped; absolute names and ``..``
    components raise :class:`ArchiveError`.
    """
    if name.startswith("/"):
        raise ArchiveError(f"archive {what} {name!r} has an absolute path")
    if "\0" in name:
        raise ArchiveError(f"archive {what} {name!r} contains a NUL character")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive {what} {name!r} leaves the archive (..)")
    return "/".join(parts)


def padding(size: int) -> bytes:
    """The zero bytes that fill a member's data of ``size`` bytes up to a whole block."""
    return bytes(-size % BLOCK_SIZE)


#: pax keys tarfile derives from the TarInfo fields: stale copies must not override them
_DERIVED_PAX_KEYS = frozenset({"path", "linkpath", "size", "uid", "gid", "uname", "gname",
                               "mtime"})


def header_bytes(info: tarfile.TarInfo) -> bytes:
    """The header block(s) of ``info`` in pax format (long names, xattrs, big ids kept)."""
    clean = copy.copy(info)
    clean.pax_headers = {key: value for key, value in info.pax_headers.items()
                         if key not in _DERIVED_PAX_KEYS}
    return clean.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


# -- reading streams ----------------------------------------------------------------------


class IteratorReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            self._pending = memoryview(chunk).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def prefetch(chunks: Iterable[bytes], depth: int = 16) -> Iterator[bytes]:
    """Iterate ``chunks`` in a background thread, up to ``depth`` chunks ahead.

    Receiving (a socket) then overlaps with what the caller does with each chunk
    (writing to disk). Errors of the producer are raised by the iterator; closing
    the iterator early stops the producer after its current chunk.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        items.put(("chunk", chunk), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as exc:
            items.put(("error", exc))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.2)
            except queue.Empty:
                continue


def _as_file(source: IO[bytes] | Iterable[bytes]) -> IO[bytes]:
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return io.BufferedReader(IteratorReader(prefetch(source)), buffer_size=CHUNK_SIZE)


# -- safe extraction ------------------------------------------------------------------------


_FORBIDDEN_KINDS = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
}


class _Extractor:
    def __init__(self, dest: str) -> None:
        os.makedirs(dest, exist_ok=True)
        self.root = os.path.realpath(dest)
        self.checked_dirs: set[str] = {""}
        self.regular: set[str] = set()
        self.symlinks: list[str] = []
        self.dir_modes: dict[str, tuple[int, float]] = {}
        self.names: list[str] = []

    def path(self, name: str) -> str:
        return os.path.join(self.root, name) if name else self.root

    def ensure_parents(self, name: str, original: str) -> None:
        """Create or check the directories above ``name``; none may be a symlink."""
        parent = os.path.dirname(name)
        if parent in self.checked_dirs:
            return
        built = ""
        for part in parent.split("/"):
            built = f"{built}/{part}" if built else part
            if built in self.checked_dirs:
                continue
            full = self.path(built)
            try:
                status = os.lstat(full)
            except FileNotFoundError:
                os.mkdir(full, 0o755)
            else:
                if stat.S_ISLNK(status.st_mode):
                    raise ArchiveError(
                        f"archive entry {original!r} goes through the symbolic link {built!r}")
                if not stat.S_ISDIR(status.st_mode):
                    raise ArchiveError(
                        f"archive entry {original!r} needs {built!r} to be a directory")
            self.checked_dirs.add(built)

    def make_room(self, name: str, original: str, is_dir: bool) -> bool:
        """Prepare ``name`` for a new entry; return True when a directory is already there."""
        full = self.path(name)
        try:
            status = os.lstat(full)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(status.st_mode):
            if is_dir:
                return True
            raise ArchiveError(f"archive entry {original!r} would replace a directory")
        os.unlink(full)
        self.regular.discard(name)
        return False

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        original = member.name
        name = normalize_member_name(original)
        kind = _FORBIDDEN_KINDS.get(member.type)
        if kind is not None:
            raise ArchiveError(f"archive entry {original!r} is a {kind}, which is not allowed")
        if not name:
            return  # the root directory itself
        self.ensure_parents(name, original)
        full = self.path(name)
        if member.isdir():
            if not self.make_room(name, original, is_dir=True):
                os.mkdir(full, 0o700)
            self.checked_dirs.add(name)
            self.dir_modes[name] = ((member.mode & 0o777) | 0o700, member.mtime)
        elif member.issym():
            self.check_symlink_target(name, member.linkname, original)
            self.make_room(name, original, is_dir=False)
            os.symlink(member.linkname, full)
            self.symlinks.append(name)
        elif member.islnk():
            target = normalize_member_name(member.linkname, what="link target")
            if target not in self.regular:
                raise ArchiveError(f"archive entry {original!r} is a hard link to "
                                   f"{member.linkname!r}, which is not a file unpacked before")
            self.make_room(name, original, is_dir=False)
            os.link(self.path(target), full, follow_symlinks=False)
            self.regular.add(name)
        elif member.isreg():
            self.make_room(name, original, is_dir=False)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(full, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                data = tar.extractfile(member)
                if data is not None:
                    shutil.copyfileobj(data, out, CHUNK_SIZE)
                os.fchmod(out.fileno(), (member.mode & 0o777) | 0o600)
            os.utime(full, (member.mtime, member.mtime), follow_symlinks=False)
            self.regular.add(name)
        else:
            raise ArchiveError(f"archive entry {original!r} has an unsupported type "
                               f"{member.type!r}")
        self.names.append(name)

    def check_symlink_target(self, name: str, target: str, original: str) -> None:
        if not target or target.startswith("/"):
            raise ArchiveError(f"archive entry {original!r} is a symbolic link to "
                               f"{target!r}, outside the archive")
        resolved = os.path.normpath(os.path.join(os.path.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            raise ArchiveError(f"archive entry {original!r} is a symbolic link to "
                               f"{target!r}, outside the archive")

    def finish(self) -> None:
        # Links are checked again once everything exists: a link may resolve through
        # another link created after it.
        for name in self.symlinks:
            real = os.path.realpath(self.path(name))
            if real != self.root and not real.startswith(self.root + os.sep):
                os.unlink(self.path(name))
                raise ArchiveError(f"archive entry {name!r} is a symbolic link that resolves "
                                   "outside the archive")
        for name in sorted(self.dir_modes, key=lambda n: n.count("/"), reverse=True):
            mode, mtime = self.dir_modes[name]
            os.chmod(self.path(name), mode)
            os.utime(self.path(name), (mtime, mtime))


def safe_extract(source: IO[bytes] | Iterable[bytes], dest: str,
                 on_file: Callable[[str, str], object] | None = None) -> list[str]:
    """Unpack the tar stream ``source`` (compressed or not) into ``dest``.

    Returns the names unpacked (normalised). Refuses (:class:`ArchiveError`)
    anything that would write or point outside ``dest``: absolute names, ``..``,
    symbolic links leading out, entries under a symbolic link, hard links to
    anything but a file unpacked before, replacing a directory, device files and
    FIFOs. Ownership is not restored; set-id bits are dropped. On error what was
    unpacked so far stays in ``dest`` (the caller owns that directory).

    ``on_file(name, path)`` is called for each regular file once it is complete,
    so work on it can start while the rest of the stream arrives.
    """
    extractor = _Extractor(dest)
    fileobj = _as_file(source)
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*", bufsize=CHUNK_SIZE) as tar:
            for member in tar:
                extractor.extract(tar, member)
                if on_file is not None and member.isreg():
                    name = extractor.names[-1]
                    on_file(name, extractor.path(name))
    except tarfile.TarError as exc:
        raise ArchiveError(f"malformed archive: {exc}") from None
    extractor.finish()
    return extractor.names


# -- checksums --------------------------------------------------------------------------------


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


# -- producing streams --------------------------------------------------------------------------


class FanOut:
    """A write-only stream that hands ~``chunk_size`` pieces to several consumers.

    Small writes (tar headers) are gathered so consumers see few, large chunks;
    :meth:`flush` hands over what is pending. :attr:`position` counts every byte.
    """

    def __init__(self, consumers: Sequence[Callable[[bytes], object]],
                 chunk_size: int = CHUNK_SIZE) -> None:
        self.consumers = list(consumers)
        self.chunk_size = chunk_size
        self.position = 0
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        size = len(data)
        self.position += size
        if not self._buffer and size >= self.chunk_size:
            self._emit(bytes(data))
            return size
        self._buffer += data
        if len(self._buffer) >= self.chunk_size:
            self.flush()
        return size

    def flush(self) -> None:
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._emit(chunk)

    def _emit(self, chunk: bytes) -> None:
        for consumer in self.consumers:
            consumer(chunk)


class StreamConsumer(Generic[T]):
    """Runs ``consume(chunks)`` in a thread, fed by :meth:`send`.

    :meth:`finish` ends the stream and returns what ``consume`` returned (or
    raises what it raised); :meth:`abort` makes the iterator raise so the consumer
    gives up (an engine then sees a broken upload and keeps nothing).
    """

    _END = object()
    _ABORT = object()

    def __init__(self, consume: Callable[[Iterator[bytes]], T], *, name: str = "consumer",
                 queue_size: int = 16) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._result: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._consume = consume
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if item is self._ABORT:
                raise ArchiveError("stream aborted by its producer")
            yield item  # type: ignore[misc]

    def _run(self) -> None:
        try:
            self._result = self._consume(self._chunks())
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()
            # unblock a producer waiting on a full queue
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def _put(self, item: object) -> None:
        while not self._done.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def send(self, chunk: bytes) -> None:
        if self._done.is_set():
            self._raise()
            raise ArchiveError("the stream's consumer stopped early")
        self._put(chunk)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> T:
        self._put(self._END)
        self._thread.join()
        self._raise()
        return self._result  # type: ignore[return-value]

    def abort(self) -> None:
        self._put(self._ABORT)
        self._thread.join()


# -- compression ----------------------------------------------------------------------------------


_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


def detect_compression(path: str) -> str | None:
    """``"gzip"``, ``"zstd"``, ``"xz"``, ``"bzip2"`` or None (not compressed)."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _decompress(path: str, kind: str, out_path: str) -> None:
    modules: dict[str, Any] = {"gzip": gzip, "xz": lzma, "bzip2": bz2}
    if kind in modules:
        with modules[kind].open(path, "rb") as source, open(out_path, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK_SIZE)
        return
    zstd = shutil.which("zstd")
    if zstd is not None:
        result = subprocess.run([zstd, "-q", "-d", "-f", "-o", out_path, path],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ArchiveError(f"zstd could not decompress {path}: {result.stderr.strip()}")
        return
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        raise ArchiveError(f"{path} is zstd-compressed, but neither the zstd program nor "
                           "the zstandard module is available") from None
    with open(path, "rb") as source, open(out_path, "wb") as out:
        zstandard.ZstdDecompressor().copy_stream(source, out)


def uncompressed_layer(path: str, scratch_dir: str) -> str:
    """``path`` if it is a plain tar, else a decompressed copy made in ``scratch_dir``."""
    kind = detect_compression(path)
    if kind is None:
        return path
    digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:16]
    out_path = os.path.join(scratch_dir, f"{digest}.tar")
    if not os.path.exists(out_path):
        _decompress(path, kind, out_path + ".part")
        os.replace(out_path + ".part", out_path)
    return out_path


# -- docker save archives ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImageArchive:
    """An unpacked ``docker save`` archive holding one image.

    ``layers`` are the layer paths as ``manifest.json`` names them (bottom first),
    ``layer_files`` the files on disk (links resolved), ``diff_ids`` the config's.
    """

    root: str
    config_name: str
    config_bytes: bytes
    config: dict[str, Any]
    layers: tuple[str, ...]
    layer_files: tuple[str, ...]
    repo_tags: tuple[str, ...]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids") or [])

    @classmethod
    def open(cls, root: str) -> ImageArchive:
        real_root = os.path.realpath(root)

        def inside(name: str, what: str) -> str:
            clean = normalize_member_name(name, what=what)
            path = os.path.realpath(os.path.join(real_root, clean))
            if not path.startswith(real_root + os.sep) or not os.path.isfile(path):
                raise ArchiveError(f"image archive: {what} {name!r} is not a file in the archive")
            return path

        manifest_path = os.path.join(real_root, "manifest.json")
        try:
            with open(manifest_path, "rb") as handle:
                manifest = json.loads(handle.read())
        except FileNotFoundError:
            raise ArchiveError("image archive has no manifest.json") from None
        except ValueError as exc:
            raise ArchiveError(f"image archive: manifest.json is not JSON: {exc}") from None
        if not isinstance(manifest, list) or len(manifest) != 1 \
                or not isinstance(manifest[0], dict):
            raise ArchiveError("image archive: manifest.json must describe exactly one image")
        entry = manifest[0]
        config_name = entry.get("Config")
        layers = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layers, list) \
                or not all(isinstance(layer, str) for layer in layers):
            raise ArchiveError("image archive: manifest.json lacks Config or Layers")
        config_file = inside(config_name, "config")
        with open(config_file, "rb") as handle:
            config_bytes = handle.read()
        try:
            config = json.loads(config_bytes)
        except ValueError as exc:
            raise ArchiveError(f"image archive: the config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise ArchiveError("image archive: the config is not a JSON object")
        layer_files = tuple(inside(layer, "layer") for layer in layers)
        archive = cls(root=real_root, config_name=normalize_member_name(config_name),
                      config_bytes=config_bytes, config=config,
                      layers=tuple(normalize_member_name(layer) for layer in layers),
                      layer_files=layer_files,
                      repo_tags=tuple(str(tag) for tag in entry.get("RepoTags") or ()))
        if len(archive.diff_ids) != len(layer_files):
            raise ArchiveError(f"image archive: the config lists {len(archive.diff_ids)} "
                               f"layers, the manifest {len(layer_files)}")
        return archive
