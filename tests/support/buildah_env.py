"""Test environment for the buildah engine: base image, insecure test registries,
and a tracker removing what a test left in buildah's storage.

The counterpart of :mod:`tests.support.env` (which does the same for dockerd).
Everything runs the real ``buildah`` command against the storage the engine under
test uses (``ATOMIC_REACTOR_BUILDAH_ROOT`` etc., default /var/lib/containers/storage);
several test sessions may share that storage, so changes made between a snapshot
and its clean-up are serialised by an inter-process lock of its own (an
:class:`~tests.support.env.EngineLock` keyed by the storage root), and nothing that
existed before a snapshot is ever removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tests.support.env import (
    BASE_IMAGE,
    ENGINE_LOCK_TIMEOUT_ENV,
    CleanupReport,
    EngineCleanupWarning,
    EngineLock,
    EnvError,
    Registry,
    _busybox_binary,
    build_rootfs_tarball,
    docker_config_json,
)
from tests.support.tracker import EngineSnapshot, Gone, RemovalFailed, Tracker, is_image_id

__all__ = [
    "BuildahSnapshot",
    "BuildahTracker",
    "buildah",
    "buildah_available",
    "buildah_lock",
    "ensure_buildah_base_image",
    "image_names",
    "insecure_registries_conf",
    "push_buildah_base_image",
    "warn_buildah_leftovers",
]

_LOCKS: dict[str, EngineLock] = {}


def _global_args() -> list[str]:
    args: list[str] = []
    for env, flag in (("ATOMIC_REACTOR_BUILDAH_ROOT", "--root"),
                      ("ATOMIC_REACTOR_BUILDAH_RUNROOT", "--runroot"),
                      ("ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER", "--storage-driver")):
        value = os.environ.get(env)
        if value:
            args += [flag, value]
    return args


def buildah_available() -> bool:
    return shutil.which("buildah") is not None


def buildah(*args: str, check: bool = True, stdin: bytes | None = None) -> str:
    """Run buildah (with the engine's storage arguments); its stdout."""
    done = subprocess.run(["buildah", *_global_args(), *args], input=stdin,
                          capture_output=True, check=False)
    if check and done.returncode != 0:
        raise EnvError(f"buildah {' '.join(args)} failed: "
                       f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


def buildah_lock() -> EngineLock:
    """The process-wide lock for the buildah storage the tests use."""
    root = os.environ.get("ATOMIC_REACTOR_BUILDAH_ROOT") or "/var/lib/containers/storage"
    key = "atomic-reactor-test-buildah-" + hashlib.sha256(root.encode()).hexdigest()[:16]
    lock = _LOCKS.get(key)
    if lock is None:
        timeout = float(os.environ.get(ENGINE_LOCK_TIMEOUT_ENV) or 900.0)
        lock = _LOCKS[key] = EngineLock(key, timeout)
    return lock


def _local(name: str) -> str:
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"localhost/{name}"


def _images() -> list[tuple[str, list[str], int]]:
    """(id without ``sha256:``, names, creation time) of every image in buildah's storage."""
    listed = json.loads(buildah("images", "--all", "--json", "--no-trunc") or "null") or []
    return [(str(entry["id"]).removeprefix("sha256:"),
             [str(name) for name in entry.get("names") or ()],
             int(entry.get("created") or 0)) for entry in listed]


def image_names() -> dict[str, str]:
    """Every image name in buildah's storage -> its image id."""
    return {name: image for image, names, _ in _images() for name in names}


def _image_ids() -> set[str]:
    return {image for image, _, _ in _images()}


def _container_ids() -> set[str]:
    listed = json.loads(buildah("containers", "--all", "--json") or "null") or []
    return {str(entry["id"]) for entry in listed}


def image_id(name: str) -> str | None:
    done = subprocess.run(["buildah", *_global_args(), "inspect", "--type", "image",
                           "--format", "{{.FromImageID}}", _local(name)],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def import_rootfs(tarball: Path, name: str, *, cmd: str) -> None:
    """Commit the root file system ``tarball`` as image ``name`` with command ``cmd``
    (buildah 1.28 has no ``import``: ``from scratch`` + ``add`` + ``commit``). The
    caller holds :func:`buildah_lock`."""
    container = buildah("from", "--name", f"ar-import-{os.getpid()}", "scratch").strip()
    try:
        buildah("add", container, str(tarball), "/")
        buildah("config", "--cmd", json.dumps([cmd]), container)
        buildah("commit", "-q", "--format", "docker", "--identity-label=false",
                container, _local(name))
    finally:
        buildah("rm", container, check=False)


def ensure_buildah_base_image(name: str = BASE_IMAGE) -> str:
    """Id of the busybox base image ``name`` in buildah's storage, made if missing."""
    existing = image_id(name)
    if existing is not None:
        return existing
    with buildah_lock():
        existing = image_id(name)
        if existing is not None:
            return existing
        with tempfile.TemporaryDirectory(prefix="atomic-reactor-busybox-") as scratch:
            rootfs = Path(scratch) / "rootfs.tar"
            rootfs.write_bytes(build_rootfs_tarball(_busybox_binary(Path(scratch))))
            import_rootfs(rootfs, name, cmd="/bin/sh")
        made = image_id(name)
        if made is None:
            raise EnvError(f"buildah commit {name} reported success but no image exists")
        return made


def push_buildah_base_image(registry: Registry, name: str = BASE_IMAGE) -> str:
    """Push the base image from buildah's storage to ``registry``; return the reference."""
    ensure_buildah_base_image(name)
    reference = f"{registry.address}/{name}"
    args = ["push", "-q", "--format", "v2s2", "--tls-verify=false"]
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-auth-") as private:
        if registry.username and registry.password:
            authfile = Path(private) / "auth.json"
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(docker_config_json([registry]))
            args += ["--authfile", str(authfile)]
        with buildah_lock():
            buildah(*args, _local(name), f"docker://{reference}")
    return reference


def insecure_registries_conf(path: Path, registries: Iterable[Registry]) -> Path:
    """A registries.conf marking the test registries, and every registry on the
    loopback address (any port: tests start registries of their own), plain-HTTP, as
    dockerd treats loopback registries; point ``CONTAINERS_REGISTRIES_CONF`` at it."""
    lines = ["unqualified-search-registries = []", ""]
    for loopback in ("127.0.0.1", "localhost"):
        lines += ["[[registry]]", f'location = "{loopback}"', "insecure = true", ""]
    for registry in registries:
        lines += ["[[registry]]", f'location = "{registry.address}"', "insecure = true", ""]
    path.write_text("\n".join(lines))
    return path


BuildahSnapshot = EngineSnapshot
"""What buildah's storage had at one point (the engine-neutral snapshot)."""


def _normalized(name: str) -> str:
    """``name`` as buildah lists it: ``localhost/`` for an unqualified name, ``:latest``
    when no tag or digest is given."""
    local = _local(name)
    if "@" not in local and local.rfind(":") <= local.rfind("/"):
        local += ":latest"
    return local


class BuildahTracker(Tracker):
    """Remove the containers, names and images a test made in buildah's storage.

    The buildah side of :class:`tests.support.tracker.Tracker` (as
    :class:`tests.support.env.EngineTracker` is for dockerd): :meth:`snapshot` records
    what exists (and takes the buildah lock), :meth:`cleanup` removes what appeared
    since (and releases it). ``protected`` names are never removed.
    """

    def __init__(self, protected: Sequence[str] = (), exclusive: bool = True) -> None:
        super().__init__(protected=protected, lock=buildah_lock() if exclusive else None)

    def state(self) -> EngineSnapshot:
        images = _images()
        return EngineSnapshot(frozenset(image for image, _, _ in images),
                              {name: image for image, names, _ in images for name in names},
                              frozenset(_container_ids()),
                              {image: created for image, _, created in images})

    def normalize(self, ref: str) -> str:
        return _normalized(ref)

    def resolve(self, ref: str) -> str | None:
        if is_image_id(ref):
            wanted = ref.removeprefix("sha256:")
            return next((image for image in _image_ids() if image.startswith(wanted)), None)
        found = image_id(ref)
        return found.removeprefix("sha256:") if found else None

    def remove_container(self, container_id: str) -> None:
        self._run("rm", container_id, exists=lambda: container_id in _container_ids())

    def remove_reference(self, ref: str) -> None:
        self._run("rmi", ref, exists=lambda: ref in image_names())

    def restore_reference(self, ref: str, image_id: str) -> None:
        self._run("tag", image_id, ref, exists=lambda: image_id in _image_ids())

    def remove_image(self, image_id: str) -> None:
        self._run("rmi", image_id, exists=lambda: image_id in _image_ids())

    @staticmethod
    def _run(*args: str, exists: Callable[[], bool]) -> None:
        done = subprocess.run(["buildah", *_global_args(), *args], capture_output=True,
                              text=True, check=False)
        if done.returncode == 0:
            return
        if not exists():
            raise Gone(done.stderr.strip())
        raise RemovalFailed(done.stderr.strip() or f"buildah {args[0]} failed")


def warn_buildah_leftovers(report: CleanupReport, context: str) -> None:
    if not report.ok:
        warnings.warn(f"{context}: could not remove everything from buildah's storage: "
                      f"{report.summary()}", EngineCleanupWarning, stacklevel=2)
