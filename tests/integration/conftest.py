"""Fixtures for integration tests: a real engine, throw-away registries, a base image.

Session scope: ``engine`` (docker ``APIClient``), ``registry`` (open),
``auth_registry`` (htpasswd), ``base_image`` (busybox pushed to ``registry``).
Function scope: ``engine_cleanup`` (autouse: removes what each test created),
``docker_config`` (DOCKER_CONFIG with credentials for ``auth_registry``) and
``workdir``.  Every test below this directory is marked ``integration``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.helpers import Outcome, run_cli, unique
from tests.support.env import (
    BASE_IMAGE,
    BaseImage,
    EngineTracker,
    EngineUnavailableError,
    EnvError,
    Registry,
    docker_config_json,
    engine_client,
    ensure_base_image,
    ensure_engine,
    push_base_image,
    split_reference,
    start_registry,
    warn_leftovers,
)

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.APIClient]:
    """The container engine (docker SDK low-level client); fails if none answers."""
    try:
        ensure_engine()
    except EngineUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    client = engine_client()
    try:
        yield client.api
    finally:
        client.close()


def _start(factory: pytest.TempPathFactory, name: str, auth: bool) -> Iterator[Registry]:
    try:
        running = start_registry(factory.mktemp(name), auth=auth)
    except EnvError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield running.registry
    finally:
        running.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An open registry on ``127.0.0.1:<free port>`` (plain HTTP, no auth)."""
    yield from _start(tmp_path_factory, "registry", auth=False)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry requiring basic auth: ``username`` "tester", random ``password``."""
    yield from _start(tmp_path_factory, "auth-registry", auth=True)


@pytest.fixture(scope="session")
def base_image(engine: docker.APIClient, registry: Registry) -> BaseImage:
    """The busybox base image, local as ``.local`` and pushed to ``registry``."""
    try:
        image_id = ensure_base_image(BASE_IMAGE)
        push_base_image(registry, BASE_IMAGE)
    except EnvError as exc:
        pytest.fail(str(exc), pytrace=False)
    repository, tag = split_reference(BASE_IMAGE)
    return BaseImage(
        local=BASE_IMAGE, registry=registry, repo=f"{repository}:{tag}", image_id=image_id
    )


@pytest.fixture(autouse=True)
def engine_cleanup(
    engine: docker.APIClient, request: pytest.FixtureRequest
) -> Iterator[EngineTracker]:
    """Snapshot the engine before the test; remove containers/tags/images created by it.

    Tests may register extra objects with ``engine_cleanup.track_image(ref)`` or
    ``engine_cleanup.track_container(id)``.  Anything that cannot be removed is
    reported as an ``EngineCleanupWarning``.
    """
    tracker = EngineTracker(engine, protected=[BASE_IMAGE])
    tracker.snapshot()
    yield tracker
    warn_leftovers(tracker.cleanup(), request.node.nodeid)


@pytest.fixture
def docker_config(
    auth_registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A DOCKER_CONFIG directory whose config.json (0600) holds auth for ``auth_registry``.

    ``DOCKER_CONFIG`` points to it for the duration of the test.
    """
    directory = tmp_path_factory.mktemp("docker-config")
    directory.chmod(0o700)
    config = directory / "config.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(docker_config_json([auth_registry]))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    try:
        yield directory  # monkeypatch restores DOCKER_CONFIG after the test
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # it holds the password


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh per-test working directory."""
    return tmp_path


# -- the command line, and what it leaves behind -------------------------------------


@pytest.fixture
def cli(engine: docker.APIClient, tmp_path: Path) -> Callable[..., Outcome]:
    """Run ``atomic-reactor`` with a TMPDIR of its own; list what it left there and in
    the engine (containers, images)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        tmp = tmp_path / f"tmpdir-{unique()}"
        tmp.mkdir()
        containers = {c["Id"] for c in engine.containers(all=True)}
        images = {i["Id"] for i in engine.images(all=True)}
        done = run_cli(list(args), env={"TMPDIR": str(tmp), **(env or {})})
        leftovers = sorted(p.name for p in tmp.iterdir() if p.name != "atomic-reactor-locks")
        return Outcome(
            code=done.returncode, stdout=done.stdout, stderr=done.stderr,
            tmp_leftovers=leftovers,
            new_containers=[c["Id"] for c in engine.containers(all=True)
                            if c["Id"] not in containers],
            new_images=[i["Id"] for i in engine.images(all=True) if i["Id"] not in images],
        )

    return run
