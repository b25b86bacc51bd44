"""Session fixtures for builds in build containers: the Debian base and the build images.

``debian_base``: a Debian bookworm ``minbase`` root filesystem made with
``debootstrap`` on this host (about 30 s) and imported as
``atomic-reactor-test/debian:bookworm-minbase``; it stays on the engine between runs
(like the busybox base image) and is shared with the plugin tests' Debian fixtures.

``reactor_wheels``: this checkout and its dependencies as wheels (``pip wheel``, a
few seconds), made once per session.

``hostdocker_build_image`` / ``privileged_build_image``: the images of
``images/dockerhost-builder`` and ``images/privileged-builder`` made from those, tagged
``atomic-reactor-test/<name>:<key>``, where the key is a digest of the build context
(wheel contents, Dockerfile) and the base image's id: a rerun with the same code
reuses them; a changed checkout builds new ones (with the engine's layer cache, so
only the wheel layer is redone) and removes the older tags of that repository.

Everything that changes the engine here holds the engine lock, so concurrent test
sessions neither see these images as their own nor remove their build containers.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from atomic_reactor._buildcontainer.image import context_digest, create_build_image, make_wheels
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError
from tests.integration.helpers import REPO_ROOT
from tests.support.debian import DEBIAN_IMAGE, ensure_debian_image
from tests.support.debian import image_id as _image_id
from tests.support.env import EnvError, engine_lock

BUILDERS = {
    "hostdocker": ("images/dockerhost-builder", "atomic-reactor-test/dockerhost-builder"),
    "privileged": ("images/privileged-builder", "atomic-reactor-test/privileged-builder"),
}


@dataclass(frozen=True)
class BuildImageInfo:
    """A build image made for the tests (``image`` is its tag)."""

    method: str
    image: str
    image_id: str
    rebuilt: bool


@pytest.fixture(scope="session")
def debian_base(engine: docker.APIClient) -> str:
    """Debian bookworm minbase (local as :data:`DEBIAN_IMAGE`); returns its image id."""
    try:
        return ensure_debian_image(engine)
    except (EnvError, docker.errors.APIError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot provide {DEBIAN_IMAGE}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def reactor_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout and its dependencies as wheels (made once per session)."""
    directory = tmp_path_factory.mktemp("wheels")
    try:
        make_wheels(str(directory), reactor_local_path=str(REPO_ROOT))
    except AtomicReactorError as exc:
        pytest.fail(f"cannot make the wheels: {exc}", pytrace=False)
    return directory


def _key(method: str, wheels: Path, base_id: str) -> str:
    dockerfile_dir, _ = BUILDERS[method]
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-key-") as scratch:
        context = Path(scratch, "context")
        shutil.copytree(REPO_ROOT / dockerfile_dir, context)
        shutil.copytree(wheels, context / "wheels")
        digest = context_digest(str(context), {"BASE_IMAGE": DEBIAN_IMAGE})
    return hashlib.sha256(f"{digest} {base_id}".encode()).hexdigest()[:16]


def _remove_stale(api: docker.APIClient, repository: str, keep: str) -> None:
    for entry in api.images(name=repository) or []:
        for ref in entry.get("RepoTags") or []:
            if ref != keep and ref.startswith(f"{repository}:"):
                # in use by a concurrent session: left for a later run
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_image(ref)


def _provide(method: str, api: docker.APIClient, wheels: Path, base_id: str) -> BuildImageInfo:
    dockerfile_dir, repository = BUILDERS[method]
    tag = f"{repository}:{_key(method, wheels, base_id)}"
    existing = _image_id(api, tag)
    if existing is not None:
        return BuildImageInfo(method, tag, existing, rebuilt=False)
    with engine_lock():
        existing = _image_id(api, tag)
        if existing is not None:
            return BuildImageInfo(method, tag, existing, rebuilt=False)
        built = create_build_image(str(REPO_ROOT / dockerfile_dir), tag, use_cache=True,
                                   base_image=DEBIAN_IMAGE, wheel_dir=str(wheels),
                                   tasker=DockerTasker(timeout=900))
        _remove_stale(api, repository, tag)
    return BuildImageInfo(method, tag, built.image_id, rebuilt=True)


def _fixture(method: str, engine: docker.APIClient, wheels: Path, base_id: str
             ) -> BuildImageInfo:
    try:
        return _provide(method, engine, wheels, base_id)
    except AtomicReactorError as exc:
        pytest.fail(f"cannot make the {method} build image: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def hostdocker_build_image(engine: docker.APIClient, reactor_wheels: Path, debian_base: str
                           ) -> BuildImageInfo:
    """The ``images/dockerhost-builder`` build image of this checkout."""
    return _fixture("hostdocker", engine, reactor_wheels, debian_base)


@pytest.fixture(scope="session")
def privileged_build_image(engine: docker.APIClient, reactor_wheels: Path, debian_base: str
                           ) -> BuildImageInfo:
    """The ``images/privileged-builder`` build image of this checkout."""
    return _fixture("privileged", engine, reactor_wheels, debian_base)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR of the test's own, so tests can check nothing was left in it."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
