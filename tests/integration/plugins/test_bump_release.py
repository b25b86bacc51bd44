"""bump_release against real registries, through the real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import BuildResults, build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry


def _push_tags(tasker: DockerTasker, base_image: BaseImage, registry: Registry,
               repository: str, tags: list[str]) -> None:
    """Push the base image as ``registry/repository:tag`` for each tag (local tags removed;
    credentials for ``auth_registry`` from the ``docker_config`` fixture)."""
    target = f"{registry.address}/{repository}"
    for tag in tags:
        tasker.tag_image(base_image.local, f"{target}:{tag}", force=True)
        try:
            tasker.push(f"{target}:{tag}", insecure=True)
        finally:
            tasker.remove_image(f"{target}:{tag}", noprune=True)


def _build(base_image: BaseImage, context: Path, registry: Registry | None,
           args: dict[str, Any] | None = None, postbuild: list[dict[str, Any]] | None = None,
           ) -> BuildResults:
    return build_image_here(
        source=path_source(context), image=f"{unique('art-bump')}:1",
        parent_registry=base_image.registry.address,
        target_registries=[registry.address] if registry else None,
        prebuild_plugins=[{"name": "bump_release", "args": args or {}}],
        postbuild_plugins=postbuild or [])


def _context(workdir: Path, base_image: BaseImage, labels: str) -> Path:
    return write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL {labels}
        RUN true
    """)


def _image_labels(tasker: DockerTasker, results: BuildResults) -> dict[str, str]:
    assert results.image_id
    return dict(tasker.image_info(results.image_id).labels)


def test_next_release_after_the_highest_pushed(
        tasker: DockerTasker, base_image: BaseImage, registry: Registry,
        workdir: Path) -> None:
    name = f"art-test/{unique('bump')}"
    _push_tags(tasker, base_image, registry, name, ["1.0-1", "1.0-3", "2.0-9", "1.0-5a",
                                                    "1.0-2.1", "latest"])
    context = _context(workdir, base_image, f"name={name} version=1.0")
    results = _build(base_image, context, registry,
                     postbuild=[{"name": "tag_by_labels"}])

    assert not results.is_failed(), results.error
    bumped = results.plugin_results["prebuild"]["bump_release"]
    assert bumped["release"] == "4"
    assert bumped["previous"] == "3"
    assert bumped["registries"] == [registry.address]
    assert bumped["skipped"] is False
    assert _image_labels(tasker, results)["release"] == "4"
    # and the next build sees this one's tag
    with RegistryClient(registry.address) as client:
        assert "1.0-4" in client.list_tags(name)


def test_first_release_is_1(tasker: DockerTasker, base_image: BaseImage,
                            registry: Registry, workdir: Path) -> None:
    name = unique("bump-new")
    context = _context(workdir, base_image, f'"name"="{name}" "version"="3.2"')
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    bumped = results.plugin_results["prebuild"]["bump_release"]
    assert bumped["release"] == "1" and bumped["previous"] is None
    assert _image_labels(tasker, results)["release"] == "1"


def test_release_in_dockerfile_is_a_recorded_skip(
        tasker: DockerTasker, base_image: BaseImage, registry: Registry,
        workdir: Path) -> None:
    name = unique("bump-set")
    _push_tags(tasker, base_image, registry, name, ["1.0-8"])
    context = _context(workdir, base_image, f"name={name} version=1.0 Release=2")
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    bumped = results.plugin_results["prebuild"]["bump_release"]
    assert bumped["skipped"] is True
    assert bumped["release"] is None
    assert "Release=2" in bumped["reason"]
    labels = _image_labels(tasker, results)
    assert labels["Release"] == "2" and "release" not in labels
    assert results.dockerfile is not None and "LABEL release" not in results.dockerfile


def test_append(tasker: DockerTasker, base_image: BaseImage, registry: Registry,
                workdir: Path) -> None:
    name = unique("bump-append")
    _push_tags(tasker, base_image, registry, name, ["1.0-7", "1.0-7.1", "1.0-7.2", "1.0-8.9"])
    context = _context(workdir, base_image, f"name={name} version=1.0 release=7")
    results = _build(base_image, context, registry, args={"append": True})

    assert not results.is_failed(), results.error
    assert results.plugin_results["prebuild"]["bump_release"]["release"] == "7.3"
    assert _image_labels(tasker, results)["release"] == "7.3"


def test_auth_registry(tasker: DockerTasker, base_image: BaseImage,
                       auth_registry: Registry, docker_config: Path, workdir: Path) -> None:
    name = unique("bump-auth")
    _push_tags(tasker, base_image, auth_registry, name, ["5-10", "5-2"])
    context = _context(workdir, base_image, f"name={name} version=5")
    results = _build(base_image, context, auth_registry)

    assert not results.is_failed(), results.error
    bumped = results.plugin_results["prebuild"]["bump_release"]
    assert bumped["release"] == "11" and bumped["previous"] == "10"
    assert _image_labels(tasker, results)["release"] == "11"


def test_auth_registry_without_credentials_fails(
        tasker: DockerTasker, base_image: BaseImage, auth_registry: Registry,
        workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    context = _context(workdir, base_image, f"name={unique('bump-noauth')} version=5")
    results = _build(base_image, context, auth_registry)

    assert results.is_failed()
    assert results.image_id is None
    error = results.plugins_errors["bump_release"]
    assert auth_registry.address in error and "credentials" in error
    assert results.error is not None and results.error["category"] == "registry"


def test_missing_version_fails_clearly(base_image: BaseImage, registry: Registry,
                                       workdir: Path) -> None:
    context = _context(workdir, base_image, f"name={unique('bump-nover')}")
    results = _build(base_image, context, registry)

    assert results.is_failed()
    assert results.image_id is None
    assert "'version' label" in results.plugins_errors["bump_release"]


def test_no_target_registry_gives_1(tasker: DockerTasker, base_image: BaseImage,
                                    workdir: Path) -> None:
    context = _context(workdir, base_image, f"name={unique('bump-local')} version=1")
    results = _build(base_image, context, None)

    assert not results.is_failed(), results.error
    bumped = results.plugin_results["prebuild"]["bump_release"]
    assert bumped["release"] == "1" and bumped["registries"] == []
    assert _image_labels(tasker, results)["release"] == "1"
