"""``squash``: merge the layers the build added into one layer.

The squash is done here, in Python, on the ``docker save`` archive of the built
image (no docker-squash at run time), with the image toolkit (``_image``):

1. ``docker save`` is streamed into a scratch directory (``tarstream.safe_extract``).
2. The headers of the layers to squash are read (in parallel) and merged oldest
   to newest (``merge.merge_layers``: whiteouts, opaque directories, hard links).
3. The new layer is written in path order (``merge.write_layer``).
4. The new image archive (kept layers + the new layer + the rewritten config) is
   produced once, as a stream (``layout.DockerArchiveWriter``): to the export
   file, to the hashers computing its checksums and to the engine loading it, at
   the same time.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._image.compression import detect_compression, uncompressed_layer
from atomic_reactor._image.hashing import ParallelHasher
from atomic_reactor._image.layout import DockerArchiveWriter, ImageArchive
from atomic_reactor._image.merge import (
    index_layer,
    layer_size,
    merge_layers,
    squashed_config,
    write_layer,
)
from atomic_reactor._image.tarstream import (
    ArchiveError,
    FanOut,
    StreamConsumer,
    safe_extract,
)
from atomic_reactor._reference import ImageName
from atomic_reactor._results import ExportedImage
from atomic_reactor.errors import (
    AtomicReactorError,
    EngineError,
    ImageNotFound,
    InvalidImageName,
    PluginConfigError,
)
from atomic_reactor.plugin import PrePublishPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["EXPORTED_SQUASHED_IMAGE_NAME", "SquashPlugin", "SquashResult"]

#: file name of the exported (squashed) image
EXPORTED_SQUASHED_IMAGE_NAME = "image.tar"



@dataclass(frozen=True)
class SquashResult:
    """What ``squash`` did.

    ``image_id`` is the image the workflow uses from now on (the squashed one, or
    the original when the squash was skipped or not loaded); ``original_image_id``
    the image as built (``remove_built_image`` removes it too).
    """

    image_id: str
    original_image_id: str
    skipped: bool = False
    reason: str | None = None
    squashed_layers: int = 0
    kept_layers: int = 0
    layer_diff_id: str | None = None
    layer_size: int | None = None
    squashed_image_id: str | None = None
    loaded: bool = False
    tags: tuple[str, ...] = ()
    exported: ExportedImage | None = None


# -- the plugin -----------------------------------------------------------------------------------


class SquashPlugin(PrePublishPlugin):
    """Squash the layers the build added (or those above ``from_layer``) into one layer.

    The squashed image keeps the layers below (the base image's, by default) and
    the whole config (labels, env, cmd, entrypoint, user, workdir...); its history
    shows one entry for the squashed layers. Files deleted by a later layer stay
    deleted, also when they came from the kept layers; hard links, modes (set-id
    bits), ownership, times and extended attributes survive. Unless ``dont_load``,
    the squashed image is loaded into the engine, gets the workflow's image name
    (and ``tag``), and becomes the workflow's built image for the later plugins;
    the original image stays until ``remove_built_image`` removes it. With
    ``save_archive`` the squashed image is also written as a ``docker save``
    archive ``image.tar`` in ``export_dir`` (by default a new temporary directory
    that outlives the build; its path is in the result), and appended to
    ``workflow.exported_image_sequence`` with size and checksums. Nothing is
    squashed when the build added fewer than two layers; the image is still
    exported then.

    Result: a :class:`SquashResult` (new and original image id, how many layers
    were squashed and kept, the new layer's diff id and size, the tags, and the
    :class:`~atomic_reactor._results.ExportedImage` when an archive was saved);
    ``skipped`` and ``reason`` say when there was nothing to squash.
    """

    key = "squash"
    per_platform = True
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, tag: str | None = None,
                 from_base: bool = True, from_layer: str | None = None,
                 dont_load: bool = False, save_archive: bool = True,
                 export_dir: str | None = None) -> None:
        """
        :param tag: an extra name for the squashed image (it always gets the workflow's image name)
        :param from_base: squash the layers above the base image (default); with false and no ``from_layer``, squash all layers
        :param from_layer: squash the layers above this one: an image (name or id) whose layers the built image starts with, a layer diff id of the built image, or a number N to squash the top N layers; takes precedence over ``from_base``
        :param dont_load: do not load the squashed image into the engine (then only the archive has it)
        :param save_archive: write the squashed image as ``image.tar`` and record it as an exported image
        :param export_dir: directory for ``image.tar`` (created if missing; default: a new temporary directory that is kept after the build)
        """  # noqa: E501
        super().__init__(tasker, workflow)
        if tag is not None:
            try:
                ImageName.parse(tag)
            except InvalidImageName as exc:
                raise PluginConfigError(f"plugin squash: argument 'tag': {exc}", plugin=self.key,
                                        argument="tag") from None
        if from_layer is not None:
            if not from_layer.strip():
                raise PluginConfigError("plugin squash: argument 'from_layer' is empty",
                                        plugin=self.key, argument="from_layer")
            if from_layer.strip().isdigit() and int(from_layer) == 0:
                raise PluginConfigError("plugin squash: argument 'from_layer': the number of "
                                        "layers to squash must be at least 1",
                                        plugin=self.key, argument="from_layer")
        if dont_load and not save_archive:
            raise PluginConfigError("plugin squash: with 'dont_load' true and 'save_archive' "
                                    "false the squashed image would be thrown away",
                                    plugin=self.key, argument="save_archive")
        if export_dir is not None and not export_dir.strip():
            raise PluginConfigError("plugin squash: argument 'export_dir' is empty",
                                    plugin=self.key, argument="export_dir")
        self.tag = tag
        self.from_base = from_base
        self.from_layer = from_layer.strip() if from_layer is not None else None
        self.dont_load = dont_load
        self.save_archive = save_archive
        self.export_dir = export_dir

    # -- which layers ------------------------------------------------------------------------
    def _config_error(self, message: str) -> PluginConfigError:
        return PluginConfigError(f"plugin squash: argument 'from_layer': {message}",
                                 plugin=self.key, argument="from_layer")

    def _prefix_of(self, theirs: list[str], layers: list[str], what: str) -> int:
        if layers[:len(theirs)] != theirs:
            raise AtomicReactorError(f"plugin squash: the built image does not start with the "
                                     f"layers of {what}; cannot squash from it")
        return len(theirs)

    def layers_to_keep(self, layers: list[str]) -> int:
        """How many of ``layers`` (bottom first) stay as they are."""
        value = self.from_layer
        if value is not None:
            if value.isdigit():
                count = int(value)
                if count > len(layers):
                    raise self._config_error(f"the image has only {len(layers)} layers, "
                                             f"cannot squash {count}")
                return len(layers) - count
            wanted = value if value.startswith("sha256:") else f"sha256:{value}"
            if wanted in layers:
                return layers.index(wanted) + 1
            try:
                info = self.tasker.image_info(value)
            except (ImageNotFound, InvalidImageName):
                raise self._config_error(f"{value!r} is neither a layer of the built image "
                                         "nor an image the engine has") from None
            return self._prefix_of(list(info.layers), layers, value)
        if not self.from_base:
            return 0
        base = self.builder.base_info()
        if base is None:  # FROM scratch
            return 0
        return self._prefix_of(list(base.layers), layers,
                               f"the base image {self.builder.base_image}")

    # -- helpers -------------------------------------------------------------------------------
    def _names(self) -> list[str]:
        names = [str(self.workflow.image.with_default_tag())]
        if self.tag is not None:
            extra = str(ImageName.parse(self.tag).with_default_tag())
            if extra not in names:
                names.append(extra)
        return names

    def _export_path(self) -> tuple[str, str | None]:
        """The archive's path and the directory created for it (to remove on failure)."""
        if self.export_dir is not None:
            platform = getattr(self.workflow, "platform", None)
            directory = self.export_dir if platform is None else \
                os.path.join(self.export_dir, platform.slug)  # one file per platform
            os.makedirs(directory, exist_ok=True)
            created = None
        else:
            directory = created = tempfile.mkdtemp(prefix="atomic-reactor-export-")
        path = os.path.join(os.path.abspath(directory), EXPORTED_SQUASHED_IMAGE_NAME)
        if os.path.lexists(path):
            raise AtomicReactorError(f"plugin squash: {path} already exists; "
                                     "not overwriting it")
        return path, created

    def _scratch(self) -> str:
        return tempfile.mkdtemp(prefix="squash-", dir=self.workflow.workdir or None)

    def _set_built_image(self, image_id: str) -> None:
        self.builder.set_image_id(image_id)

    # -- run ---------------------------------------------------------------------------------------
    def run(self) -> SquashResult:
        original_id = self.image_id
        layers = list(self.tasker.image_info(original_id).layers)
        keep = self.layers_to_keep(layers)
        count = len(layers) - keep
        if count < 2:
            reason = (f"nothing to squash: {count} layer above the kept {keep}"
                      if count == 1 else f"nothing to squash: no layer above the kept {keep}")
            self.log.info("%s", reason)
            exported = self._export_unchanged(original_id) if self.save_archive else None
            return SquashResult(image_id=original_id, original_image_id=original_id,
                                skipped=True, reason=reason, kept_layers=keep,
                                exported=exported)
        self.log.info("squashing %d layers of %s (keeping %d)", count, original_id, keep)
        scratch = self._scratch()
        export_path: str | None = None
        created_dir: str | None = None
        try:
            if self.save_archive:
                export_path, created_dir = self._export_path()
            result = self._squash(original_id, layers, keep, scratch, export_path)
        except BaseException:
            if export_path is not None and os.path.lexists(export_path):
                os.unlink(export_path)
            if created_dir is not None:
                shutil.rmtree(created_dir, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return result

    def _export_unchanged(self, image_id: str) -> ExportedImage:
        """``docker save`` of the image as it is, to the export path."""
        path, created = self._export_path()
        name = str(self.workflow.image.with_default_tag())
        named = self.tasker.find_image(name)
        source = name if named is not None and named.id == image_id else image_id
        try:
            with ParallelHasher() as hasher, open(path, "xb") as out:
                for chunk in self.tasker.save_image_stream(source):
                    out.write(chunk)
                    hasher.update(bytes(chunk))
                sums = hasher.checksums()
        except BaseException:
            if os.path.lexists(path):
                os.unlink(path)
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        exported = ExportedImage(path=path, size=sums.size, sha256sum=sums.sha256,
                                 md5sum=sums.md5)
        self.workflow.exported_image_sequence.append(exported)
        self.log.info("exported %s to %s", source, path)
        return exported

    def _squash(self, original_id: str, layers: list[str], keep: int, scratch: str,
                export_path: str | None) -> SquashResult:
        unpacked = os.path.join(scratch, "saved")
        plain_dir = os.path.join(scratch, "plain")
        os.makedirs(plain_dir, exist_ok=True)

        def prepare(path: str) -> tuple[str, list[tarfile.TarInfo], bool]:
            plain = uncompressed_layer(path, plain_dir)
            return (plain, *index_layer(plain))

        def prepare_early(path: str) -> tuple[str, list[tarfile.TarInfo], bool] | None:
            # before the manifest says which layers are squashed: only cheap work
            return (path, *index_layer(path)) if detect_compression(path) is None else None

        # Layer files are read (and decompressed when needed) as soon as they are
        # unpacked, in parallel, while the rest of the save stream arrives.
        futures: dict[str, concurrent.futures.Future[
            tuple[str, list[tarfile.TarInfo], bool] | None]] = {}
        workers = max(1, min(4, os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            def on_file(name: str, path: str) -> None:
                if name.endswith("/layer.tar") or name.startswith("blobs/"):
                    futures[os.path.realpath(path)] = pool.submit(prepare_early, path)

            self.log.debug("saving %s into %s", original_id, unpacked)
            started = time.monotonic()
            try:
                safe_extract(self.tasker.save_image_stream(original_id), unpacked,
                             on_file=on_file)
                self.log.debug("saved and unpacked in %.2f s", time.monotonic() - started)
                started = time.monotonic()
                archive = ImageArchive.open(unpacked)
                if archive.diff_ids != layers:
                    raise ArchiveError("plugin squash: the saved image's layers differ from "
                                       "the engine's inspect of it")
                prepared = []
                for path in archive.layer_files[keep:]:
                    future = futures.get(path)
                    early = future.result() if future is not None else None
                    prepared.append(early if early is not None else prepare(path))
            finally:
                for future in futures.values():
                    future.cancel()
        planned = merge_layers([members for _, members, _ in prepared],
                               [raw_ok for _, _, raw_ok in prepared])
        size = layer_size(planned)
        self.log.debug("merged %d layers in %.2f s: %d entries, %d bytes", len(prepared),
                       time.monotonic() - started, len(planned), size)
        started = time.monotonic()

        chain = hashlib.sha256(" ".join(layers).encode()).hexdigest()
        layer_name = f"{chain}/layer.tar"
        names = self._names()
        loader: StreamConsumer[list[str]] | None = None
        if not self.dont_load:
            loader = StreamConsumer(self.tasker.load_image, name="squash-load")
        out = open(export_path, "xb") if export_path is not None else None  # noqa: SIM115
        export_hasher = ParallelHasher() if out is not None else None
        layer_hasher = ParallelHasher(("sha256",))
        try:
            consumers: list[Callable[[bytes], object]] = []
            if out is not None and export_hasher is not None:
                consumers += [out.write, export_hasher.update]
            if loader is not None:
                consumers.append(loader.send)
            image = FanOut(consumers)
            layer = FanOut([layer_hasher.update, image.write])
            writer = DockerArchiveWriter(image.write)
            # the kept layers, as they are
            for name, path in zip(archive.layers[:keep], archive.layer_files[:keep],
                                  strict=True):
                writer.add_layer_file(name, path)
            # the new layer, produced straight into the stream
            writer.begin_layer(layer_name, size)
            write_layer(planned, [plain for plain, _, _ in prepared], layer.write)
            layer.flush()
            if layer.position != size:
                raise ArchiveError(f"plugin squash: the squashed layer has {layer.position} "
                                   f"bytes, {size} were announced")
            writer.end_layer()
            diff_id = "sha256:" + layer_hasher.hexdigests()["sha256"]
            config = squashed_config(archive.config, keep, diff_id)
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            new_id = writer.finish(config_bytes, names)
            image.flush()
            if out is not None:
                out.close()
            self.log.debug("new image archive produced in %.2f s", time.monotonic() - started)
            loaded: list[str] = loader.finish() if loader is not None else []
            self.log.debug("written and loaded in %.2f s", time.monotonic() - started)
        except BaseException:
            if loader is not None:
                loader.abort()
            raise
        finally:
            layer_hasher.close()
            if export_hasher is not None:
                export_hasher.close()
            if out is not None and not out.closed:
                out.close()

        exported: ExportedImage | None = None
        if export_path is not None and export_hasher is not None:
            sums = export_hasher.checksums()
            exported = ExportedImage(path=export_path, size=sums.size, sha256sum=sums.sha256,
                                     md5sum=sums.md5)
            self.workflow.exported_image_sequence.append(exported)
            self.log.info("squashed image exported to %s (%d bytes)", export_path, sums.size)
        if loader is not None:
            self.log.debug("engine loaded: %s", ", ".join(loaded))
            actual = self.tasker.image_info(names[0]).id
            if actual != new_id:
                raise EngineError(f"plugin squash: after loading, {names[0]} is {actual}, "
                                  f"expected the squashed image {new_id}")
            self._set_built_image(new_id)
            self.log.info("squashed image %s loaded as %s", new_id, ", ".join(names))
        return SquashResult(
            image_id=new_id if loader is not None else original_id,
            original_image_id=original_id, squashed_layers=len(layers) - keep,
            kept_layers=keep, layer_diff_id=diff_id, layer_size=size,
            squashed_image_id=new_id, loaded=loader is not None,
            tags=tuple(names) if loader is not None else (), exported=exported)
