"""tag_from_config end to end: build, tag from additional-tags, push, read the registry."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import BuildResults, build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry

KEY = "tag_from_config"


def _build(base_image: BaseImage, context: Path, registry: Registry,
           dockerfile_path: str = "./", with_labels_plugin: bool = False) -> BuildResults:
    postbuild = [{"name": KEY}]
    if with_labels_plugin:
        postbuild.insert(0, {"name": "tag_by_labels"})
    return build_image_here(
        source=path_source(context, dockerfile_path), image=f"{unique('art-tfc')}:1",
        parent_registry=base_image.registry.address, target_registries=[registry.address],
        postbuild_plugins=postbuild)


def test_tags_from_the_file_are_pushed(base_image: BaseImage, registry: Registry,
                                       workdir: Path) -> None:
    name = f"art-test/{unique('tfc')}"
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL name={name}
        RUN true
    """, files={"additional-tags": "v1\n  stable  \n\n# a comment\nv2 # why\nwith-dash\n"
                                   ".dot\nv1\n"})
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    added = results.plugin_results["postbuild"][KEY]
    assert added["file"] == "additional-tags"
    assert added["tags"] == [f"{name}:v1", f"{name}:stable", f"{name}:v2"]
    assert added["ignored"] == ["with-dash", ".dot"]
    with RegistryClient(registry.address) as client:
        assert sorted(client.list_tags(name)) == ["stable", "v1", "v2"]
        digests = {client.get_manifest_digest(name, tag) for tag in ("stable", "v1", "v2")}
    assert len(digests) == 1
    assert digests == set(results.digests[registry.address].values())


def test_file_next_to_a_dockerfile_in_a_subdirectory(base_image: BaseImage, registry: Registry,
                                                      workdir: Path) -> None:
    name = unique("tfc-sub")
    context = write_context(workdir / "src", "FROM scratch\n",
                            files={"additional-tags": "root-level-is-not-used\nroot\n"})
    write_context(context / "image", f"""
        FROM {base_image.repo}
        LABEL name={name} version=3 release=1
    """, files={"additional-tags": "beside\n"})
    results = _build(base_image, context, registry, dockerfile_path="image/Dockerfile",
                     with_labels_plugin=True)

    assert not results.is_failed(), results.error
    assert results.plugin_results["postbuild"][KEY]["file"] == "image/additional-tags"
    with RegistryClient(registry.address) as client:
        tags = set(client.list_tags(name))
    assert {"beside", "3-1", "3", "latest"} <= tags
    assert "root" not in tags


def test_no_file_is_a_recorded_skip(base_image: BaseImage, registry: Registry,
                                    workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL name={unique('tfc-none')}
    """)
    results = _build(base_image, context, registry)

    assert not results.is_failed(), results.error
    added = results.plugin_results["postbuild"][KEY]
    assert added["skipped"] is True and "additional-tags" in added["reason"]
    assert added["tags"] == []


def test_missing_name_label_fails(base_image: BaseImage, registry: Registry,
                                  workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL version=1
    """, files={"additional-tags": "v1\n"})
    results = _build(base_image, context, registry)

    assert results.is_failed()
    assert "no 'name' label" in results.plugins_errors[KEY]
    assert results.pushed == ()
