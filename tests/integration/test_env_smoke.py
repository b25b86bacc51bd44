"""Smoke tests for the integration-test environment itself (engine, registries, fixtures)."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from tests.support.env import (
    BaseImage,
    EngineTracker,
    EnvError,
    Registry,
    check_stream,
    engine_client,
)


def _unique(prefix: str) -> str:
    return f"atomic-reactor-test/{prefix}-{uuid.uuid4().hex[:10]}"


def _exists(engine: docker.APIClient, ref: str) -> bool:
    try:
        engine.inspect_image(ref)
    except docker.errors.NotFound:
        return False
    return True


def test_base_image_runs_echo(engine: docker.APIClient, base_image: BaseImage) -> None:
    container = engine.create_container(base_image.local, ["echo", "hi"])
    cid = container["Id"]
    try:
        engine.start(cid)
        assert engine.wait(cid, timeout=60)["StatusCode"] == 0
        assert engine.logs(cid, stdout=True, stderr=True) == b"hi\n"
    finally:
        engine.remove_container(cid, force=True)
    with pytest.raises(docker.errors.NotFound):
        engine.inspect_container(cid)


def test_base_image_is_in_registry(base_image: BaseImage) -> None:
    assert base_image.pushed == f"{base_image.registry.address}/{base_image.repo}"
    repository, tag = base_image.repo.rsplit(":", 1)
    response = requests.get(f"{base_image.registry.url}/v2/{repository}/tags/list", timeout=10)
    assert response.status_code == 200
    assert tag in response.json()["tags"]


@pytest.mark.parametrize("registry_fixture", ["registry", "auth_registry"])
def test_push_and_pull_back(
    engine: docker.APIClient,
    base_image: BaseImage,
    request: pytest.FixtureRequest,
    registry_fixture: str,
) -> None:
    target: Registry = request.getfixturevalue(registry_fixture)
    repository = f"{target.address}/{_unique('smoke')}"
    engine.tag(base_image.local, repository, "v1")
    check_stream(
        engine.push(repository, "v1", stream=True, decode=True, auth_config=target.auth_config),
        f"push {repository}:v1",
    )
    engine.remove_image(f"{repository}:v1", noprune=True)
    assert not _exists(engine, f"{repository}:v1")

    check_stream(
        engine.pull(repository, "v1", stream=True, decode=True, auth_config=target.auth_config),
        f"pull {repository}:v1",
    )
    assert engine.inspect_image(f"{repository}:v1")["Id"] == base_image.image_id

    name = repository.removeprefix(f"{target.address}/")
    tags = requests.get(f"{target.url}/v2/{name}/tags/list", auth=target.basic_auth, timeout=10)
    assert tags.status_code == 200
    assert tags.json()["tags"] == ["v1"]


def test_auth_registry_refuses_wrong_password(
    engine: docker.APIClient, base_image: BaseImage, auth_registry: Registry
) -> None:
    assert auth_registry.username is not None
    assert auth_registry.password is not None
    assert auth_registry.password not in repr(auth_registry)

    wrong = (auth_registry.username, auth_registry.password + "-wrong")
    assert requests.get(f"{auth_registry.url}/v2/", auth=wrong, timeout=10).status_code == 401
    assert requests.get(f"{auth_registry.url}/v2/", timeout=10).status_code == 401
    ok = requests.get(f"{auth_registry.url}/v2/", auth=auth_registry.basic_auth, timeout=10)
    assert ok.status_code == 200

    with pytest.raises(docker.errors.APIError):
        engine.login(username=wrong[0], password=wrong[1], registry=auth_registry.url, reauth=True)

    repository = f"{auth_registry.address}/{_unique('refused')}"
    engine.tag(base_image.local, repository, "v1")
    with pytest.raises(EnvError):
        check_stream(
            engine.push(
                repository,
                "v1",
                stream=True,
                decode=True,
                auth_config={"username": wrong[0], "password": wrong[1]},
            ),
            "push with a wrong password",
        )


def test_docker_config_authenticates(
    docker_config: Path, auth_registry: Registry, base_image: BaseImage
) -> None:
    assert os.environ["DOCKER_CONFIG"] == str(docker_config)
    config = docker_config / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert auth_registry.address in json.loads(config.read_text())["auths"]

    # A client created now reads DOCKER_CONFIG: it can push without explicit auth_config.
    client = engine_client()
    try:
        repository = f"{auth_registry.address}/{_unique('config')}"
        client.api.tag(base_image.local, repository, "v1")
        check_stream(
            client.api.push(repository, "v1", stream=True, decode=True),
            f"push {repository}:v1 using DOCKER_CONFIG",
        )
    finally:
        client.close()


def test_engine_tracker_removes_only_new_objects(
    engine: docker.APIClient, base_image: BaseImage
) -> None:
    tracker = EngineTracker(engine)
    before = tracker.snapshot()
    tag = _unique("tracked")
    engine.tag(base_image.local, tag, "v1")
    container = engine.create_container(base_image.local, ["true"])["Id"]
    committed = engine.commit(container, repository=_unique("committed"), tag="v1")["Id"]
    dangling = engine.commit(container)["Id"]

    report = tracker.cleanup()

    assert report.ok, report.summary()
    assert container in report.removed_containers
    assert f"{tag}:v1" in report.removed_references
    after = tracker.state()
    assert container not in after.container_ids
    assert committed not in after.image_ids
    assert dangling not in after.image_ids
    assert f"{tag}:v1" not in after.references
    assert base_image.image_id in after.image_ids
    assert before.image_ids <= after.image_ids
    assert before.container_ids <= after.container_ids
