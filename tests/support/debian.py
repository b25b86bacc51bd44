"""A Debian bookworm base image for tests, made with debootstrap (no image is pulled).

Kept on the engine between runs as :data:`DEBIAN_IMAGE` (like the busybox base in
:mod:`tests.support.env`); made once, under the engine lock (dockerd:
:func:`ensure_debian_image`; buildah's storage: :func:`ensure_debian_image_buildah`).
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

__all__ = ["DEBIAN_IMAGE", "MIRROR_ENV", "apt_mirror", "ensure_debian_image",
           "ensure_debian_image_buildah", "image_id"]

DEBIAN_IMAGE = "atomic-reactor-test/debian:bookworm-minbase"
#: set to use another Debian mirror for debootstrap (else the machine's apt sources',
#: else debootstrap's default)
MIRROR_ENV = "ATOMIC_REACTOR_TEST_DEBIAN_MIRROR"
_SUITE = "bookworm"
_APT = Path("/etc/apt")


def _one_line_entries(text: str) -> list[tuple[str, list[str]]]:
    """``(uri, suites)`` of the ``deb`` lines of a sources.list file."""
    entries: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=…]
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            entries.append((words[0], [words[1]]))
    return entries


def _deb822_entries(text: str) -> list[tuple[str, list[str]]]:
    """``(uri, suites)`` of the enabled ``deb`` stanzas of a ``.sources`` file."""
    entries: list[tuple[str, list[str]]] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[:1].isspace() and key is not None:  # a continuation line
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        suites = fields.get("suites", "").split()
        entries.extend((uri, suites) for uri in fields.get("uris", "").split())
    return entries


def apt_mirror(apt_dir: Path = _APT) -> str | None:
    """The Debian archive the machine's apt uses (``sources.list`` or
    ``sources.list.d/*.list``/``*.sources``): the first ``deb`` source of a release suite
    (``bookworm``, not ``bookworm-security``/``-updates``); None when there is none."""
    entries: list[tuple[str, list[str]]] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.name == "sources.list" or path.suffix == ".list":
            entries.extend(_one_line_entries(text))
        elif path.suffix == ".sources":
            entries.extend(_deb822_entries(text))
    for uri, suites in entries:
        if uri.startswith(("http://", "https://", "file:/")) and \
                any("-" not in suite and "/" not in suite for suite in suites):
            return uri.rstrip("/")
    return None


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
    mirror = os.environ.get(MIRROR_ENV) or apt_mirror()
    argv = [debootstrap, "--variant=minbase", _SUITE, str(root)]
    if mirror:
        argv.append(mirror)  # else debootstrap's default mirror
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-800:]
        where = mirror or "debootstrap's default mirror"
        raise EnvError(f"debootstrap {_SUITE} from {where} failed:\n{tail}")
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


def ensure_debian_image_buildah() -> str:
    """Id (``sha256:…``) of :data:`DEBIAN_IMAGE` in buildah's storage, made with
    debootstrap (``buildah from scratch`` + ``add`` + ``commit``) when it lacks it."""
    from tests.support.buildah_env import buildah_lock, import_rootfs
    from tests.support.buildah_env import image_id as buildah_image_id

    existing = buildah_image_id(DEBIAN_IMAGE)
    if existing is not None:
        return f"sha256:{existing}"
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-debian-") as scratch:
        tarball = _debootstrap_tarball(Path(scratch))
        with buildah_lock():
            existing = buildah_image_id(DEBIAN_IMAGE)
            if existing is not None:
                return f"sha256:{existing}"
            import_rootfs(tarball, DEBIAN_IMAGE, cmd="/bin/bash")
    made = buildah_image_id(DEBIAN_IMAGE)
    if made is None:
        raise EnvError(f"buildah commit {DEBIAN_IMAGE} reported success but no image exists")
    return f"sha256:{made}"
