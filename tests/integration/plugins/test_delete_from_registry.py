"""``delete_from_registry`` against real registries: open, with auth, without deletes."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from atomic_reactor._registry.client import ManifestNotFound, RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.delete_from_registry import DeleteFromRegistryPlugin
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry, find_free_port

KEY = "delete_from_registry"


@pytest.fixture
def no_delete_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry (docker-registry, plain HTTP, no auth) with deletes disabled."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    root = tmp_path / "no-delete-registry"
    (root / "storage").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    for _attempt in range(5):
        port = find_free_port()
        config = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "storage")},
                        "delete": {"enabled": False}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        }
        (root / "config.yml").write_text(json.dumps(config))
        with open(root / "registry.log", "wb") as log:
            process = subprocess.Popen([binary, "serve", str(root / "config.yml")],
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        pytest.fail("could not start a registry: " + (root / "registry.log").read_text()[-500:])
    try:
        yield Registry("127.0.0.1", port, None, None, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _context(tmp_path: Path, base_image: BaseImage) -> Path:
    return write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        LABEL built-by=test-delete-from-registry unique={unique("x")}
        """)


def _digest(registry: Registry, repository: str, tag: str, **kwargs: Any) -> str | None:
    with RegistryClient(registry.address, **kwargs) as client:
        try:
            return client.get_manifest_digest(repository, tag)
        except ManifestNotFound:
            return None


def test_deletes_what_the_build_pushed(tmp_path: Path, base_image: BaseImage,
                                       registry: Registry) -> None:
    name = unique("art-test-del")
    results = build_image_here(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        parent_registry=base_image.registry.address,
        target_registries=[registry.address],
        exit_plugins=[{"name": KEY, "args": {"registries": {registry.address: {}}}}],
    )
    assert not results.is_failed(), results.error
    digest = results.digests[registry.address][f"{registry.address}/{name}:1"]
    outcome = results.plugin_results["exit"][KEY]
    assert outcome == [{"registry": registry.address, "repository": name, "digest": digest,
                        "references": [f"{registry.address}/{name}:1"], "status": "deleted",
                        "error": None}]
    assert _digest(registry, name, "1") is None
    # only this build's manifest went: the base image is still there
    base_repo, base_tag = base_image.repo.rsplit(":", 1)
    assert _digest(registry, base_repo, base_tag) is not None


def test_already_gone_is_a_warning(tmp_path: Path, base_image: BaseImage, registry: Registry,
                                   caplog: pytest.LogCaptureFixture) -> None:
    name = unique("art-test-del")
    workflow = DockerBuildWorkflow(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        prebuild_plugins=[{"name": "pull_base_image",
                           "args": {"parent_registry": base_image.registry.address}}],
        postbuild_plugins=[{"name": "tag_and_push",
                            "args": {"registries": {registry.address: {}}}}],
        exit_plugins=[{"name": KEY, "args": {"registries": {f"http://{registry.address}": {}}}}],
    )
    results = workflow.build_container_image()
    assert not results.is_failed(), results.error
    assert results.plugin_results["exit"][KEY][0]["status"] == "deleted"

    again = DeleteFromRegistryPlugin(workflow.tasker, workflow,
                                     registries={registry.address: {"insecure": True}}).run()
    assert [(o.repository, o.status) for o in again] == [(name, "not_found")]
    assert "not found" in caplog.text


def test_registry_without_deletes_is_a_warning(tmp_path: Path, base_image: BaseImage,
                                               no_delete_registry: Registry) -> None:
    name = unique("art-test-del")
    target = no_delete_registry.address
    results = build_image_here(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        parent_registry=base_image.registry.address,
        target_registries=[target],
        exit_plugins=[{"name": KEY, "args": {"registries": {target: {}}}}],
    )
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["exit"][KEY]
    assert [(o["repository"], o["status"]) for o in outcome] == [(name, "delete_disabled")]
    assert _digest(no_delete_registry, name, "1") == \
        results.digests[target][f"{target}/{name}:1"]


def test_credentials_from_the_docker_config(tmp_path: Path, base_image: BaseImage,
                                            auth_registry: Registry, docker_config: Path) -> None:
    name = unique("art-test-del")
    target = auth_registry.address
    results = build_image_here(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        parent_registry=base_image.registry.address,
        target_registries=[target],
        exit_plugins=[{"name": KEY, "args": {"registries": {target: {}}}}],
    )
    assert not results.is_failed(), results.error
    assert results.plugin_results["exit"][KEY][0]["status"] == "deleted"
    assert _digest(auth_registry, name, "1") is None  # the client reads DOCKER_CONFIG too


def test_credentials_from_a_secret(tmp_path: Path, base_image: BaseImage,
                                   auth_registry: Registry, docker_config: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))  # only the secret has the password
    name = unique("art-test-del")
    target = auth_registry.address
    secret = {"secret": str(docker_config)}
    results = build_image_here(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        parent_registry=base_image.registry.address,
        postbuild_plugins=[{"name": "tag_and_push", "args": {"registries": {target: secret}}}],
        exit_plugins=[{"name": KEY, "args": {"registries": {target: secret}}}],
    )
    assert not results.is_failed(), results.error
    assert results.plugin_results["exit"][KEY][0]["status"] == "deleted"
    assert _digest(auth_registry, name, "1", secret=str(docker_config)) is None


def test_missing_credentials_fail_and_keep_the_manifest(tmp_path: Path, base_image: BaseImage,
                                                        auth_registry: Registry,
                                                        docker_config: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    name = unique("art-test-del")
    target = auth_registry.address
    results = build_image_here(
        source=path_source(_context(tmp_path, base_image)),
        image=f"{name}:1",
        parent_registry=base_image.registry.address,
        postbuild_plugins=[{"name": "tag_and_push",
                            "args": {"registries": {target: {"secret": str(docker_config)}}}}],
        exit_plugins=[{"name": KEY, "args": {"registries": {target: {}}}}],
    )
    assert results.is_failed()
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert results.error["category"] == "registry"
    assert "credentials" in results.error["message"]
    assert auth_registry.password is not None
    assert auth_registry.password not in json.dumps(results.to_dict())
    assert _digest(auth_registry, name, "1", secret=str(docker_config)) == \
        results.digests[target][f"{target}/{name}:1"]
