"""Session fixtures: Debian based test images (for package-list tests).

``debian_base_image``: a Debian bookworm ``minbase`` root filesystem made with
``debootstrap`` on the host (about 30 s, once per host: the image is kept in the
engine as ``atomic-reactor-test/debian:bookworm-minbase`` and reused), pushed to
the session ``registry``.

``debian_rpm_image``: that image plus Debian's ``rpm`` package (installed from
Debian's mirror inside a build), kept as ``atomic-reactor-test/debian-rpm:bookworm``
and pushed to ``registry``.

In the buildah pass the same images are made in buildah's storage (``buildah from
scratch`` for the root file system, the buildah engine for the rpm layer) and pushed
from there.

Import the fixtures into a test module to use them::

    from tests.integration.plugins.debian_fixtures import debian_base_image  # noqa: F401

``debootstrap`` is installed with apt-get when missing (root only); otherwise the
fixture fails with what to install. ``ATOMIC_REACTOR_TEST_DEBIAN_MIRROR`` overrides
the mirror (default http://deb.debian.org/debian).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError
from tests.support.buildah_env import buildah_lock, push_buildah_base_image
from tests.support.buildah_env import image_id as buildah_image_id
from tests.support.debian import DEBIAN_IMAGE, ensure_debian_image, ensure_debian_image_buildah
from tests.support.debian import image_id as _image_id
from tests.support.env import (
    EnvError,
    Registry,
    check_stream,
    engine_client,
    engine_lock,
    split_reference,
)

DEBIAN_RPM_IMAGE = "atomic-reactor-test/debian-rpm:bookworm"


@dataclass(frozen=True)
class PushedTestImage:
    """A test image, local as ``.local`` and pushed to ``registry`` as ``.repo``."""

    local: str
    repo: str
    registry: Registry
    image_id: str

    @property
    def pushed(self) -> str:
        return f"{self.registry.address}/{self.repo}"


_RPM_DOCKERFILE = textwrap.dedent(f"""\
    FROM {DEBIAN_IMAGE}
    RUN apt-get update -q \\
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rpm \\
     && rm -rf /var/lib/apt/lists/*
    """)


def ensure_debian_rpm_image(api: docker.APIClient) -> str:
    """Id of :data:`DEBIAN_RPM_IMAGE` (Debian + its ``rpm`` package), building it if needed."""
    existing = _image_id(api, DEBIAN_RPM_IMAGE)
    if existing is not None:
        return existing
    ensure_debian_image(api)
    dockerfile = _RPM_DOCKERFILE
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-debian-rpm-") as context, \
            engine_lock():
        existing = _image_id(api, DEBIAN_RPM_IMAGE)
        if existing is not None:
            return existing
        Path(context, "Dockerfile").write_text(dockerfile)
        stream = api.build(path=context, tag=DEBIAN_RPM_IMAGE, rm=True, forcerm=True,
                           decode=True, pull=False)
        check_stream(stream, f"building {DEBIAN_RPM_IMAGE}")
    image_id = _image_id(api, DEBIAN_RPM_IMAGE)
    if image_id is None:
        raise EnvError(f"building {DEBIAN_RPM_IMAGE} reported success but no image exists")
    return image_id


def push_test_image(api: docker.APIClient, registry: Registry, name: str) -> None:
    """Push local ``name`` to ``registry`` (the registry-prefixed tag is removed again)."""
    repository, tag = split_reference(name)
    target = f"{registry.address}/{repository}"
    with engine_lock():
        api.tag(name, target, tag, force=True)
        try:
            stream = api.push(target, tag=tag, stream=True, decode=True,
                              auth_config=registry.auth_config)
            check_stream(stream, f"push {target}:{tag}")
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_image(f"{target}:{tag}", noprune=True)


def ensure_debian_rpm_image_buildah() -> str:
    """:func:`ensure_debian_rpm_image` in buildah's storage (built by the buildah engine)."""
    existing = buildah_image_id(DEBIAN_RPM_IMAGE)
    if existing is not None:
        return f"sha256:{existing}"
    ensure_debian_image_buildah()
    with tempfile.TemporaryDirectory(prefix="atomic-reactor-debian-rpm-") as context, \
            buildah_lock():
        existing = buildah_image_id(DEBIAN_RPM_IMAGE)
        if existing is not None:
            return f"sha256:{existing}"
        Path(context, "Dockerfile").write_text(_RPM_DOCKERFILE)
        tasker = DockerTasker(engine="buildah")
        try:
            built = tasker.build_image(context, DEBIAN_RPM_IMAGE)
        except AtomicReactorError as exc:
            raise EnvError(f"building {DEBIAN_RPM_IMAGE} with buildah failed: {exc}") from exc
        finally:
            tasker.close()
    return built.image_id


def _provide_buildah(registry: Registry, name: str, ensure: str) -> PushedTestImage:
    try:
        image_id = (ensure_debian_image_buildah() if ensure == "base"
                    else ensure_debian_rpm_image_buildah())
        push_buildah_base_image(registry, name)
    except (EnvError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot provide {name}: {exc}", pytrace=False)
    return PushedTestImage(local=name, repo=name, registry=registry, image_id=image_id)


def _provide(registry: Registry, name: str, ensure: str, engine: str) -> PushedTestImage:
    if engine == "buildah":
        return _provide_buildah(registry, name, ensure)
    client = engine_client(timeout=900)
    try:
        image_id = (ensure_debian_image(client.api) if ensure == "base"
                    else ensure_debian_rpm_image(client.api))
        push_test_image(client.api, registry, name)
    except (EnvError, docker.errors.APIError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot provide {name}: {exc}", pytrace=False)
    finally:
        client.close()
    return PushedTestImage(local=name, repo=name, registry=registry, image_id=image_id)


@pytest.fixture(scope="session")
def debian_base_image(tasker: DockerTasker, registry: Registry) -> PushedTestImage:
    """Debian bookworm (minbase, dpkg, no rpm), local and pushed to ``registry``."""
    return _provide(registry, DEBIAN_IMAGE, "base", tasker.engine_name)


@pytest.fixture(scope="session")
def debian_rpm_image(tasker: DockerTasker, registry: Registry) -> PushedTestImage:
    """Debian bookworm with Debian's ``rpm`` package, local and pushed to ``registry``."""
    return _provide(registry, DEBIAN_RPM_IMAGE, "rpm", tasker.engine_name)
