"""``squash``: merge the layers the build added into one layer.

The squash is done here, in Python, on the ``docker save`` archive of the built
image (no docker-squash at run time):

1. ``docker save`` is streamed into a scratch directory (:func:`safe_extract`).
2. The headers of the layers to squash are read (in parallel) and merged oldest
   to newest into a tree of paths: a later entry replaces an earlier one, a
   whiteout (``.wh.NAME``) deletes a path and everything under it, an opaque
   marker (``.wh..wh..opq``) hides what lower layers had in a directory. Paths
   deleted relative to the kept layers stay deleted (the whiteout is kept; a
   directory deleted and created again becomes opaque).
3. The new layer is written in path order (parents before children). Hard links
   stay hard links; when the file a link pointed to was deleted or replaced
   later, the first surviving name of the inode carries the data. Modes
   (set-id bits too), ownership, times and extended attributes are copied from
   the original headers.
4. The new image archive (kept layers + the new layer + the rewritten config) is
   produced once, as a stream: to the export file, to the hashers computing its
   checksums and to the engine loading it, at the same time.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atomic_reactor._archive import (
    CHUNK_SIZE,
    END_OF_ARCHIVE,
    ArchiveError,
    FanOut,
    ImageArchive,
    ParallelHasher,
    StreamConsumer,
    detect_compression,
    header_bytes,
    normalize_member_name,
    padding,
    safe_extract,
    uncompressed_layer,
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

__all__ = ["EXPORTED_SQUASHED_IMAGE_NAME", "SquashPlugin", "SquashResult"]

#: file name of the exported (squashed) image
EXPORTED_SQUASHED_IMAGE_NAME = "image.tar"

_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."
_AUFS_META = ".wh..wh."


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


# -- merging layers ---------------------------------------------------------------------------


class _Source:
    """A regular file's data: member ``info`` of layer ``layer``."""

    __slots__ = ("info", "layer")

    def __init__(self, layer: int, info: tarfile.TarInfo) -> None:
        self.layer = layer
        self.info = info


class _Entry:
    """What a path shows: member ``info`` of layer ``layer`` (and whose data, for files)."""

    __slots__ = ("info", "layer", "source")

    def __init__(self, layer: int, info: tarfile.TarInfo, source: _Source | None = None) -> None:
        self.layer = layer
        self.info = info
        self.source = source


class _Node:
    __slots__ = ("children", "entry", "opaque", "opaque_marker", "whiteout")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.entry: _Entry | None = None
        #: deleted relative to the kept layers: emit ``.wh.NAME`` (the marker's member)
        self.whiteout: _Entry | None = None
        #: hides the kept layers' content: emit ``NAME/.wh..wh..opq``
        self.opaque = False
        self.opaque_marker: _Entry | None = None


def _clean(name: str) -> str:
    """:func:`normalize_member_name`, with a fast path for names that are clean already."""
    if name and name[0] not in "./" and "/." not in name and "//" not in name \
            and name[-1] != "/":
        return name
    return normalize_member_name(name)


class _Tree:
    """The merged state of the squashed layers, as seen on top of the kept layers."""

    def __init__(self) -> None:
        self.root = _Node()

    def find(self, path: str) -> _Node | None:
        node = self.root
        for part in path.split("/"):
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def make(self, path: str) -> _Node:
        """The node for ``path``, creating it; directories above it come alive again."""
        node = self.root
        parts = path.split("/")
        last = parts.pop()
        for part in parts:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node()
            else:
                if child.whiteout is not None:
                    # deleted before, now has content again: hide the kept layers' version
                    child.whiteout = None
                    child.opaque = True
                if child.entry is not None and not child.entry.info.isdir():
                    child.entry = None
            node = child
        child = node.children.get(last)
        if child is None:
            child = node.children[last] = _Node()
        return child

    def apply_layer(self, layer: int, members: list[tarfile.TarInfo]) -> None:
        entries: list[tuple[str, tarfile.TarInfo]] = []
        for member in members:
            name = _clean(member.name)
            if not name:
                continue
            parent, _, base = name.rpartition("/")
            if not base.startswith(_WHITEOUT):
                entries.append((name, member))
            elif base == _OPAQUE:
                if not parent:
                    raise ArchiveError(f"layer {layer}: an opaque marker for the root directory")
                node = self.make(parent)
                node.children = {}
                node.whiteout = None
                node.opaque = True
                node.opaque_marker = _Entry(layer, member)
            elif base.startswith(_AUFS_META):
                continue  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.orph)
            else:
                target = f"{parent}/{base[len(_WHITEOUT):]}" if parent else base[len(_WHITEOUT):]
                node = self.make(target)
                node.children = {}
                node.entry = None
                node.opaque = False
                node.opaque_marker = None
                node.whiteout = _Entry(layer, member)
        # whiteouts apply to the lower layers only, so they go first
        for name, member in entries:
            node = self.make(name)
            if member.isdir():
                if node.whiteout is not None:
                    node.whiteout = None
                    node.opaque = True
                node.entry = _Entry(layer, member)
                continue
            if member.issparse():
                raise ArchiveError(f"layer {layer}: {name} is a sparse file (not supported)")
            if node.children:
                node.children = {}
            node.opaque = False
            node.opaque_marker = None
            node.whiteout = None
            if member.isreg():
                node.entry = _Entry(layer, member, _Source(layer, member))
            elif member.islnk():
                linked = self.find(normalize_member_name(member.linkname, what="link target"))
                if linked is not None and linked.entry is not None:
                    if linked.entry.source is not None:
                        node.entry = _Entry(layer, member, linked.entry.source)
                    else:  # a hard link to a symlink (or device): a copy of it will do
                        node.entry = _Entry(layer, linked.entry.info)
                else:  # a file of the kept layers: the engine links it when applying
                    node.entry = _Entry(layer, member)
            else:
                node.entry = _Entry(layer, member)

    def walk(self) -> Iterator[tuple[str, _Node]]:
        """Every node below the root, parents before children, siblings by name."""
        children = self.root.children
        stack: list[tuple[str, _Node]] = [(name, children[name])
                                          for name in sorted(children, reverse=True)]
        while stack:
            path, node = stack.pop()
            yield path, node
            if node.children:
                children = node.children
                stack.extend((f"{path}/{name}", children[name])
                             for name in sorted(children, reverse=True))


class _Planned:
    """One member of the squashed layer.

    Its header is either ``header`` (made here) or, when nothing about the member
    changes, the original header bytes (``raw``: layer, offset, length) copied as
    they are; its data (``source``) comes from a layer file.
    """

    __slots__ = ("header", "raw", "source")

    def __init__(self, header: bytes = b"", raw: tuple[int, int, int] | None = None,
                 source: _Source | None = None) -> None:
        self.header = header
        self.raw = raw
        self.source = source

    @property
    def size(self) -> int:
        header = self.raw[2] if self.raw is not None else len(self.header)
        data = self.source.info.size if self.source is not None else 0
        return header + data + (-data % 512)


def _marker(template: tarfile.TarInfo | None, name: str) -> tarfile.TarInfo:
    info = copy.copy(template) if template is not None else tarfile.TarInfo()
    info.name = name
    info.type = tarfile.REGTYPE
    info.size = 0
    info.linkname = ""
    if template is None:
        info.mode = 0o644
        info.mtime = 0
    return info


class _Planner:
    def __init__(self, raw_ok: list[bool]) -> None:
        self.raw_ok = raw_ok
        self.planned: list[_Planned] = []

    def raw(self, entry: _Entry, name: str, source: _Source | None = None) -> bool:
        """Reuse ``entry``'s original header if it says exactly what is wanted."""
        info = entry.info
        if info.name != name or not self.raw_ok[entry.layer]:
            return False
        self.planned.append(_Planned(raw=(entry.layer, info.offset,
                                          info.offset_data - info.offset), source=source))
        return True

    def make(self, info: tarfile.TarInfo, source: _Source | None = None) -> None:
        self.planned.append(_Planned(header=header_bytes(info), source=source))

    def marker(self, marker: _Entry | None, name: str) -> None:
        if marker is None or marker.info.size or not self.raw(marker, name):
            self.make(_marker(marker.info if marker is not None else None, name))


def plan_layer(tree: _Tree, raw_ok: list[bool] | None = None) -> list[_Planned]:
    """The members of the squashed layer, in order."""
    items = list(tree.walk())
    holders: dict[int, str] = {}
    for path, node in items:
        entry = node.entry
        if entry is not None and entry.source is not None:
            holders.setdefault(id(entry.source), path)
    layers = 1 + max((node.entry.layer for _, node in items if node.entry is not None),
                     default=0)
    plan = _Planner(raw_ok if raw_ok is not None else [True] * layers)
    for path, node in items:
        if node.whiteout is not None:
            parent, _, base = path.rpartition("/")
            plan.marker(node.whiteout,
                        f"{parent}/{_WHITEOUT}{base}" if parent else f"{_WHITEOUT}{base}")
            continue
        entry = node.entry
        if entry is not None:
            info = entry.info
            source = entry.source
            if source is not None:
                holder = holders[id(source)]
                if holder == path:  # this name carries the data
                    if source.info is not info or not plan.raw(entry, path, source):
                        data = copy.copy(source.info)
                        data.name = path
                        data.type = tarfile.REGTYPE
                        data.linkname = ""
                        plan.make(data, source)
                elif not (info.islnk() and info.linkname == holder and plan.raw(entry, path)):
                    link = copy.copy(info)
                    link.name = path
                    link.type = tarfile.LNKTYPE
                    link.linkname = holder
                    link.size = 0
                    plan.make(link)
            elif info.size == 0 and (not info.islnk() or _clean(info.linkname) ==
                                     info.linkname) and plan.raw(entry, path):
                pass
            else:
                other = copy.copy(info)
                other.name = path
                other.size = 0
                if other.islnk():
                    other.linkname = normalize_member_name(info.linkname, what="link target")
                plan.make(other)
        if node.opaque:
            plan.marker(node.opaque_marker, f"{path}/{_OPAQUE}")
    return plan.planned


def write_layer(planned: list[_Planned], layer_files: list[str],
                write: Callable[[bytes], object]) -> None:
    """Write the planned layer (a whole tar archive); data comes from ``layer_files``."""
    fds: dict[int, int] = {}

    def fd_of(layer: int) -> int:
        fd = fds.get(layer)
        if fd is None:
            fd = fds[layer] = os.open(layer_files[layer], os.O_RDONLY)
        return fd

    try:
        for item in planned:
            raw = item.raw
            if raw is not None:
                header = os.pread(fd_of(raw[0]), raw[2], raw[1])
                if len(header) != raw[2]:
                    raise ArchiveError("a layer file is shorter than its tar headers say")
                write(header)
            else:
                write(item.header)
            source = item.source
            if source is not None:
                size = source.info.size
                _copy_range(fd_of(source.layer), source.info.offset_data, size, write)
                if size % 512:
                    write(padding(size))
        write(END_OF_ARCHIVE)
    finally:
        for fd in fds.values():
            os.close(fd)


def layer_size(planned: list[_Planned]) -> int:
    """The size in bytes of what :func:`write_layer` writes."""
    return sum(item.size for item in planned) + len(END_OF_ARCHIVE)


def merge_layers(members: list[list[tarfile.TarInfo]],
                 raw_ok: list[bool] | None = None) -> list[_Planned]:
    """Merge the member lists of layers (bottom first) into the squashed layer's plan.

    ``raw_ok[i]``: layer ``i``'s original headers may be copied as they are (not
    when it has global pax headers, which apply to every member after them).
    """
    tree = _Tree()
    for index, layer_members in enumerate(members):
        tree.apply_layer(index, layer_members)
    return plan_layer(tree, raw_ok if raw_ok is not None else [True] * len(members))


def index_layer(path: str) -> tuple[list[tarfile.TarInfo], bool]:
    """The members of the layer file at ``path``, and whether its headers can be reused."""
    try:
        with tarfile.open(path, "r:") as tar:
            return tar.getmembers(), not tar.pax_headers
    except tarfile.TarError as exc:
        raise ArchiveError(f"layer {os.path.basename(path)} is not a tar archive: {exc}") \
            from None


def read_members(path: str) -> list[tarfile.TarInfo]:
    return index_layer(path)[0]


# -- writing the image archive -------------------------------------------------------------


def _file_member(name: str, size: int, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    return header_bytes(info)


def _dir_member(name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    return header_bytes(info)


def _copy_range(fd: int, offset: int, size: int, write: Callable[[bytes], object]) -> None:
    end = offset + size
    while offset < end:
        chunk = os.pread(fd, min(CHUNK_SIZE, end - offset), offset)
        if not chunk:
            raise ArchiveError("a layer file is shorter than its tar headers say")
        write(chunk)
        offset += len(chunk)


def _copy_file(path: str, write: Callable[[bytes], object]) -> None:
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            write(chunk)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def squashed_config(config: dict[str, Any], keep: int, diff_id: str) -> dict[str, Any]:
    """``config`` with layers ``keep..`` replaced by ``diff_id``; history rewritten."""
    new = copy.deepcopy(config)
    rootfs = dict(config.get("rootfs") or {"type": "layers"})
    diff_ids = list(rootfs.get("diff_ids") or [])
    squashed = len(diff_ids) - keep
    rootfs["diff_ids"] = [*diff_ids[:keep], diff_id]
    new["rootfs"] = rootfs
    history = config.get("history")
    if isinstance(history, list) and history:
        layered = [i for i, item in enumerate(history)
                   if isinstance(item, dict) and not item.get("empty_layer")]
        if len(layered) == len(diff_ids) and squashed > 0:
            gone = set(layered[keep:-1])
            last = layered[-1]
            entry = {"created": _now(), "created_by": "atomic-reactor squash",
                     "comment": f"{squashed} layers squashed into one"}
            new["history"] = [entry if i == last else item
                              for i, item in enumerate(history) if i not in gone]
        else:
            new["history"] = [item for item in history if isinstance(item, dict)] + [
                {"created": _now(), "created_by": "atomic-reactor squash",
                 "comment": f"{squashed} layers squashed into one"}]
    for legacy in ("id", "parent"):
        new.pop(legacy, None)
    return new


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
    is_allowed_to_fail = False

    def __init__(self, tasker: Any, workflow: Any, tag: str | None = None,
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
                inspect = self.tasker.inspect_image(value)
            except (ImageNotFound, InvalidImageName):
                raise self._config_error(f"{value!r} is neither a layer of the built image "
                                         "nor an image the engine has") from None
            return self._prefix_of(list(inspect.get("RootFS", {}).get("Layers") or []),
                                   layers, value)
        if not self.from_base:
            return 0
        base = self.builder.inspect_base_image()
        if base is None:  # FROM scratch
            return 0
        return self._prefix_of(list(base.get("RootFS", {}).get("Layers") or []), layers,
                               f"the base image {self.builder.base_image}")

    # -- helpers -------------------------------------------------------------------------------
    def _names(self) -> list[str]:
        names = [str(self.workflow.image)]
        if self.tag is not None and str(ImageName.parse(self.tag)) not in names:
            names.append(str(ImageName.parse(self.tag)))
        return names

    def _export_path(self) -> tuple[str, str | None]:
        """The archive's path and the directory created for it (to remove on failure)."""
        if self.export_dir is not None:
            os.makedirs(self.export_dir, exist_ok=True)
            directory, created = self.export_dir, None
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
        inspect = self.tasker.inspect_image(original_id)
        layers = list(inspect.get("RootFS", {}).get("Layers") or [])
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
        name = str(self.workflow.image)
        try:
            source = name if self.tasker.inspect_image(name).get("Id") == image_id else image_id
        except ImageNotFound:
            source = image_id
        try:
            with ParallelHasher() as hasher, open(path, "xb") as out:
                for chunk in self.tasker.engine.save_image(source):
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
                safe_extract(self.tasker.engine.save_image(original_id), unpacked,
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
            loader = StreamConsumer(self.tasker.engine.load_image, name="squash-load")
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
            # the kept layers, as they are
            manifest_layers: list[str] = []
            written: dict[str, str] = {}
            dirs: set[str] = set()
            for name, path in zip(archive.layers[:keep], archive.layer_files[:keep],
                                  strict=True):
                if path in written:
                    manifest_layers.append(written[path])
                    continue
                directory = os.path.dirname(name)
                if directory and directory not in dirs:
                    image.write(_dir_member(directory))
                    dirs.add(directory)
                kept_size = os.path.getsize(path)
                image.write(_file_member(name, kept_size))
                _copy_file(path, image.write)
                image.write(padding(kept_size))
                written[path] = name
                manifest_layers.append(name)
            # the new layer, produced straight into the stream
            image.write(_dir_member(chain))
            image.write(_file_member(layer_name, size))
            write_layer(planned, [plain for plain, _, _ in prepared], layer.write)
            layer.flush()
            if layer.position != size:
                raise ArchiveError(f"plugin squash: the squashed layer has {layer.position} "
                                   f"bytes, {size} were announced")
            image.write(padding(size))
            diff_id = "sha256:" + layer_hasher.hexdigests()["sha256"]
            config = squashed_config(archive.config, keep, diff_id)
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            image_hex = hashlib.sha256(config_bytes).hexdigest()
            config_name = f"{image_hex}.json"
            manifest = [{"Config": config_name, "RepoTags": names,
                         "Layers": [*manifest_layers, layer_name]}]
            manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
            for member, payload in ((config_name, config_bytes),
                                    ("manifest.json", manifest_bytes)):
                image.write(_file_member(member, len(payload)))
                image.write(payload)
                image.write(padding(len(payload)))
            image.write(END_OF_ARCHIVE)
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

        new_id = f"sha256:{image_hex}"
        exported: ExportedImage | None = None
        if export_path is not None and export_hasher is not None:
            sums = export_hasher.checksums()
            exported = ExportedImage(path=export_path, size=sums.size, sha256sum=sums.sha256,
                                     md5sum=sums.md5)
            self.workflow.exported_image_sequence.append(exported)
            self.log.info("squashed image exported to %s (%d bytes)", export_path, sums.size)
        if loader is not None:
            self.log.debug("engine loaded: %s", ", ".join(loaded))
            actual = str(self.tasker.inspect_image(names[0]).get("Id"))
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
