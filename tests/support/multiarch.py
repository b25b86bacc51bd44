"""Multi-arch test bases: busybox for amd64 and arm64, pushed as a manifest list.

Each platform's image is Debian's ``busybox-static`` for that architecture (the
.deb is downloaded once with ``apt-get download busybox-static:ARCH`` and cached
under ``$ATOMIC_REACTOR_TEST_CACHE``, default ``~/.cache/atomic-reactor-tests``),
made into a one-layer image whose config names the architecture, and uploaded to a
fixture registry with the project's own registry client: blobs, one manifest per
platform, then a Docker manifest list or an OCI index over them. Nothing is pulled
from the internet; the arm64 binary runs here under QEMU user emulation (binfmt_misc,
set up by ``scripts/ensure-env.sh``).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from atomic_reactor._engine.types import Platform
from atomic_reactor._registry.client import RegistryClient, sha256_digest
from atomic_reactor._registry.manifest_list import (
    DOCKER_MANIFEST,
    LIST_TYPES,
    OCI_MANIFEST,
    ManifestListEntry,
    PushedManifestList,
    push_manifest_list,
    select_platform,
)
from tests.support.env import EnvError, Registry, build_rootfs_tarball

__all__ = [
    "AMD64",
    "ARM64",
    "CACHE_ENV",
    "MultiArchBase",
    "busybox_for",
    "emulation_available",
    "image_config",
    "push_multiarch_base",
    "push_platform_image",
    "read_image_file",
]

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
CACHE_ENV = "ATOMIC_REACTOR_TEST_CACHE"
"""Directory where downloaded .debs are kept between test runs."""

_DEB_ARCH = {"amd64": "amd64", "arm64": "arm64"}
_QEMU = {"arm64": "qemu-aarch64"}
_CREATED = "2023-11-14T22:13:20Z"  # fixed: the same rootfs gives the same image


def _cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "atomic-reactor-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time downloads (several test sessions share the cache)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args: Sequence[str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EnvError(f"{what} failed (exit {done.returncode}): "
                       f"{(done.stderr or done.stdout).strip()[-400:]}")


def _foreign_ready(arch: str) -> None:
    """Make apt know ``arch`` (dpkg --add-architecture + apt-get update), once."""
    host = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=False).stdout.strip()
    if arch == host:
        return
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                             text=True, check=False).stdout.split()
    if arch in foreign:
        probe = subprocess.run(["apt-cache", "policy", f"busybox-static:{arch}"],
                               capture_output=True, text=True, check=False)
        if "Candidate:" in probe.stdout and "(none)" not in probe.stdout:
            return
    if os.geteuid() != 0:
        raise EnvError(f"apt does not know {arch} packages; as root run "
                       f"`dpkg --add-architecture {arch} && apt-get update`")
    if arch not in foreign:
        _run(["dpkg", "--add-architecture", arch], f"dpkg --add-architecture {arch}")
    _run(["apt-get", "update", "-q"], "apt-get update")


def _cached_deb(arch: str) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise EnvError("making the multi-arch base needs apt-get and dpkg-deb (Debian)")
    cache = _cache_dir() / "debs"
    cache.mkdir(exist_ok=True)
    with _locked(cache / ".lock"):
        found = sorted(cache.glob(f"busybox-static_*_{_DEB_ARCH[arch]}.deb"))
        if found:
            return found[-1]
        _foreign_ready(_DEB_ARCH[arch])
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            _run(["apt-get", "download", f"busybox-static:{_DEB_ARCH[arch]}"],
                 f"apt-get download busybox-static:{arch}", cwd=Path(scratch))
            debs = sorted(Path(scratch).glob("busybox-static_*.deb"))
            if not debs:
                raise EnvError(f"apt-get download busybox-static:{arch} left no .deb")
            target = cache / debs[0].name.replace("%3a", "_")
            shutil.move(str(debs[0]), target)
            return target


def busybox_for(platform: Platform) -> Path:
    """A static busybox binary for ``platform`` (extracted from the cached .deb)."""
    arch = platform.architecture
    if arch not in _DEB_ARCH:
        raise EnvError(f"no busybox for {platform} in the test set-up")
    deb = _cached_deb(arch)
    extracted = deb.with_suffix("")
    binary = extracted / "bin" / "busybox"
    if not binary.is_file():
        with _locked(deb.with_suffix(".lock")):
            if not binary.is_file():
                partial = Path(tempfile.mkdtemp(dir=deb.parent))
                _run(["dpkg-deb", "-x", str(deb), str(partial)], f"dpkg-deb -x {deb.name}")
                partial.rename(extracted)
    if not binary.is_file():
        raise EnvError(f"{deb.name} has no bin/busybox")
    return binary


def emulation_available(platform: Platform) -> bool:
    """Can binaries of ``platform`` run here (natively or through binfmt_misc)?"""
    if platform == Platform.host():
        return True
    name = _QEMU.get(platform.architecture)
    if name is None:
        return False
    entry = Path("/proc/sys/fs/binfmt_misc") / name
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def _applets(busybox: Path) -> list[str]:
    # the foreign binary may not run (no emulation): the applet list of the host's
    # busybox-static is the same package, the same list
    for candidate in (busybox, Path("/bin/busybox")):
        done = subprocess.run([str(candidate), "--list"], capture_output=True, text=True,
                              check=False)
        if done.returncode == 0 and done.stdout.strip():
            return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})
    raise EnvError(f"cannot list the applets of {busybox}")


def image_config(platform: Platform, diff_id: str, labels: dict[str, str] | None = None
                 ) -> bytes:
    """An image config for a one-layer image of ``platform``."""
    config: dict[str, object] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": _CREATED,
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"],
                   "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _CREATED, "created_by": "atomic-reactor tests: busybox-static"}],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return json.dumps(config, sort_keys=True).encode("utf-8")


def push_platform_image(client: RegistryClient, repository: str, platform: Platform,
                        oci: bool = False) -> ManifestListEntry:
    """Upload busybox for ``platform`` (layer, config, manifest by digest) to
    ``repository``; return its list entry."""
    busybox = busybox_for(platform)
    rootfs = build_rootfs_tarball(busybox, _applets(busybox))
    diff_id = sha256_digest(rootfs)
    layer = gzip.compress(rootfs, compresslevel=6, mtime=0)
    layer_digest = client.upload_blob(repository, layer)
    config = image_config(platform, diff_id, {"org.example.platform": str(platform)})
    config_digest = client.upload_blob(repository, config)
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip" if oci else \
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    config_type = "application/vnd.oci.image.config.v1+json" if oci else \
        "application/vnd.docker.container.image.v1+json"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": config_type, "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": layer_type, "size": len(layer), "digest": layer_digest}],
    }, indent=3).encode("utf-8")
    digest = client.put_manifest(repository, sha256_digest(manifest), manifest, media_type)
    return ManifestListEntry(digest=digest, platform=platform, media_type=media_type,
                             size=len(manifest))


@dataclass(frozen=True)
class MultiArchBase:
    """A multi-arch base in a registry: ``reference`` names its list."""

    registry: Registry
    repository: str
    tag: str
    pushed: PushedManifestList

    @property
    def reference(self) -> str:
        return f"{self.registry.address}/{self.repository}:{self.tag}"

    @property
    def digests(self) -> dict[Platform, str]:
        return {entry.platform: entry.digest for entry in self.pushed.entries}


def push_multiarch_base(registry: Registry, repository: str, tag: str = "latest",
                        platforms: Sequence[Platform] = (AMD64, ARM64),
                        oci: bool = False) -> MultiArchBase:
    """busybox for each of ``platforms`` in ``registry`` as ``repository:tag``: a Docker
    manifest list (``oci=False``) or an OCI index over OCI manifests (``oci=True``)."""
    with RegistryClient(registry.address, insecure=True) as client:
        entries = [push_platform_image(client, repository, p, oci=oci) for p in platforms]
        pushed = push_manifest_list(registry.address, repository, [tag], entries,
                                    client=client)
    return MultiArchBase(registry=registry, repository=repository, tag=tag, pushed=pushed)


def read_image_file(client: RegistryClient, repository: str, reference: str,
                    platform: Platform | None, path: str) -> tuple[str, bytes]:
    """``(config architecture, content of path)`` of an image in the registry, read
    from its blobs (the top-most layer holding ``path`` wins). ``reference`` may name a
    list (``platform`` then picks the entry) or one image."""
    raw = client.get_manifest_raw(repository, reference)
    document = json.loads(raw.body)
    if raw.media_type in LIST_TYPES:
        if platform is None:
            raise EnvError(f"{repository}:{reference} is a list: name a platform")
        entry = select_platform(document, platform)
        if entry is None:
            raise EnvError(f"{repository}:{reference} has no {platform} entry")
        document = json.loads(client.get_manifest_raw(repository, entry.digest).body)
    config = json.loads(client.get_blob(repository, document["config"]["digest"]))
    wanted = path.lstrip("/")
    for layer in reversed(document["layers"]):
        blob = client.get_blob(repository, layer["digest"])
        if hashlib.sha256(blob).hexdigest() != layer["digest"].split(":", 1)[1]:
            raise EnvError(f"layer {layer['digest']} does not match its digest")
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as archive:
            for member in archive.getmembers():
                if member.name.lstrip("./") == wanted and member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        return str(config.get("architecture", "")), handle.read()
    raise EnvError(f"{path} is in no layer of {repository}:{reference}")
