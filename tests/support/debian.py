"""A Debian bookworm base image for tests, made with debootstrap (no image is pulled).

Kept on the engine between runs as :data:`DEBIAN_IMAGE` (like the busybox base in
:mod:`tests.support.env`); made once, under the engine lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from tests.support.env import EnvError, check_stream, engine_lock, split_reference

__all__ = ["DEBIAN_IMAGE", "DEFAULT_MIRROR", "MIRROR_ENV", "ensure_debian_image", "image_id"]

DEBIAN_IMAGE = "atomic-reactor-test/debian:bookworm-minbase"
#: set to use another Debian mirror for debootstrap
MIRROR_ENV = "ATOMIC_REACTOR_TEST_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_SUITE = "bookworm"


def image_id(api: docker.APIClient, ref: str) -> str | None:
    try:
        return str(api.inspect_image(ref)["Id"])
    except docker.errors.NotFound:
        return None


def _ensure_debootstrap() -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EnvError("debootstrap is missing: install the Debian package debootstrap "
                       "(bash scripts/ensure-env.sh as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"]):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise EnvError(f"{' '.join(argv)} failed: {result.stderr.strip()[-500:]}")
    found = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(found).exists():
        raise EnvError("apt-get installed debootstrap, but it is not on PATH")
    return found


def _debootstrap_tarball(scratch: Path) -> Path:
    """A tarball of a fresh bookworm minbase root filesystem."""
    debootstrap = _ensure_debootstrap()
    root = scratch / "rootfs"
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    result = subprocess.run(
        [debootstrap, "--variant=minbase", _SUITE, str(root), mirror],
        capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-800:]
        raise EnvError(f"debootstrap {_SUITE} from {mirror} failed:\n{tail}")
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    tarball = scratch / "rootfs.tar"
    result = subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tarball),
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EnvError(f"packing the debootstrap root failed: {result.stderr.strip()[-500:]}")
    shutil.rmtree(root, ignore_errors=True)
    return tarball


def ensure_debian_image(api: docker.APIClient) -> str:
    """Id of :data:`DEBIAN_IMAGE`, creating it with debootstrap when the engine lacks it."""
    existing = image_id(api, DEBIAN_IMAGE)
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-debian-") as scratch:
        tarball = _debootstrap_tarball(Path(scratch))
        repository, tag = split_reference(DEBIAN_IMAGE)
        with engine_lock():
            existing = image_id(api, DEBIAN_IMAGE)
            if existing is not None:
                return existing
            output = api.import_image(src=str(tarball), repository=repository, tag=tag,
                                      changes=['CMD ["/bin/bash"]'])
            check_stream([output], f"docker import {DEBIAN_IMAGE}")
    made = image_id(api, DEBIAN_IMAGE)
    if made is None:
        raise EnvError(f"docker import {DEBIAN_IMAGE} reported success but no image exists")
    return made
