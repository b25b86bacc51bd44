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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


def image_names() -> dict[str, str]:
    """Every image name in buildah's storage -> its image id."""
    listed = json.loads(buildah("images", "--all", "--json", "--no-trunc") or "null") or []
    names: dict[str, str] = {}
    for entry in listed:
        for name in entry.get("names") or ():
            names[str(name)] = str(entry["id"]).removeprefix("sha256:")
    return names


def _image_ids() -> set[str]:
    listed = json.loads(buildah("images", "--all", "--json", "--no-trunc") or "null") or []
    return {str(entry["id"]).removeprefix("sha256:") for entry in listed}


def _container_ids() -> set[str]:
    listed = json.loads(buildah("containers", "--all", "--json") or "null") or []
    return {str(entry["id"]) for entry in listed}


def image_id(name: str) -> str | None:
    done = subprocess.run(["buildah", *_global_args(), "inspect", "--type", "image",
                           "--format", "{{.FromImageID}}", _local(name)],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


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
            container = buildah("from", "--name", f"ar-buildah-base-{os.getpid()}",
                                "scratch").strip()
            try:
                buildah("add", container, str(rootfs), "/")
                buildah("config", "--cmd", '["/bin/sh"]', container)
                buildah("commit", "-q", "--format", "docker", "--identity-label=false",
                        container, _local(name))
            finally:
                buildah("rm", container, check=False)
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


@dataclass(frozen=True)
class BuildahSnapshot:
    image_ids: frozenset[str]
    names: dict[str, str] = field(default_factory=dict)
    container_ids: frozenset[str] = frozenset()


class BuildahTracker:
    """Remove the containers, names and images a test made in buildah's storage.

    Like :class:`tests.support.env.EngineTracker`: :meth:`snapshot` records what
    exists (and takes the buildah lock), :meth:`cleanup` removes what appeared since
    (and releases it). ``protected`` names are never removed.
    """

    def __init__(self, protected: Sequence[str] = (), exclusive: bool = True) -> None:
        self.protected = frozenset(_local(name) for name in protected)
        self._lock = buildah_lock() if exclusive else None
        self._locked = False
        self._snapshot: BuildahSnapshot | None = None
        self._tracked: list[str] = []
        self._tracked_containers: list[str] = []

    def state(self) -> BuildahSnapshot:
        return BuildahSnapshot(frozenset(_image_ids()), image_names(),
                               frozenset(_container_ids()))

    def snapshot(self) -> BuildahSnapshot:
        if self._lock is not None and not self._locked:
            self._lock.acquire()
            self._locked = True
        try:
            self._snapshot = self.state()
        except BaseException:
            self.close()
            raise
        return self._snapshot

    def track_image(self, ref: str) -> None:
        self._tracked.append(ref)

    def track_container(self, container_id: str) -> None:
        """Remove this container on cleanup even if it predates the snapshot."""
        self._tracked_containers.append(container_id)

    def close(self) -> None:
        if self._lock is not None and self._locked:
            self._locked = False
            self._lock.release()

    def cleanup(self) -> CleanupReport:
        before = self._snapshot
        if before is None:
            raise RuntimeError("BuildahTracker.cleanup() called before snapshot()")
        report = CleanupReport()
        try:
            present = _container_ids()
            for container in sorted((present - before.container_ids)
                                    | (set(self._tracked_containers) & present)):
                buildah("rm", container, check=False)
                report.removed_containers.append(container)
            now = image_names()
            doomed = {name for name in now if name not in before.names}
            doomed |= {_local(ref) for ref in self._tracked if _local(ref) in now}
            for name in sorted(doomed - self.protected):
                old = before.names.get(name)
                if old is not None and old != now[name]:
                    buildah("tag", old, name, check=False)  # moved: move it back
                    report.restored_references.append(name)
                    continue
                keep_image = now[name] in before.image_ids and not any(
                    target == now[name] and other not in doomed for other, target in now.items())
                if keep_image:
                    report.leftovers.append(f"reference {name}: kept, removing it would delete "
                                            f"image {now[name][:12]} which existed before")
                    continue
                buildah("rmi", name, check=False)
                report.removed_references.append(name)
            # new images (intermediate --layers images too), children first
            for _round in range(5):
                pending = _image_ids() - before.image_ids
                if not pending:
                    break
                for image in sorted(pending):
                    done = subprocess.run(["buildah", *_global_args(), "rmi", image],
                                          capture_output=True, check=False)
                    if done.returncode == 0:
                        report.removed_images.append(image)
            for image in sorted(_image_ids() - before.image_ids):
                report.leftovers.append(f"image {image[:12]}: could not be removed")
        finally:
            self._tracked.clear()
            self._tracked_containers.clear()
            self._snapshot = None
            self.close()
        return report


def warn_buildah_leftovers(report: CleanupReport, context: str) -> None:
    if not report.ok:
        warnings.warn(f"{context}: could not remove everything from buildah's storage: "
                      f"{report.summary()}", EngineCleanupWarning, stacklevel=2)
