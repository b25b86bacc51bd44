"""Comparing two images file by file: what makes two builds of one commit differ.

:func:`compare_archives` takes two unpacked image archives and reports

* the config fields that differ (dotted paths: ``created``, ``history[2].created``,
  ``config.Env[1]``; the layer list is reported per layer instead), and
* per layer that differs, the first files that differ, each with what differs:
  ``content``, ``time``, ``mode``, ``owner`` (numeric ids or names), ``type``,
  ``link`` (target), ``xattrs``, or that only one of the two images has it
  (``only in first``/``only in second``); when the files are the same but the
  tars are not, the layer differs in ``order`` or ``headers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from atomic_reactor._image.compression import uncompressed_layer
from atomic_reactor._image.layout import ImageArchive
from atomic_reactor._image.tarstream import (
    CHUNK_SIZE,
    ArchiveError,
    normalize_member_name,
    safe_extract,
)

__all__ = [
    "ConfigDifference",
    "FileDifference",
    "ImageComparison",
    "LayerDifference",
    "compare_archives",
    "compare_images",
]

#: files named per differing layer, by default
DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class FileDifference:
    """One path of a layer that differs: ``what`` differs, and how (``first``/``second``)."""

    path: str
    what: tuple[str, ...]
    first: str = ""
    second: str = ""

    def describe(self) -> str:
        detail = f" ({self.first} / {self.second})" if self.first or self.second else ""
        return f"/{self.path}: {', '.join(self.what)}{detail}"


@dataclass(frozen=True)
class LayerDifference:
    """Layer ``index`` (0 = bottom) differs; ``files`` are the first differing paths."""

    index: int
    first_diff_id: str | None
    second_diff_id: str | None
    created_by: str | None = None
    files: tuple[FileDifference, ...] = ()
    more_files: int = 0
    #: the files are equal but the tars are not: ``order`` or ``headers``
    tar_only: str | None = None


@dataclass(frozen=True)
class ConfigDifference:
    field: str
    first: str
    second: str


@dataclass(frozen=True)
class ImageComparison:
    """The outcome of comparing two images (``identical`` when their configs are equal)."""

    first_id: str
    second_id: str
    config: tuple[ConfigDifference, ...] = ()
    layers: tuple[LayerDifference, ...] = ()

    @property
    def identical(self) -> bool:
        return self.first_id == self.second_id and not self.config and not self.layers

    def lines(self) -> list[str]:
        """A report for humans, one finding per line."""
        if self.identical:
            return [f"identical: both builds are image {self.first_id}"]
        out = [f"different: image {self.first_id[:19]} and {self.second_id[:19]}"]
        for item in self.config:
            out.append(f"config {item.field}: {item.first} / {item.second}")
        for layer in self.layers:
            step = f" ({_clip(layer.created_by, 60)})" if layer.created_by else ""
            head = f"layer {layer.index}{step}"
            if layer.first_diff_id is None or layer.second_diff_id is None:
                which = "first" if layer.second_diff_id is None else "second"
                out.append(f"{head}: only in the {which} image")
                continue
            if layer.tar_only:
                out.append(f"{head}: same files, different tar ({layer.tar_only})")
            for change in layer.files:
                out.append(f"{head}: {change.describe()}")
            if layer.more_files:
                out.append(f"{head}: ... and {layer.more_files} more files")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical, "first_image_id": self.first_id,
            "second_image_id": self.second_id,
            "config": [{"field": c.field, "first": c.first, "second": c.second}
                       for c in self.config],
            "layers": [{"index": layer.index, "first_diff_id": layer.first_diff_id,
                        "second_diff_id": layer.second_diff_id,
                        "created_by": layer.created_by, "tar_only": layer.tar_only,
                        "more_files": layer.more_files,
                        "files": [{"path": "/" + f.path, "what": list(f.what),
                                   "first": f.first, "second": f.second}
                                  for f in layer.files]}
                       for layer in self.layers],
        }


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[:size - 3] + "..."


# -- config ---------------------------------------------------------------------------------


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key in value:
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _shown(value: Any) -> str:
    return "(none)" if value is _MISSING else _clip(json.dumps(value), 80)


_MISSING = object()


def compare_configs(first: Mapping[str, Any], second: Mapping[str, Any]
                    ) -> list[ConfigDifference]:
    """The leaves of two configs that differ (``rootfs`` left out: layers are compared)."""
    def leaves(config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(_leaves({k: v for k, v in config.items() if k != "rootfs"}))

    a, b = leaves(first), leaves(second)
    keys = list(a) + [key for key in b if key not in a]
    return [ConfigDifference(key, _shown(a.get(key, _MISSING)), _shown(b.get(key, _MISSING)))
            for key in keys if a.get(key, _MISSING) != b.get(key, _MISSING)]


# -- layers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    kind: str
    mode: int
    uid: int
    gid: int
    names: str
    mtime: int
    size: int
    digest: str
    link: str
    xattrs: tuple[tuple[str, str], ...]


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "chardev",
          tarfile.BLKTYPE: "blockdev", tarfile.FIFOTYPE: "fifo"}


def index_layer(path: str) -> tuple[dict[str, _Entry], list[str]]:
    """Every path of a layer tar with its metadata and content digest; and the order."""
    entries: dict[str, _Entry] = {}
    order: list[str] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                name = normalize_member_name(member.name)
                digest = ""
                if member.isreg():
                    handle = tar.extractfile(member)
                    sha = hashlib.sha256()
                    if handle is not None:
                        while chunk := handle.read(CHUNK_SIZE):
                            sha.update(chunk)
                    digest = sha.hexdigest()
                xattrs = tuple(sorted((k, v) for k, v in member.pax_headers.items()
                                      if "xattr." in k))
                entries[name] = _Entry(
                    kind=_KINDS.get(member.type, repr(member.type)), mode=member.mode,
                    uid=member.uid, gid=member.gid, names=f"{member.uname}:{member.gname}",
                    mtime=int(member.mtime), size=member.size, digest=digest,
                    link=member.linkname, xattrs=xattrs)
                order.append(name)
    except tarfile.TarError as exc:
        raise ArchiveError(f"layer {os.path.basename(path)} is not a tar archive: {exc}") \
            from None
    return entries, order


def _entry_difference(name: str, a: _Entry | None, b: _Entry | None) -> FileDifference | None:
    if a is None:
        return FileDifference(name, ("only in second",))
    if b is None:
        return FileDifference(name, ("only in first",))
    what: list[str] = []
    first: list[str] = []
    second: list[str] = []

    def differs(label: str, x: object, y: object, shown: tuple[str, str] | None = None) -> None:
        if x != y:
            what.append(label)
            if shown is not None:
                first.append(shown[0])
                second.append(shown[1])

    differs("type", a.kind, b.kind, (a.kind, b.kind))
    differs("content", (a.digest, a.size), (b.digest, b.size),
            (f"{a.size} bytes sha256:{a.digest[:12]}", f"{b.size} bytes sha256:{b.digest[:12]}")
            if a.kind == "file" and b.kind == "file" else None)
    differs("link", a.link, b.link, (a.link, b.link))
    differs("time", a.mtime, b.mtime, (str(a.mtime), str(b.mtime)))
    differs("mode", a.mode, b.mode, (oct(a.mode), oct(b.mode)))
    differs("owner", (a.uid, a.gid, a.names), (b.uid, b.gid, b.names),
            (f"{a.uid}:{a.gid} {a.names}", f"{b.uid}:{b.gid} {b.names}"))
    differs("xattrs", a.xattrs, b.xattrs)
    if not what:
        return None
    return FileDifference(name, tuple(what), ", ".join(first), ", ".join(second))


def compare_layers(first: str, second: str, limit: int = DEFAULT_LIMIT
                   ) -> tuple[list[FileDifference], int, str | None]:
    """The first ``limit`` differing paths (in path order), how many more, and whether only
    the tar differs (``order``/``headers``)."""
    a, order_a = index_layer(first)
    b, order_b = index_layer(second)
    differences: list[FileDifference] = []
    for name in sorted(set(a) | set(b), key=lambda n: n.split("/")):
        found = _entry_difference(name, a.get(name), b.get(name))
        if found is not None:
            differences.append(found)
    tar_only = None
    if not differences:
        tar_only = "order" if order_a != order_b else "headers"
    return differences[:limit], max(0, len(differences) - limit), tar_only


def _layer_steps(config: Mapping[str, Any]) -> list[str | None]:
    """The ``created_by`` of each layer's history entry (None where unknown)."""
    history = config.get("history")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if not isinstance(history, list):
        return [None] * len(diff_ids)
    steps = [str(item.get("created_by") or "") or None for item in history
             if isinstance(item, dict) and not item.get("empty_layer")]
    return steps if len(steps) == len(diff_ids) else [None] * len(diff_ids)


def compare_archives(first: ImageArchive, second: ImageArchive, *, scratch_dir: str,
                     limit: int = DEFAULT_LIMIT) -> ImageComparison:
    first_id = "sha256:" + hashlib.sha256(first.config_bytes).hexdigest()
    second_id = "sha256:" + hashlib.sha256(second.config_bytes).hexdigest()
    config = compare_configs(first.config, second.config)
    steps = _layer_steps(second.config)
    a_ids, b_ids = first.diff_ids, second.diff_ids
    layers: list[LayerDifference] = []
    os.makedirs(scratch_dir, exist_ok=True)
    for index in range(max(len(a_ids), len(b_ids))):
        a_id = a_ids[index] if index < len(a_ids) else None
        b_id = b_ids[index] if index < len(b_ids) else None
        if a_id == b_id:
            continue
        step = steps[index] if index < len(steps) else None
        if a_id is None or b_id is None:
            layers.append(LayerDifference(index, a_id, b_id, step))
            continue
        files, more, tar_only = compare_layers(
            uncompressed_layer(first.layer_files[index], scratch_dir),
            uncompressed_layer(second.layer_files[index], scratch_dir), limit)
        layers.append(LayerDifference(index, a_id, b_id, step, tuple(files), more, tar_only))
    return ImageComparison(first_id, second_id, tuple(config), tuple(layers))


def compare_images(save: Callable[[str], Iterable[bytes]], first: str, second: str, *,
                   scratch_dir: str, limit: int = DEFAULT_LIMIT) -> ImageComparison:
    """Save both images (``save(image)``: a ``docker save`` tar stream) and compare them."""
    archives: list[ImageArchive] = []
    try:
        for index, image in enumerate((first, second)):
            directory = os.path.join(scratch_dir, f"image{index}")
            safe_extract(save(image), directory)
            archives.append(ImageArchive.open(directory))
        return compare_archives(archives[0], archives[1],
                                scratch_dir=os.path.join(scratch_dir, "plain"), limit=limit)
    finally:
        for index in range(2):
            shutil.rmtree(os.path.join(scratch_dir, f"image{index}"), ignore_errors=True)
        shutil.rmtree(os.path.join(scratch_dir, "plain"), ignore_errors=True)
