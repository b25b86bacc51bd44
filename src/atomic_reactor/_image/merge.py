"""Merging layers: whiteouts, opaque directories, hard links, the squashed layer.

The headers of the layers to merge are merged oldest to newest into a tree of
paths: a later entry replaces an earlier one, a whiteout (``.wh.NAME``) deletes
a path and everything under it, an opaque marker (``.wh..wh..opq``) hides what
lower layers had in a directory. Paths deleted relative to the kept layers stay
deleted (the whiteout is kept; a directory deleted and created again becomes
opaque).

The new layer is written in path order (parents before children). Hard links
stay hard links; when the file a link pointed to was deleted or replaced later,
the first surviving name of the inode carries the data. Modes (set-id bits too),
ownership, times and extended attributes are copied from the original headers;
unchanged headers are copied byte for byte.
"""

from __future__ import annotations

import copy
import os
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from atomic_reactor._image.tarstream import (
    END_OF_ARCHIVE,
    ArchiveError,
    copy_range,
    header_bytes,
    normalize_member_name,
    padding,
)

__all__ = [
    "index_layer",
    "layer_size",
    "merge_layers",
    "plan_layer",
    "read_members",
    "squashed_config",
    "write_layer",
]

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
AUFS_META = ".wh..wh."
_OPAQUE, _WHITEOUT, _AUFS_META = OPAQUE, WHITEOUT, AUFS_META



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
                copy_range(fd_of(source.layer), source.info.offset_data, size, write)
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



def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def squashed_config(config: dict[str, Any], keep: int, diff_id: str, *,
                    created: str | None = None) -> dict[str, Any]:
    """``config`` with layers ``keep..`` replaced by ``diff_id``; history rewritten.

    The new history entry's time is ``created`` (RFC 3339), by default now.
    """
    new = copy.deepcopy(config)
    when = created if created is not None else _now()
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
            entry = {"created": when, "created_by": "atomic-reactor squash",
                     "comment": f"{squashed} layers squashed into one"}
            new["history"] = [entry if i == last else item
                              for i, item in enumerate(history) if i not in gone]
        else:
            new["history"] = [item for item in history if isinstance(item, dict)] + [
                {"created": when, "created_by": "atomic-reactor squash",
                 "comment": f"{squashed} layers squashed into one"}]
    for legacy in ("id", "parent"):
        new.pop(legacy, None)
    return new

