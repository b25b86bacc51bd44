"""``cp_built_image_to_nfs``: copy the exported image to an NFS share or a directory."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._image.hashing import ParallelHasher
from atomic_reactor._image.tarstream import CHUNK_SIZE, normalize_member_name
from atomic_reactor.errors import AtomicReactorError, InputError, PluginConfigError
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["DEFAULT_MOUNTPOINT", "CopiedImage", "CopyBuiltImageToNFSPlugin"]

DEFAULT_MOUNTPOINT = "/atomic-reactor-nfs-mountpoint/"
#: where the kernel lists this process's mounts (tests point it elsewhere)
MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class CopiedImage:
    """One copy: where it went, from where, and its checked size and sha256.

    ``nfs_server`` is the NFS host (None when the target is a plain directory).
    """

    path: str
    source: str
    size: int
    sha256sum: str
    nfs_server: str | None = None


def _unescape(field: str) -> str:
    """Undo the octal escapes of /proc mountinfo (``\\040`` for a space...)."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounted_source(mountpoint: str, mountinfo: str | None = None) -> tuple[str, str] | None:
    """``(source, fstype)`` of what is mounted at ``mountpoint`` (the last mount wins)."""
    wanted = os.path.realpath(mountpoint)
    found = None
    try:
        with open(mountinfo or MOUNTINFO, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if " - " not in line or len(fields) < 5:
                    continue
                before, after = line.rstrip("\n").split(" - ", 1)
                point = _unescape(before.split()[4])
                rest = after.split()
                if point == wanted and len(rest) >= 2:
                    found = (_unescape(rest[1]), rest[0])
    except OSError:
        return None
    return found


def _same_share(a: str, b: str) -> bool:
    def norm(value: str) -> tuple[str, str]:
        host, _, path = value.partition(":")
        return host.strip("[]"), os.path.normpath(path or "/")

    return norm(a) == norm(b)


class CopyBuiltImageToNFSPlugin(PostBuildPlugin):
    """Copy the last exported image into a directory on an NFS share or on any path.

    ``nfs_server_path`` is either ``server:/export`` (an NFS share, which must
    already be mounted at ``mountpoint``: this plugin does not mount anything) or
    an absolute directory path. The file goes into ``dest_dir`` below it (created
    if missing) under its own name; an existing file is never overwritten. The
    copy is written under a temporary name, its sha256 checked against the
    recorded one, synced to disk and only then renamed into place.

    Result: a :class:`CopiedImage` (destination path, source path, size, sha256,
    NFS server).
    """

    key = "cp_built_image_to_nfs"
    per_platform = True
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, nfs_server_path: str,
                 dest_dir: str | None = None, mountpoint: str = DEFAULT_MOUNTPOINT,
                 create_dir: bool = False) -> None:
        """
        :param nfs_server_path: ``server:/path`` of an NFS share mounted at ``mountpoint``, or an absolute path of a directory
        :param dest_dir: subdirectory (relative) to create in the share or directory and copy into; default: its top
        :param mountpoint: where the NFS share is mounted (ignored for a directory path)
        :param create_dir: create the directory ``nfs_server_path`` names when it does not exist
        """  # noqa: E501
        super().__init__(tasker, workflow)
        value = nfs_server_path.strip()
        self.nfs_server: str | None = None
        if value.startswith("/"):
            self.root = os.path.normpath(value)
        elif ":" in value and value.split(":", 1)[0] and value.split(":", 1)[1]:
            self.nfs_server = value.split(":", 1)[0]
            if not mountpoint.strip():
                raise PluginConfigError("plugin cp_built_image_to_nfs: argument 'mountpoint' "
                                        "is empty", plugin=self.key, argument="mountpoint")
            self.root = os.path.normpath(mountpoint)
        else:
            raise PluginConfigError(
                f"plugin cp_built_image_to_nfs: argument 'nfs_server_path': {nfs_server_path!r} "
                "is neither server:/path nor an absolute directory path", plugin=self.key,
                argument="nfs_server_path")
        self.nfs_server_path = value
        self.dest_subdir = ""
        if dest_dir is not None:
            try:
                self.dest_subdir = normalize_member_name(dest_dir, what="dest_dir")
            except AtomicReactorError as exc:
                raise PluginConfigError(
                    f"plugin cp_built_image_to_nfs: argument 'dest_dir' must be a relative path "
                    f"inside the share: {exc}", plugin=self.key, argument="dest_dir") from None
        self.dest_dir = dest_dir
        self.mountpoint = mountpoint
        self.create_dir = create_dir

    def _check_root(self) -> None:
        if self.nfs_server is not None:
            mounted = mounted_source(self.root)
            if mounted is None:
                raise InputError(f"plugin cp_built_image_to_nfs: {self.nfs_server_path} is not "
                                 f"mounted at {self.root}; mount it first (this plugin does "
                                 "not mount)")
            source, fstype = mounted
            if not _same_share(source, self.nfs_server_path):
                raise InputError(f"plugin cp_built_image_to_nfs: {self.root} has {source} "
                                 f"({fstype}) mounted, not {self.nfs_server_path}")
            return
        if not os.path.isdir(self.root):
            if os.path.lexists(self.root) or not self.create_dir:
                raise InputError(f"plugin cp_built_image_to_nfs: {self.root} is not a "
                                 "directory" + ("" if os.path.lexists(self.root) else
                                               " (set create_dir to create it)"))
            os.makedirs(self.root, exist_ok=True)

    def run(self) -> CopiedImage:
        if not self.workflow.exported_image_sequence:
            raise PluginConfigError("plugin cp_built_image_to_nfs: no exported image to copy; "
                                    "run squash (with save_archive) or compress before it",
                                    plugin=self.key)
        exported = self.workflow.exported_image_sequence[-1]
        source = exported.path
        if not os.path.isfile(source):
            raise AtomicReactorError(f"plugin cp_built_image_to_nfs: the exported image "
                                     f"{source} does not exist")
        self._check_root()
        target_dir = os.path.join(self.root, self.dest_subdir) if self.dest_subdir else self.root
        os.makedirs(target_dir, exist_ok=True)
        real_root, real_target = os.path.realpath(self.root), os.path.realpath(target_dir)
        if real_target != real_root and not real_target.startswith(real_root + os.sep):
            raise InputError(f"plugin cp_built_image_to_nfs: {target_dir} leads outside "
                             f"{self.root} (a symbolic link)")
        target = os.path.join(target_dir, os.path.basename(source))
        if os.path.lexists(target):
            raise AtomicReactorError(f"plugin cp_built_image_to_nfs: {target} already exists; "
                                     "not overwriting it")
        self.log.info("copying %s to %s", source, target)
        fd, partial = tempfile.mkstemp(prefix=f".{os.path.basename(source)}.", suffix=".part",
                                       dir=target_dir)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb", buffering=0) as src, \
                    ParallelHasher(("sha256",)) as hasher:
                while chunk := src.read(CHUNK_SIZE):
                    out.write(chunk)
                    hasher.update(chunk)
                out.flush()
                os.fsync(out.fileno())
                digest = hasher.hexdigests()["sha256"]
                size = hasher.size
            if digest != exported.sha256sum or size != exported.size:
                raise AtomicReactorError(
                    f"plugin cp_built_image_to_nfs: the copy of {source} has sha256 {digest} "
                    f"and {size} bytes; the exported image was recorded with "
                    f"{exported.sha256sum} and {exported.size} bytes")
            shutil.copystat(source, partial)
            self._publish(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
        self.log.info("copied %s (%d bytes) to %s", source, size, target)
        return CopiedImage(path=target, source=source, size=size, sha256sum=digest,
                           nfs_server=self.nfs_server)

    @staticmethod
    def _publish(partial: str, target: str) -> None:
        """Give ``partial`` its final name, never replacing a file that appeared meanwhile."""
        try:
            os.link(partial, target)
        except FileExistsError:
            raise AtomicReactorError(f"plugin cp_built_image_to_nfs: {target} appeared while "
                                     "copying; not overwriting it") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                 errno.EMLINK):
                raise
            if os.path.lexists(target):
                raise AtomicReactorError(f"plugin cp_built_image_to_nfs: {target} appeared "
                                         "while copying; not overwriting it") from None
            os.rename(partial, target)
            return
        os.unlink(partial)
