"""Compression of layers and image archives, on every core.

* :func:`compress_stream` compresses a stream with gzip (``pigz``, else zlib
  blocks compressed in parallel), xz (``xz -T0``, else parallel lzma blocks) or
  zstd (``zstd -T0``, else the ``zstandard`` package with all threads). Output is
  deterministic for one input, method and level: gzip headers carry no file name
  and time 0. The zlib blocks are deflated by zlib-ng (the ``zlib-ng`` package:
  2.3-2.7 times zlib's speed at one level, output as small) unless ``portable`` asks
  for the system's zlib, whose output does not depend on the CPU (zlib-ng's
  optimised routines may deflate differently on another architecture).
* :func:`detect_compression`, :func:`decompress_file` and
  :func:`uncompressed_layer` read what others compressed.
"""

from __future__ import annotations

import bz2
import concurrent.futures
import contextlib
import gzip
import hashlib
import lzma
import os
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from atomic_reactor._image.tarstream import CHUNK_SIZE
from atomic_reactor.errors import ArchiveError, AtomicReactorError

__all__ = [
    "ALIASES",
    "METHODS",
    "Method",
    "Readable",
    "compress_stream",
    "decompress_file",
    "detect_compression",
    "method_of",
    "planned_tool",
    "uncompressed_layer",
]


@dataclass(frozen=True)
class Method:
    """A compression method: file extension and levels."""

    name: str
    extension: str
    lowest: int
    highest: int
    default: int


METHODS: dict[str, Method] = {
    "gzip": Method("gzip", "gz", 1, 9, 6),
    "xz": Method("xz", "xz", 0, 9, 6),
    "zstd": Method("zstd", "zst", 1, 19, 3),
}
#: 1.6 called xz "lzma"
ALIASES = {"lzma": "xz"}


def method_of(name: str) -> Method | None:
    """The method called ``name`` (aliases too), or None."""
    return METHODS.get(ALIASES.get(name, name))


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Write = Callable[[bytes], object]


def _which(program: str) -> str | None:
    """Where ``program`` is (tests replace this to force the Python fallbacks)."""
    return shutil.which(program)


def _zstandard() -> Any:
    """The ``zstandard`` module (ImportError when it is not installed)."""
    import zstandard  # type: ignore[import-not-found,unused-ignore]

    return zstandard


def _workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


# -- compressing ----------------------------------------------------------------------------


def _read_blocks(source: Readable, size: int) -> Iterator[bytes]:
    while True:
        block = source.read(size)
        if not block:
            return
        while len(block) < size:  # pipes return short reads
            more = source.read(size - len(block))
            if not more:
                break
            block += more
        yield block


def _blocks_in_parallel(source: Readable, write: Write, block_size: int,
                        compress: Callable[[bytes], bytes]) -> None:
    """Compress independent blocks on every core, written in order.

    Each block is a complete gzip member / xz stream; a file of concatenated
    members is a valid gzip / xz file (what ``pigz`` and ``xz -T`` do too, in
    their own way).
    """
    workers = _workers()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[concurrent.futures.Future[bytes]] = []
        for block in _read_blocks(source, block_size):
            pending.append(pool.submit(compress, block))
            if len(pending) >= workers * 2:
                write(pending.pop(0).result())
        for future in pending:
            write(future.result())


class _Deflate(Protocol):
    """What the gzip blocks use of a zlib-like module (zlib, zlib_ng.zlib_ng)."""

    DEFLATED: int

    def compressobj(self, level: int, method: int, wbits: int) -> Any: ...

    def compress(self, data: bytes, level: int, /) -> bytes: ...

    def crc32(self, data: bytes | memoryview, /) -> int: ...


def _zlib_ng() -> _Deflate | None:
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return None
    return cast(_Deflate, zlib_ng)


def _deflate(portable: bool) -> tuple[_Deflate, str]:
    """The zlib-like module the gzip blocks use, and the name of the tool it makes."""
    if not portable:
        found = _zlib_ng()
        if found is not None:
            return found, "python-zlib-ng"
    return cast(_Deflate, zlib), "python-zlib"


def _gzip_block(level: int, deflate: _Deflate) -> Callable[[bytes], bytes]:
    def compress(block: bytes) -> bytes:
        compressor = deflate.compressobj(level, deflate.DEFLATED, 31)  # 31: gzip wrapper
        return bytes(compressor.compress(block) + compressor.flush())

    return compress


#: bytes of each sample the adaptive gzip tries, and how many samples per block
_SAMPLE = 16 << 10
_SAMPLES = 4


#: gzip header: deflate, no name, time 0, no extra flags, OS "unknown"
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: the largest stored deflate block
_STORED_MAX = 0xFFFF


def stored_gzip_member(block: bytes, crc32: Callable[[memoryview], int] = zlib.crc32
                       ) -> bytes:
    """``block`` as one gzip member of stored (uncompressed) deflate blocks.

    What zlib's level 0 makes too, but written directly: one copy of the data and
    a CRC, no pass through zlib's window (a third of the CPU).
    """
    view = memoryview(block)
    parts: list[bytes | memoryview] = [_GZIP_HEADER]
    size = len(view)
    offset = 0
    while True:
        length = min(_STORED_MAX, size - offset)
        final = offset + length >= size
        parts.append(struct.pack("<BHH", 1 if final else 0, length, length ^ 0xFFFF))
        parts.append(view[offset:offset + length])
        offset += length
        if final:
            break
    parts.append(struct.pack("<II", crc32(view) & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(parts)


def _adaptive_gzip_block(level: int, deflate: _Deflate) -> Callable[[bytes], bytes]:
    """gzip a block at ``level``, or store it when samples of it do not compress.

    Deflating data that does not compress (random bytes, compressed files) costs
    as much CPU as deflating text and gains nothing; stored blocks cost almost
    nothing (:func:`stored_gzip_member`). The choice depends on the block's bytes
    only, so the output stays deterministic.
    """
    def compress(block: bytes) -> bytes:
        if len(block) >= _SAMPLE * _SAMPLES * 4:
            step = len(block) // _SAMPLES
            samples = [block[i * step:i * step + _SAMPLE] for i in range(_SAMPLES)]
            if all(len(deflate.compress(sample, 1)) >= len(sample) * 0.97
                   for sample in samples):
                return stored_gzip_member(block, deflate.crc32)
        compressor = deflate.compressobj(level, deflate.DEFLATED, 31)
        return bytes(compressor.compress(block) + compressor.flush())

    return compress


def _xz_block(level: int) -> Callable[[bytes], bytes]:
    def compress(block: bytes) -> bytes:
        return lzma.compress(block, format=lzma.FORMAT_XZ, preset=level)

    return compress


def _run_program(command: list[str], source: Readable, write: Write, what: str) -> None:
    """Pipe ``source`` through ``command`` into ``write``."""
    feeder_error: list[BaseException] = []
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
        if stdin is None or stdout is None or stderr is None:
            raise AtomicReactorError(f"{what}: could not talk to {command[0]}")

        def feed() -> None:
            try:
                while chunk := source.read(CHUNK_SIZE):
                    stdin.write(chunk)
            except BrokenPipeError:
                pass  # the program died; its exit status says why
            except BaseException as exc:
                feeder_error.append(exc)
            finally:
                with contextlib.suppress(BrokenPipeError):
                    stdin.close()

        errors: list[bytes] = []
        error_reader = threading.Thread(target=lambda: errors.append(stderr.read()),
                                        daemon=True)
        feeder = threading.Thread(target=feed, name="compress-feed", daemon=True)
        error_reader.start()
        feeder.start()
        try:
            while chunk := stdout.read(CHUNK_SIZE):
                write(chunk)
        except BaseException:
            process.kill()
            raise
        finally:
            feeder.join()
            error_reader.join()
        code = process.wait()
    if feeder_error:
        raise feeder_error[0]
    if code != 0:
        message = b"".join(errors).decode("utf-8", "replace").strip().splitlines()
        raise AtomicReactorError(f"{what}: {command[0]} failed (exit {code})"
                                 + (f": {message[-1]}" if message else ""))


def planned_tool(method: str, *, adaptive: bool = False, portable: bool = False
                 ) -> str | None:
    """The tool :func:`compress_stream` uses for ``method`` here (what it returns), or
    None for an unknown method or a zstd with neither the program nor the package."""
    found = method_of(method)
    if found is None:
        return None
    if found.name == "gzip":
        if adaptive:
            return _deflate(portable)[1] + "-adaptive"
        return "pigz" if _which("pigz") is not None else _deflate(portable)[1]
    if found.name == "xz":
        return "xz" if _which("xz") is not None else "python-lzma"
    if _which("zstd") is not None:
        return "zstd"
    try:
        _zstandard()
    except ImportError:
        return None
    return "python-zstandard"


def compress_stream(source: Readable, write: Write, method: str, level: int | None = None,
                    *, what: str = "compression", adaptive: bool = False,
                    portable: bool = False) -> str:
    """Compress ``source`` with ``method`` into ``write``; return the tool used.

    ``what`` starts error messages (e.g. ``"plugin compress"``). With ``adaptive``,
    gzip works on independent 4 MiB blocks on every core and stores the blocks
    that do not compress (see :func:`_adaptive_gzip_block`) instead of running pigz.
    ``portable``: zlib blocks from the system's zlib, not zlib-ng (see above).
    """
    found = method_of(method)
    if found is None:
        raise AtomicReactorError(f"{what}: unknown method {method!r} (gzip, xz, zstd)")
    level = found.default if level is None else level
    if found.name == "gzip" and adaptive:
        deflate, tool = _deflate(portable)
        _blocks_in_parallel(source, write, 4 * CHUNK_SIZE,
                            _adaptive_gzip_block(level, deflate))
        return f"{tool}-adaptive"
    if found.name == "gzip":
        pigz = _which("pigz")
        if pigz is not None:
            _run_program([pigz, f"-{level}", "-n", "-c", "-p", str(_workers())], source, write,
                         what)
            return "pigz"
        deflate, tool = _deflate(portable)
        _blocks_in_parallel(source, write, 4 * CHUNK_SIZE, _gzip_block(level, deflate))
        return tool
    if found.name == "xz":
        xz = _which("xz")
        if xz is not None:
            _run_program([xz, f"-{level}", "-T0", "-c"], source, write, what)
            return "xz"
        _blocks_in_parallel(source, write, 24 * CHUNK_SIZE, _xz_block(level))
        return "python-lzma"
    zstd = _which("zstd")
    if zstd is not None:
        _run_program([zstd, f"-{level}", "-T0", "-q", "-c"], source, write, what)
        return "zstd"
    try:
        zstandard = _zstandard()
    except ImportError:
        raise AtomicReactorError(f"{what}: zstd needs the zstd program or the "
                                 "zstandard Python package; neither is installed") from None
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)

    class _Sink:
        def write(self, data: bytes) -> int:
            write(data)
            return len(data)

    compressor.copy_stream(source, _Sink())
    return "python-zstandard"


# -- reading compressed files ---------------------------------------------------------------


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


def decompress_file(path: str, kind: str, out_path: str) -> None:
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
        zstandard = _zstandard()
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
        decompress_file(path, kind, out_path + ".part")
        os.replace(out_path + ".part", out_path)
    return out_path

