"""tag_by_labels end to end: build, tag from labels, push, read the registry back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import BuildResults, build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry

KEY = "tag_by_labels"


def _build(base_image: BaseImage, context: Path, registry: Registry,
           args: dict[str, Any] | None = None) -> BuildResults:
    return build_image_here(
        source=path_source(context), image=f"{unique('art-tbl')}:1",
        parent_registry=base_image.registry.address, target_registries=[registry.address],
        postbuild_plugins=[{"name": KEY, "args": args or {}}])


def _context(workdir: Path, base_image: BaseImage, labels: str) -> Path:
    return write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL {labels}
        RUN echo built > /built
    """)


def test_primary_and_unique_tags_are_pushed(base_image: BaseImage, registry: Registry,
                                            workdir: Path) -> None:
    name = f"art-test/{unique('tbl')}"
    context = _context(workdir, base_image, f"name={name} version=1.0 release=5")
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    tagged = results.plugin_results["postbuild"][KEY]
    unique_tag = tagged["unique_tag"]
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", unique_tag)
    assert tagged["primary"] == [f"{name}:1.0-5", f"{name}:1.0", f"{name}:latest"]
    assert tagged["unique"] == [f"{name}:{unique_tag}"]
    with RegistryClient(registry.address) as client:
        assert sorted(client.list_tags(name)) == sorted(["1.0-5", "1.0", "latest", unique_tag])
        digests = {tag: client.get_manifest_digest(name, tag)
                   for tag in ("1.0-5", "1.0", "latest", unique_tag)}
    assert len(set(digests.values())) == 1
    # the same digest tag_and_push recorded for the build's pushes
    assert set(digests.values()) == set(results.digests[registry.address].values())
    assert f"{name}:1.0-5" in results.tags


def test_old_style_labels(base_image: BaseImage, registry: Registry, workdir: Path) -> None:
    name = unique("tbl-old")
    context = _context(workdir, base_image, f"Name={name} Version=2 Release=1.el9")
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    with RegistryClient(registry.address) as client:
        tags = client.list_tags(name)
    assert {"2-1.el9", "2", "latest"} <= set(tags) and len(tags) == 4


def test_unique_tag_only(base_image: BaseImage, registry: Registry, workdir: Path) -> None:
    name = unique("tbl-unique")
    context = _context(workdir, base_image, f"name={name}")
    results = _build(base_image, context, registry, {"unique_tag_only": True})

    assert not results.is_failed(), results.error
    tagged = results.plugin_results["postbuild"][KEY]
    assert tagged["primary"] == []
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == [tagged["unique_tag"]]


def test_two_builds_get_different_unique_tags(base_image: BaseImage, registry: Registry,
                                              workdir: Path) -> None:
    name = unique("tbl-twice")
    context = _context(workdir, base_image, f"name={name} version=1 release=1")
    first = _build(base_image, context, registry)
    second = _build(base_image, context, registry)

    assert not first.is_failed() and not second.is_failed()
    tags = [r.plugin_results["postbuild"][KEY]["unique_tag"] for r in (first, second)]
    assert tags[0] != tags[1]
    with RegistryClient(registry.address) as client:
        assert set(tags) <= set(client.list_tags(name))


def test_missing_label_fails_before_pushing(base_image: BaseImage, registry: Registry,
                                            workdir: Path) -> None:
    name = unique("tbl-missing")
    context = _context(workdir, base_image, f"name={name} version=1")
    results = _build(base_image, context, registry)

    assert results.is_failed()
    assert "label 'release' is missing" in results.plugins_errors[KEY]
    assert "tag_and_push" not in results.plugin_results.get("postbuild", {})
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == []


def test_label_that_is_no_valid_tag_fails(base_image: BaseImage, registry: Registry,
                                          workdir: Path) -> None:
    context = _context(workdir, base_image, f"name={unique('tbl-bad')} version=1+2 release=1")
    results = _build(base_image, context, registry)

    assert results.is_failed()
    assert "does not make a valid tag" in results.plugins_errors[KEY]
