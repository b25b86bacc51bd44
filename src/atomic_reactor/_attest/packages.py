"""The packages installed in an image, read from the files of its layers.

The layers are applied bottom up the way an engine does (whiteouts ``.wh.NAME``
delete, an opaque marker ``.wh..wh..opq`` hides what lower layers had in its
directory), but only for the few paths that hold package databases, so nothing is
unpacked but those files and no container runs:

* dpkg: ``/var/lib/dpkg/status`` (and ``/var/lib/dpkg/status.d/*`` of distroless images)
* rpm: ``/var/lib/rpm`` or ``/usr/lib/sysimage/rpm``, queried with the host's
  ``rpm --dbpath`` (bdb, ndb or sqlite databases, as far as the host's rpm reads them)
* apk: ``/lib/apk/db/installed``
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from atomic_reactor._image.compression import uncompressed_layer
from atomic_reactor._image.layout import ImageArchive
from atomic_reactor._image.tarstream import (
    ArchiveError,
    copy_range,
    normalize_member_name,
)
from atomic_reactor.plugins.all_rpm_packages import (
    RPM_QUERY_FORMAT,
    InstalledPackage,
    parse_apk,
    parse_rpm,
    split_debian_version,
)

logger = logging.getLogger(__name__)

__all__ = ["ImagePackages", "LayerStack", "OsRelease", "read_image_packages"]

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_DIR = "var/lib/dpkg/status.d"
RPM_DBS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
APK_DB = "lib/apk/db/installed"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."
#: the largest database file read into memory (the rpm database is copied to disk)
_MAX_TEXT = 256 << 20


@dataclass(frozen=True)
class OsRelease:
    id: str = ""
    version_id: str = ""
    pretty_name: str = ""


@dataclass(frozen=True)
class ImagePackages:
    """The packages of an image: from which ``manager`` (None when there is no database)."""

    manager: str | None
    packages: tuple[InstalledPackage, ...]
    os: OsRelease = field(default_factory=OsRelease)
    architecture: str = ""


class LayerStack:
    """The merged view of an image's layers, for selected paths (bottom layer first)."""

    def __init__(self, layer_files: Sequence[str]) -> None:
        self.layer_files = list(layer_files)
        self._members: list[dict[str, tarfile.TarInfo]] = []
        for path in self.layer_files:
            try:
                with tarfile.open(path, "r:") as tar:
                    members = {normalize_member_name(m.name): m for m in tar.getmembers()}
            except tarfile.TarError as exc:
                raise ArchiveError(f"layer {os.path.basename(path)} is not a tar archive: "
                                   f"{exc}") from None
            members.pop("", None)
            self._members.append(members)

    def tree(self, prefix: str) -> dict[str, tuple[int, tarfile.TarInfo]]:
        """Every path at or under ``prefix`` the image has: ``path -> (layer, member)``."""
        prefix = prefix.strip("/")
        found: dict[str, tuple[int, tarfile.TarInfo]] = {}

        def under(name: str, top: str) -> bool:
            return name == top or name.startswith(top + "/") or not top

        for index, members in enumerate(self._members):
            for name in members:
                base = os.path.basename(name)
                parent = os.path.dirname(name)
                if base == _OPAQUE:  # lower layers' entries of this directory are hidden
                    for gone in [p for p in found if p.startswith(parent + "/")]:
                        del found[gone]
                elif base.startswith(_WHITEOUT):
                    target = os.path.join(parent, base[len(_WHITEOUT):]) if parent \
                        else base[len(_WHITEOUT):]
                    for gone in [p for p in found if under(p, target)]:
                        del found[gone]
            for name, member in members.items():
                base = os.path.basename(name)
                if base.startswith(_WHITEOUT):
                    continue
                if under(name, prefix) or under(prefix, name):
                    if not member.isdir():  # a file replacing a directory drops its tree
                        for gone in [p for p in found if p.startswith(name + "/")]:
                            del found[gone]
                    if under(name, prefix):
                        found[name] = (index, member)
        return found

    def _resolve(self, entry: tuple[int, tarfile.TarInfo]) -> tuple[int, tarfile.TarInfo]:
        index, member = entry
        if member.islnk():
            target = self._members[index].get(normalize_member_name(member.linkname))
            if target is None or not target.isreg():
                raise ArchiveError(f"hard link {member.name!r} to a missing file")
            return index, target
        return index, member

    def read(self, path: str) -> bytes | None:
        """The content of the regular file ``path`` (None if the image has none there)."""
        entry = self.tree(path).get(path.strip("/"))
        if entry is None:
            return None
        index, member = self._resolve(entry)
        if not member.isreg() or member.size > _MAX_TEXT:
            return None
        chunks: list[bytes] = []
        with open(self.layer_files[index], "rb") as handle:
            copy_range(handle.fileno(), member.offset_data, member.size, chunks.append)
        return b"".join(chunks)

    def copy_tree(self, prefix: str, dest: str) -> int:
        """Copy the regular files under ``prefix`` to ``dest``; return how many."""
        count = 0
        prefix = prefix.strip("/")
        for name, entry in sorted(self.tree(prefix).items()):
            index, member = self._resolve(entry)
            if not member.isreg():
                continue
            relative = name[len(prefix):].lstrip("/")
            if not relative or ".." in relative.split("/"):
                continue
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(self.layer_files[index], "rb") as source, open(target, "wb") as out:
                copy_range(source.fileno(), member.offset_data, member.size, out.write)
            count += 1
        return count


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data else ""


def parse_os_release(text: str) -> OsRelease:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip().strip('"').strip("'")
    return OsRelease(id=values.get("ID", ""), version_id=values.get("VERSION_ID", ""),
                     pretty_name=values.get("PRETTY_NAME", ""))


def parse_dpkg_status(text: str) -> list[InstalledPackage]:
    """The installed packages of a dpkg status file (stanzas of ``Field: value`` lines)."""
    packages: list[InstalledPackage] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        current = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                continue  # a continuation line (descriptions, conffiles)
            key, sep, value = line.partition(":")
            if sep:
                current = key.strip()
                fields[current] = value.strip()
        name = fields.get("Package")
        status = fields.get("Status", "").split()
        if not name or status[-1:] != ["installed"]:
            continue
        epoch, version, release = split_debian_version(fields.get("Version", ""))
        size = fields.get("Installed-Size", "")
        packages.append(InstalledPackage(
            name=name, version=version, release=release,
            arch=fields.get("Architecture") or None, epoch=epoch,
            size=int(size) * 1024 if size.isdigit() else None))
    return packages


def _query_rpm(stack: LayerStack) -> list[InstalledPackage] | None:
    rpm = shutil.which("rpm")
    for prefix in RPM_DBS:
        with tempfile.TemporaryDirectory(prefix="atomic-reactor-rpmdb-") as dbpath:
            if stack.copy_tree(prefix, dbpath) == 0:
                continue
            if rpm is None:
                raise ArchiveError(f"the image has an rpm database (/{prefix}) but this host "
                                   "has no rpm program to read it")
            result = subprocess.run(
                [rpm, "--dbpath", dbpath, "-qa", "--qf", RPM_QUERY_FORMAT],
                capture_output=True, text=True, check=False, timeout=300)
            if result.returncode != 0:
                raise ArchiveError(f"rpm could not read the image's database /{prefix}: "
                                   f"{result.stderr.strip()[-300:]}")
            return parse_rpm(result.stdout.splitlines())
    return None


def packages_of(stack: LayerStack) -> tuple[str | None, list[InstalledPackage]]:
    """The package manager whose database the image has, and its packages."""
    rpm = _query_rpm(stack)
    if rpm:
        return "rpm", rpm
    status = stack.read(DPKG_STATUS)
    extra = [stack.read(name) for name in sorted(stack.tree(DPKG_STATUS_DIR))
             if name != DPKG_STATUS_DIR]
    if status is not None or any(extra):
        packages: list[InstalledPackage] = []
        for text in (status, *extra):
            packages.extend(parse_dpkg_status(_text(text)))
        return "dpkg", packages
    apk = stack.read(APK_DB)
    if apk is not None:
        return "apk", parse_apk(_text(apk).splitlines())
    return None, []


def read_image_packages(archive: ImageArchive, scratch_dir: str) -> ImagePackages:
    """The packages of the image in the unpacked ``archive``."""
    layers = [uncompressed_layer(path, scratch_dir) for path in archive.layer_files]
    stack = LayerStack(layers)
    manager, packages = packages_of(stack)
    release = OsRelease()
    for path in OS_RELEASE:
        data = stack.read(path)
        if data is not None:
            release = parse_os_release(_text(data))
            break
    arch = str(archive.config.get("architecture") or "")
    logger.info("%d packages (from %s) in the image", len(packages), manager or "nothing")
    return ImagePackages(manager=manager, packages=tuple(_sorted(packages)), os=release,
                         architecture=arch)


def _sorted(packages: Iterable[InstalledPackage]) -> list[InstalledPackage]:
    return sorted(packages, key=lambda p: (p.name, p.version, p.release or "", p.arch or ""))
