"""Multi-platform builds end to end: real engine, real registry, real emulation.

An amd64 + arm64 build runs ``RUN uname -m`` under each platform (arm64 through
QEMU user emulation), pushes both images by digest and a manifest list under the
tags; the registry's blobs are read back to check each image really is what it
claims. A base missing a platform is refused before anything is built, and a
platform whose build fails leaves no list behind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._registry.manifest_list import LIST_TYPES, list_entries
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import BuildFailed, PlatformNotFound
from atomic_reactor.inner import BUILD_STEP_KEY
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import Registry
from tests.support.multiarch import AMD64, ARM64, MultiArchBase, read_image_file

pytestmark = pytest.mark.both_engines  # the docker and the buildah engine

PLATFORMS = ["linux/amd64", "linux/arm64"]


def _skopeo_raw(reference: str) -> dict[str, Any]:
    done = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{reference}"], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def _build(context: Path, registry: Registry, image: str, **kwargs: Any) -> Any:
    return build_image_here(path_source(context), image, parent_registry=registry.address,
                            parent_registry_insecure=True,
                            target_registries=[registry.address],
                            target_registries_insecure=True, **kwargs)


@pytest.mark.parametrize(("base_fixture", "push_method"), [
    ("multiarch_base", "registry"), ("oci_multiarch_base", "engine")])
def test_two_platforms_make_a_list_of_two_images(tmp_path: Path, registry: Registry,
                                                  request: pytest.FixtureRequest,
                                                  base_fixture: str, push_method: str) -> None:
    multiarch_base: MultiArchBase = request.getfixturevalue(base_fixture)
    context = write_context(tmp_path / "ctx", f"""
        FROM {multiarch_base.repository}:{multiarch_base.tag}
        RUN uname -m > /arch
        COPY hello.txt /hello.txt
        LABEL org.example.test=multiarch
    """, {"hello.txt": "hi\n"})
    repo = unique("art-multiarch")
    metadata = tmp_path / "metadata.json"
    results = _build(context, registry, f"{repo}:1.0", platforms=PLATFORMS, use_cache=False,
                     prebuild_plugins=[{"name": "add_labels_in_dockerfile",
                                        "args": {"auto_labels": ["architecture"]}}],
                     postbuild_plugins=[{"name": "tag_and_push", "args": {
                         "registries": {registry.address: {"insecure": True}},
                         "push_method": push_method}}],
                     exit_plugins=[{"name": "store_metadata", "args": {"path": str(metadata)}},
                                   {"name": "remove_built_image"}])
    results.raise_for_status()
    tasker = DockerTasker()  # the engine under test
    for platform_result in results.platforms:  # removed per platform by the exit plugin
        assert platform_result.image_id is not None
        assert tasker.find_image(platform_result.image_id) is None, \
            platform_result.plugin_results["exit"]["remove_built_image"]
    document = json.loads(metadata.read_text())
    assert [(p["platform"], p["architecture"]) for p in document["platforms"]] == [
        ("linux/amd64", "amd64"), ("linux/arm64", "arm64")]
    assert document["manifest_lists"][0]["tags"] == ["1.0"]

    assert [p.platform for p in results.platforms] == PLATFORMS
    assert [p.architecture for p in results.platforms] == ["amd64", "arm64"]
    assert len({p.image_id for p in results.platforms}) == 2
    assert results.image_id == results.platforms[0].image_id  # 1.6 fields: the first

    [pushed_list] = results.manifest_lists
    reference = f"{registry.address}/{repo}:1.0"
    assert results.digests[registry.address][reference] == pushed_list.digest
    assert results.list_digests == {registry.address: {reference: pushed_list.digest}}

    document = _skopeo_raw(reference)
    assert document["mediaType"] in LIST_TYPES
    entries = list_entries(document)
    assert [e.platform for e in entries] == [AMD64, ARM64]
    assert {str(e.platform): e.digest for e in entries} == pushed_list.platforms
    for entry, platform_result in zip(entries, results.platforms, strict=True):
        assert platform_result.digests == {registry.address: entry.digest}

    with RegistryClient(registry.address, insecure=True) as client:
        assert client.get_manifest_digest(repo, "1.0") == pushed_list.digest
        for platform, machine, label in ((AMD64, "x86_64", "x86_64"),
                                         (ARM64, "aarch64", "aarch64")):
            arch, content = read_image_file(client, repo, "1.0", platform, "/arch")
            assert arch == platform.architecture
            assert content.decode().strip() == machine
            _, hello = read_image_file(client, repo, "1.0", platform, "/hello.txt")
            assert hello == b"hi\n"
            entry = next(e for e in entries if e.platform == platform)
            manifest = json.loads(client.get_manifest_raw(repo, entry.digest).body)
            config = json.loads(client.get_blob(repo, manifest["config"]["digest"]))
            assert config["architecture"] == platform.architecture
            assert config["config"]["Labels"]["architecture"] == label
            assert config["config"]["Labels"]["org.example.test"] == "multiarch"
        # the per-platform Dockerfiles stayed out of the image
        with pytest.raises(Exception, match="is in no layer"):
            read_image_file(client, repo, "1.0", ARM64,
                            "/.atomic-reactor-Dockerfile.linux-arm64")
    for platform_skopeo, machine in (("arm64", "aarch64"), ("amd64", "x86_64")):
        done = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--override-arch", platform_skopeo,
             f"docker://{reference}"], capture_output=True, text=True, check=True)
        assert json.loads(done.stdout)["Architecture"] == platform_skopeo, machine


def test_base_missing_a_platform_is_refused_before_building(
        tmp_path: Path, registry: Registry, amd64_only_base: MultiArchBase) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {amd64_only_base.repository}:{amd64_only_base.tag}
        RUN uname -m > /arch
    """)
    repo = unique("art-multiarch")
    results = _build(context, registry, f"{repo}:1", platforms=PLATFORMS)
    assert results.is_failed()
    error = results.exception
    assert error is not None and error.exit_code == 4
    assert "linux/arm64" in str(error) and "it has: linux/amd64" in str(error)
    assert isinstance(getattr(error, "cause", None), PlatformNotFound)
    assert BUILD_STEP_KEY not in results.plugins_timestamps  # nothing was built
    assert results.platforms == ()
    with RegistryClient(registry.address, insecure=True) as client:
        assert client.list_tags(repo) == []


def test_a_failing_platform_leaves_no_list(tmp_path: Path, registry: Registry,
                                           multiarch_base: MultiArchBase) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {multiarch_base.repository}:{multiarch_base.tag}
        RUN [ "$(uname -m)" = x86_64 ]
    """)
    repo = unique("art-multiarch")
    record = tmp_path / "metadata.json"
    results = _build(context, registry, f"{repo}:1", platforms=PLATFORMS,
                     exit_plugins=[{"name": "store_metadata", "args": {"path": str(record)}}])
    assert results.is_failed()
    error = results.exception
    assert isinstance(error, BuildFailed)
    assert "linux/arm64" in str(error) and "linux/amd64" not in str(error).split("(")[0]
    assert results.fail_reason is not None and "linux/arm64" in results.fail_reason
    assert record.is_file()  # the exit plugins ran
    document = json.loads(record.read_text())
    assert document["status"] == "failed"
    assert document["manifest_lists"] == []
    assert [p["platform"] for p in document["platforms"]][-1] == "linux/arm64"
    assert document["platforms"][-1]["fail_reason"]
    with RegistryClient(registry.address, insecure=True) as client:
        assert client.list_tags(repo) == []  # no list, and no platform image either


def test_one_foreign_platform_pushes_a_plain_image(tmp_path: Path, registry: Registry,
                                                   multiarch_base: MultiArchBase) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {multiarch_base.repository}:{multiarch_base.tag}
        RUN uname -m > /arch
    """)
    repo = unique("art-multiarch")
    results = _build(context, registry, f"{repo}:1", platforms=["linux/arm64"])
    results.raise_for_status()
    [platform] = results.platforms
    assert platform.platform == "linux/arm64" and platform.architecture == "arm64"
    assert results.manifest_lists == ()
    digest = results.digests[registry.address][f"{registry.address}/{repo}:1"]
    assert platform.digests == {registry.address: digest}
    assert _skopeo_raw(f"{registry.address}/{repo}:1")["mediaType"] not in LIST_TYPES
    with RegistryClient(registry.address, insecure=True) as client:
        arch, content = read_image_file(client, repo, "1", None, "/arch")
    assert (arch, content.decode().strip()) == ("arm64", "aarch64")
