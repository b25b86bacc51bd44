"""``compress``: compress the exported image (or a ``docker save`` of the built one)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal

from atomic_reactor._image.compression import METHODS, Readable, compress_stream, method_of
from atomic_reactor._image.hashing import ParallelHasher
from atomic_reactor._results import ExportedImage
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["EXPORTED_COMPRESSED_IMAGE_NAME_TEMPLATE", "CompressPlugin", "CompressedImage"]

#: file name of the compressed image (``{0}`` is the extension)
EXPORTED_COMPRESSED_IMAGE_NAME_TEMPLATE = "compressed.tar.{0}"



@dataclass(frozen=True)
class CompressedImage:
    """The compressed image and what it was made from.

    ``tool`` is the program (``pigz``, ``xz``, ``zstd``) or Python module that
    compressed; ``source`` the exported file compressed, or the image id saved.
    """

    path: str
    method: str
    level: int
    tool: str
    size: int
    sha256sum: str
    md5sum: str
    uncompressed_size: int
    uncompressed_sha256sum: str
    source: str


# -- compressing ----------------------------------------------------------------------------


class _Output:
    """The compressed file being written, hashed on the way."""

    def __init__(self, handle: IO[bytes], hasher: ParallelHasher) -> None:
        self.handle = handle
        self.hasher = hasher

    def write(self, data: bytes) -> None:
        if data:
            self.handle.write(data)
            self.hasher.update(data)


class _CountingReader:
    """A file object over the uncompressed stream that counts and hashes what is read."""

    def __init__(self, source: IO[bytes] | None = None,
                 chunks: Iterable[bytes] | None = None) -> None:
        self._file = source
        self._chunks = iter(chunks) if chunks is not None else None
        self._pending = b""
        self.hasher = ParallelHasher(("sha256",))

    def read(self, size: int = -1, /) -> bytes:
        data = self._read(size)
        self.hasher.update(data)
        return data

    def _read(self, size: int) -> bytes:
        if self._file is not None:
            return self._file.read(size)
        if self._chunks is None:
            return b""
        while not self._pending:
            try:
                self._pending = bytes(next(self._chunks))
            except StopIteration:
                return b""
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data


# -- the plugin ----------------------------------------------------------------------------------


class CompressPlugin(PostBuildPlugin):
    """Compress the image archive with gzip, xz or zstd, using every core.

    The archive compressed is the last uncompressed exported image (``squash``
    writes one), or, when there is none (or ``load_exported_image`` is false), a
    ``docker save`` of the built image streamed straight into the compressor.
    gzip uses ``pigz`` when installed, else parallel zlib blocks; xz uses
    ``xz -T0`` when installed, else parallel lzma blocks; zstd needs the ``zstd``
    program (``-T0``) or the ``zstandard`` Python package. The output is
    ``compressed.tar.{gz,xz,zst}`` in ``export_dir`` (default: the exported
    image's directory, or a new temporary directory kept after the build).

    Result: a :class:`CompressedImage` (path, method, level, tool, size and
    checksums of the compressed file, size and sha256 of what was compressed);
    the file is also appended to ``workflow.exported_image_sequence`` as an
    :class:`~atomic_reactor._results.ExportedImage` with ``compression`` set.
    """

    key = "compress"
    per_platform = True
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 method: Literal["gzip", "xz", "zstd", "lzma"] = "gzip",
                 load_exported_image: bool | None = None, level: int | None = None,
                 export_dir: str | None = None) -> None:
        """
        :param method: ``gzip`` (default), ``xz`` (``lzma`` is accepted as another name) or ``zstd``
        :param load_exported_image: true: compress the exported image (fail if there is none); false: compress a ``docker save`` of the built image; unset: the exported image when there is one
        :param level: compression level (gzip 1-9, default 6; xz 0-9, default 6; zstd 1-19, default 3)
        :param export_dir: directory for the compressed file (created if missing)
        """  # noqa: E501
        super().__init__(tasker, workflow)
        found = method_of(method)
        if found is None:
            raise PluginConfigError(f"plugin compress: argument 'method': unknown method "
                                    f"{method!r} (gzip, xz, zstd)", plugin=self.key,
                                    argument="method")
        canonical, lowest, highest, default = (found.name, found.lowest, found.highest,
                                               found.default)
        if level is not None and not lowest <= level <= highest:
            raise PluginConfigError(f"plugin compress: argument 'level': {canonical} levels are "
                                    f"{lowest} to {highest}, not {level}", plugin=self.key,
                                    argument="level")
        if export_dir is not None and not export_dir.strip():
            raise PluginConfigError("plugin compress: argument 'export_dir' is empty",
                                    plugin=self.key, argument="export_dir")
        self.method = canonical
        self.level = default if level is None else level
        self.load_exported_image = load_exported_image
        self.export_dir = export_dir

    def _exported(self) -> ExportedImage | None:
        for exported in reversed(self.workflow.exported_image_sequence):
            if exported.compression is None:
                return exported
        return None

    def _output_path(self, exported: ExportedImage | None) -> tuple[str, str | None]:
        if self.export_dir is not None:
            platform = getattr(self.workflow, "platform", None)
            directory = self.export_dir if platform is None else \
                os.path.join(self.export_dir, platform.slug)  # one file per platform
            os.makedirs(directory, exist_ok=True)
            created = None
        elif exported is not None:
            directory, created = os.path.dirname(exported.path), None
        else:
            directory = created = tempfile.mkdtemp(prefix="atomic-reactor-export-")
        extension = METHODS[self.method].extension
        path = os.path.join(os.path.abspath(directory),
                            EXPORTED_COMPRESSED_IMAGE_NAME_TEMPLATE.format(extension))
        if os.path.lexists(path):
            raise AtomicReactorError(f"plugin compress: {path} already exists; "
                                     "not overwriting it")
        return path, created

    def _compress(self, source: Readable, out: _Output) -> str:
        """Compress ``source`` into ``out``; return the tool used."""
        return compress_stream(source, out.write, self.method, self.level,
                               what="plugin compress")

    def run(self) -> CompressedImage:
        exported = self._exported() if self.load_exported_image is not False else None
        if self.load_exported_image and exported is None:
            raise PluginConfigError("plugin compress: load_exported_image is set, but no "
                                    "(uncompressed) image was exported; run squash first",
                                    plugin=self.key, argument="load_exported_image")
        path, created = self._output_path(exported)
        reader: _CountingReader | None = None
        try:
            with open(path, "xb") as handle, ParallelHasher() as hasher:
                out = _Output(handle, hasher)
                if exported is not None:
                    source_name = exported.path
                    self.log.info("compressing %s with %s", exported.path, self.method)
                    with open(exported.path, "rb") as raw:
                        reader = _CountingReader(raw)
                        tool = self._compress(reader, out)
                else:
                    source_name = self.image_id
                    self.log.info("compressing a docker save of %s with %s", source_name,
                                  self.method)
                    reader = _CountingReader(chunks=self.tasker.save_image_stream(source_name))
                    tool = self._compress(reader, out)
                handle.flush()
                sums = hasher.checksums()
            plain = reader.hasher.hexdigests()["sha256"]
            if exported is not None and exported.sha256sum != plain:
                raise AtomicReactorError(f"plugin compress: {exported.path} changed since it "
                                         "was exported (its sha256 differs from the recorded "
                                         "one)")
        except BaseException:
            if os.path.lexists(path):
                os.unlink(path)
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        finally:
            if reader is not None:
                reader.hasher.close()
        result = CompressedImage(
            path=path, method=self.method, level=self.level, tool=tool, size=sums.size,
            sha256sum=sums.sha256, md5sum=sums.md5, uncompressed_size=reader.hasher.size,
            uncompressed_sha256sum=plain, source=source_name)
        self.workflow.exported_image_sequence.append(ExportedImage(
            path=path, size=sums.size, sha256sum=sums.sha256, md5sum=sums.md5,
            type=exported.type if exported is not None else "docker-archive",
            compression=self.method))
        saved = 100 * (1 - sums.size / reader.hasher.size) if reader.hasher.size else 0.0
        self.log.info("compressed %d bytes into %s (%d bytes, %.1f %% saved) with %s",
                      reader.hasher.size, path, sums.size, saved, tool)
        return result
