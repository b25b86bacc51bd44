"""Tar streams: safe streaming extraction, hand-written members, fan-out.

* :func:`safe_extract` unpacks a tar stream into a directory and never writes
  outside it: absolute names, ``..``, links pointing out, writing through a
  symbolic link, replacing a directory, device files and FIFOs are refused with
  :class:`ArchiveError`. It reads the archive as a stream (a file object or an
  iterator of byte chunks, e.g. ``docker save`` output), never holding a member
  in memory.
* :func:`header_bytes`, :func:`padding`, :func:`file_member`, :func:`dir_member`
  and :data:`END_OF_ARCHIVE` write tar streams by hand (so a member's size can be
  announced before its data is made).
* :func:`normalized_info` and :class:`TarWriter` write deterministic tars: fixed
  order, times clamped, owners' names dropped, no variable pax records.
* :class:`FanOut` and :class:`StreamConsumer` tee one produced stream into a file,
  hashers and a consumer running in another thread (an engine loading an image).
"""

from __future__ import annotations

import copy
import io
import os
import queue
import shutil
import stat
import tarfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar, cast

from atomic_reactor.errors import ArchiveError

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "END_OF_ARCHIVE",
    "ArchiveError",
    "FanOut",
    "IteratorReader",
    "StreamConsumer",
    "TarWriter",
    "copy_file",
    "copy_range",
    "dir_member",
    "file_member",
    "header_bytes",
    "normalize_member_name",
    "normalized_info",
    "padding",
    "prefetch",
    "safe_extract",
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


def prefetch(chunks: Iterable[bytes], depth: int = 16) -> Generator[bytes, None, None]:
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


#: how compressed streams start (they are read the general way)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


class _ForwardReader:
    """An uncompressed tar stream of chunks as a file that only goes forwards.

    tarfile's random-access mode reads it (``seek`` to a later offset skips; an
    earlier one is refused): headers are parsed by tarfile, and members' data is
    read straight from the chunks (:class:`_MemberData`), without the copies of
    tarfile's stream mode.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._position = 0

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._pending = memoryview(chunk).cast("B")
                return True
        return False

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes from here on, not consumed (they stay in one piece)."""
        while len(self._pending) < size:
            rest = bytes(self._pending)
            if not self._fill():
                self._pending = memoryview(rest)
                break
            self._pending = memoryview(rest + bytes(self._pending))
        return bytes(self._pending[:size])

    def pending(self) -> bytes:
        """What was received and not read yet (taken: the reader is done with it)."""
        data = self._pending.tobytes()
        self._pending = memoryview(b"")
        return data

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        parts: list[memoryview] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if not self._pending and not self._fill():
                break
            part = self._pending[:wanted]
            self._pending = self._pending[len(part):]
            parts.append(part)
            wanted -= len(part)
        data = parts[0].tobytes() if len(parts) == 1 else b"".join(parts)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a tar stream seeks to offsets only")
        if offset < self._position:
            raise ArchiveError("malformed archive: it needs reading backwards "
                               f"(from byte {self._position} to {offset})")
        skip = offset - self._position
        while skip > 0:
            if not self._pending and not self._fill():
                break
            step = min(skip, len(self._pending))
            self._pending = self._pending[step:]
            self._position += step
            skip -= step
        return self._position


class _MemberData(io.RawIOBase):
    """The data of one member of a :class:`_ForwardReader` (read once, forwards)."""

    def __init__(self, reader: _ForwardReader, member: tarfile.TarInfo) -> None:
        super().__init__()
        self._reader = reader
        self._start = member.offset_data
        self._size = member.size
        self._done = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = self._size - self._done
        count = left if size is None or size < 0 else min(size, left)
        if count <= 0:
            return b""
        self._reader.seek(self._start + self._done)
        data = self._reader.read(count)
        if len(data) != count:
            raise ArchiveError("malformed archive: unexpected end of data")
        self._done += count
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


def _open_tar(source: IO[bytes] | Iterable[bytes]
              ) -> tuple[tarfile.TarFile, Callable[[tarfile.TarInfo], IO[bytes] | None],
                         Callable[[], None]]:
    """The tar stream ``source`` opened for reading once (the caller closes it); how to
    read a member's data; what to call at the end."""
    if hasattr(source, "read"):
        tar = tarfile.open(fileobj=cast(IO[bytes], source), mode="r|*",  # noqa: SIM115
                           bufsize=CHUNK_SIZE)
        return tar, tar.extractfile, lambda: None
    chunks = prefetch(source)
    try:
        reader = _ForwardReader(chunks)
        if reader.peek(6).startswith(_COMPRESSED_MAGIC):
            first = reader.pending()

            def again() -> Iterator[bytes]:
                yield first
                yield from chunks

            tar = tarfile.open(fileobj=_as_file(again()), mode="r|*",  # noqa: SIM115
                               bufsize=CHUNK_SIZE)
            return tar, tar.extractfile, chunks.close
        tar = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
    except BaseException:
        chunks.close()
        raise

    def member_data(member: tarfile.TarInfo) -> IO[bytes]:
        return _MemberData(reader, member)  # type: ignore[return-value]

    return tar, member_data, chunks.close


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

    def extract(self, member: tarfile.TarInfo,
                member_data: Callable[[tarfile.TarInfo], IO[bytes] | None] | None, *,
                hollow: bool = False) -> None:
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
                data = None if hollow or member_data is None else member_data(member)
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
                 on_file: Callable[[str, str], object] | None = None,
                 consume: Callable[[str, tarfile.TarInfo, IO[bytes]], bool] | None = None
                 ) -> list[str]:
    """Unpack the tar stream ``source`` (compressed or not) into ``dest``.

    Returns the names unpacked (normalised). Refuses (:class:`ArchiveError`)
    anything that would write or point outside ``dest``: absolute names, ``..``,
    symbolic links leading out, entries under a symbolic link, hard links to
    anything but a file unpacked before, replacing a directory, device files and
    FIFOs. Ownership is not restored; set-id bits are dropped. On error what was
    unpacked so far stays in ``dest`` (the caller owns that directory).

    ``on_file(name, path)`` is called for each regular file once it is complete,
    so work on it can start while the rest of the stream arrives.

    ``consume(name, member, data)`` may take a regular file's data straight from
    the stream (e.g. into a compressor) instead: when it returns True, the file is
    left empty in ``dest`` (a placeholder, so links to it stay valid).
    """
    extractor = _Extractor(dest)
    try:
        tar, member_data, done = _open_tar(source)
    except tarfile.TarError as exc:
        raise ArchiveError(f"malformed archive: {exc}") from None
    try:
        with tar:
            for member in tar:
                hollow = False
                if consume is not None and member.isreg():
                    data = member_data(member)
                    if data is not None:
                        hollow = bool(consume(normalize_member_name(member.name), member, data))
                extractor.extract(member, None if hollow else member_data, hollow=hollow)
                if on_file is not None and member.isreg():
                    name = extractor.names[-1]
                    on_file(name, extractor.path(name))
    except tarfile.TarError as exc:
        raise ArchiveError(f"malformed archive: {exc}") from None
    finally:
        done()
    extractor.finish()
    return extractor.names


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




# -- writing members ------------------------------------------------------------------------------


def file_member(name: str, size: int, mode: int = 0o644) -> bytes:
    """The header of a regular file ``name`` of ``size`` bytes (root-owned, time 0)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    return header_bytes(info)


def dir_member(name: str) -> bytes:
    """The header of a directory ``name`` (mode 0755, root-owned, time 0)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    return header_bytes(info)


def copy_range(fd: int, offset: int, size: int, write: Callable[[bytes], object]) -> None:
    """Write ``size`` bytes of the open file ``fd`` from ``offset`` on."""
    end = offset + size
    while offset < end:
        chunk = os.pread(fd, min(CHUNK_SIZE, end - offset), offset)
        if not chunk:
            raise ArchiveError("a layer file is shorter than its tar headers say")
        write(chunk)
        offset += len(chunk)


def copy_file(path: str, write: Callable[[bytes], object]) -> None:
    """Write the whole file at ``path``, in chunks."""
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            write(chunk)


#: pax records that vary from one run to the next (never in a deterministic tar)
_VARIABLE_PAX_KEYS = frozenset({"atime", "ctime", "mtime"})


def normalized_info(info: tarfile.TarInfo, *, mtime: int | None = None,
                    clamp: bool = True, uid: int | None = None,
                    gid: int | None = None) -> tarfile.TarInfo:
    """A copy of ``info`` made deterministic.

    The time becomes ``mtime`` (with ``clamp``: only when ``info``'s is later, as
    ``SOURCE_DATE_EPOCH`` is meant), whole seconds; user and group names are
    dropped (the numeric ids say it; ``uid``/``gid`` replace them when given);
    access/change times and the sub-second time are left out of the pax records.
    Extended attributes and long names are kept.
    """
    clean = copy.copy(info)
    when = int(info.mtime)
    if mtime is not None and (not clamp or when > mtime):
        when = mtime
    clean.mtime = when
    clean.uname = ""
    clean.gname = ""
    if uid is not None:
        clean.uid = uid
    if gid is not None:
        clean.gid = gid
    clean.pax_headers = {key: value for key, value in info.pax_headers.items()
                         if key not in _VARIABLE_PAX_KEYS and key not in _DERIVED_PAX_KEYS}
    return clean


class TarWriter:
    """Writes a tar stream member by member to ``write`` (pax format, by hand).

    Members go out in the order given; :meth:`close` ends the archive.
    :attr:`position` counts the bytes written.
    """

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self.position = 0
        self.closed = False

    def _out(self, data: bytes) -> None:
        if data:
            self._write(data)
            self.position += len(data)

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | bytes | None = None) -> None:
        """Add ``info``; a regular file's ``info.size`` bytes come from ``data``."""
        self._out(header_bytes(info))
        if not info.isreg() or info.size == 0:
            return
        if data is None:
            raise ArchiveError(f"tar member {info.name!r}: no data for {info.size} bytes")
        if isinstance(data, bytes):
            if len(data) != info.size:
                raise ArchiveError(f"tar member {info.name!r}: {len(data)} bytes, "
                                   f"{info.size} announced")
            self._out(data)
        else:
            left = info.size
            while left:
                chunk = data.read(min(CHUNK_SIZE, left))
                if not chunk:
                    raise ArchiveError(f"tar member {info.name!r}: its data ended "
                                       f"{left} bytes early")
                self._out(chunk)
                left -= len(chunk)
        self._out(padding(info.size))

    def close(self) -> None:
        if not self.closed:
            self._out(END_OF_ARCHIVE)
            self.closed = True
