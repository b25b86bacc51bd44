"""``create-build-image``: a build image (an image with atomic-reactor in it).

The build context is a copy of a Dockerfile directory (``images/dockerhost-builder``,
``images/privileged-builder``) plus ``wheels/``: atomic-reactor and its Python
dependencies as wheels, made on this host with ``pip wheel`` (the host reaches PyPI;
the build's containers need not). The Dockerfile installs them offline
(``pip install --no-index --find-links /wheels atomic-reactor``).

atomic-reactor comes from one of: a checkout (``reactor_local_path``), an sdist or
other archive pip understands (``reactor_tarball_path``), or a git repository cloned
first (``reactor_remote_git``, optionally ``URL@REF``). Without any, the checkout this
package runs from is used, when it runs from one.

The image is labelled ``io.atomic-reactor.build-image.digest`` with a digest of the
context's content (wheel members, not their time stamps) and the build arguments,
so callers can tell whether an existing image is current.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomic_reactor.errors import (
    BuildFailed,
    DockerfileError,
    InputError,
    SourceError,
)

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker

__all__ = [
    "DIGEST_LABEL",
    "BuildImage",
    "context_digest",
    "create_build_image",
    "make_wheels",
    "prepare_context",
]

logger = logging.getLogger(__name__)

DIGEST_LABEL = "io.atomic-reactor.build-image.digest"
WHEELS_DIR = "wheels"
_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", "example-output")
_PIP_TIMEOUT = 900


@dataclass(frozen=True)
class BuildImage:
    """A build image made by :func:`create_build_image`."""

    image: str
    image_id: str
    digest: str


def _own_checkout() -> str | None:
    """The source checkout this package runs from (src layout), if it is one."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        if 'name = "atomic-reactor"' in pyproject.read_text(encoding="utf-8"):
            return str(root)
    except OSError:
        pass
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR:") or "error" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def _pip_wheel(target: str, wheel_dir: str, python: str) -> None:
    command = [python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input",
               "--wheel-dir", wheel_dir, target]
    logger.info("making wheels: %s", " ".join(command[1:]))
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=_PIP_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise InputError(f"cannot make wheels: {python} does not exist") from None
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"pip wheel {target} timed out after {_PIP_TIMEOUT} s") from None
    logger.debug("pip wheel output:\n%s%s", result.stdout, result.stderr)
    if result.returncode != 0:
        raise BuildFailed(f"pip wheel {target} failed (exit {result.returncode}): "
                          f"{_last_line(result.stderr or result.stdout)}")


def make_wheels(wheel_dir: str, *, reactor_local_path: str | None = None,
                reactor_tarball_path: str | None = None, reactor_remote_git: str | None = None,
                python: str | None = None) -> list[str]:
    """Put atomic-reactor and its dependencies into ``wheel_dir`` as wheels; their names."""
    given = [name for name, value in (("--reactor-local-path", reactor_local_path),
                                      ("--reactor-tarball-path", reactor_tarball_path),
                                      ("--reactor-remote-git", reactor_remote_git)) if value]
    if len(given) > 1:
        raise InputError(f"give one source of atomic-reactor, not {' and '.join(given)}")
    python = python or sys.executable
    os.makedirs(wheel_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-wheels-") as scratch:
        if reactor_tarball_path:
            path = os.path.abspath(reactor_tarball_path)
            if not os.path.isfile(path):
                raise SourceError(f"atomic-reactor archive {path} does not exist")
            target = path
        elif reactor_remote_git:
            target = _clone(reactor_remote_git, scratch)
        else:
            local = reactor_local_path or _own_checkout()
            if local is None:
                raise InputError("say where atomic-reactor comes from: --reactor-local-path, "
                                 "--reactor-tarball-path or --reactor-remote-git")
            target = _copy_checkout(local, scratch)
        _pip_wheel(target, wheel_dir, python)
    wheels = sorted(name for name in os.listdir(wheel_dir) if name.endswith(".whl"))
    if not any(name.startswith("atomic_reactor-") for name in wheels):
        raise BuildFailed("pip made no atomic_reactor wheel: is that atomic-reactor?")
    return wheels


def _copy_checkout(path: str, scratch: str) -> str:
    """A copy of the checkout to build from (a build must not write into the user's tree)."""
    source = os.path.abspath(path)
    if not os.path.isdir(source):
        raise SourceError(f"atomic-reactor checkout {source} is not a directory")
    if not any(os.path.isfile(os.path.join(source, name))
               for name in ("pyproject.toml", "setup.py")):
        raise SourceError(f"{source} is not an atomic-reactor checkout "
                          "(no pyproject.toml or setup.py)")
    target = os.path.join(scratch, "atomic-reactor")
    shutil.copytree(source, target, symlinks=True, ignore=_COPY_IGNORE)
    return target


def _clone(url: str, scratch: str) -> str:
    from atomic_reactor._git import git_error_line, run_git

    repo, ref = url, None
    if "@" in url.rsplit("/", 1)[-1]:
        repo, _, ref = url.rpartition("@")
    target = os.path.join(scratch, "atomic-reactor")
    args = ["clone", "--quiet", "--depth", "1"]
    if ref:
        args += ["--branch", ref]
    result = run_git([*args, "--", repo, target], cwd=scratch, timeout=_PIP_TIMEOUT,
                     context=f"cloning {repo}")
    if not result.ok:
        raise SourceError(f"cloning atomic-reactor from {repo} failed: "
                          f"{git_error_line(result)}")
    return target


def _hash_file(digest: Any, path: Path, name: str) -> None:
    digest.update(f"file {name}\n".encode())
    if path.suffix == ".whl":
        # the members, not the archive: zip time stamps differ between identical builds
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(f"member {info.filename}\n".encode())
                digest.update(hashlib.sha256(archive.read(info)).digest())
        return
    digest.update(hashlib.sha256(path.read_bytes()).digest())


def context_digest(context: str, buildargs: Mapping[str, str] | None = None) -> str:
    """sha256 over the context's files (wheels by content) and the build arguments."""
    digest = hashlib.sha256()
    root = Path(context)
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"link {name} {os.readlink(path)}\n".encode())
        else:
            _hash_file(digest, path, name)
    for key, value in sorted((buildargs or {}).items()):
        digest.update(f"arg {key}={value}\n".encode())
    return "sha256:" + digest.hexdigest()


def prepare_context(dockerfile_dir: str, context: str, *, wheel_dir: str | None = None,
                    **sources: Any) -> None:
    """Fill ``context``: the Dockerfile directory's files plus ``wheels/``.

    ``wheel_dir`` reuses wheels made before (:func:`make_wheels`); otherwise they are
    made from ``sources`` (``reactor_local_path`` …).
    """
    directory = os.path.abspath(dockerfile_dir)
    if not os.path.isfile(os.path.join(directory, "Dockerfile")):
        raise DockerfileError(f"{directory} has no Dockerfile")
    shutil.copytree(directory, context, symlinks=True, dirs_exist_ok=True)
    wheels = os.path.join(context, WHEELS_DIR)
    if wheel_dir is not None:
        shutil.copytree(wheel_dir, wheels, dirs_exist_ok=True)
    else:
        make_wheels(wheels, **sources)


def create_build_image(
    dockerfile_dir: str,
    image: str,
    *,
    reactor_local_path: str | None = None,
    reactor_tarball_path: str | None = None,
    reactor_remote_git: str | None = None,
    use_cache: bool = False,
    base_image: str | None = None,
    wheel_dir: str | None = None,
    tasker: DockerTasker | None = None,
) -> BuildImage:
    """Build ``image`` from ``dockerfile_dir`` with atomic-reactor installed in it.

    ``base_image`` is passed as the build argument ``BASE_IMAGE``. The engine's build
    output is logged as build output.
    """
    from atomic_reactor._reference import ImageName
    from atomic_reactor.build import output_logger

    target = ImageName.parse(image)
    buildargs = {"BASE_IMAGE": base_image} if base_image else {}
    if tasker is None:
        from atomic_reactor.core import DockerTasker

        tasker = DockerTasker()
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-build-image-") as scratch:
        context = os.path.join(scratch, "context")
        prepare_context(dockerfile_dir, context, wheel_dir=wheel_dir,
                        reactor_local_path=reactor_local_path,
                        reactor_tarball_path=reactor_tarball_path,
                        reactor_remote_git=reactor_remote_git)
        digest = context_digest(context, buildargs)
        with open(os.path.join(context, "Dockerfile"), "a", encoding="utf-8") as handle:
            handle.write(f'\nLABEL "{DIGEST_LABEL}"="{digest}"\n')
        logger.info("building the build image %s from %s", target, dockerfile_dir)

        def show(event: Any) -> None:
            if event.message and event.message.strip():
                output_logger.info(event.message.rstrip("\n"))

        try:
            built = tasker.build_image(context, target, use_cache=use_cache,
                                       buildargs=buildargs, on_event=show)
        except BuildFailed as exc:
            raise BuildFailed(f"building the build image {target} failed: {exc}") from None
    logger.info("built the build image %s (%s)", target, built.image_id)
    return BuildImage(image=str(target), image_id=built.image_id, digest=digest)
