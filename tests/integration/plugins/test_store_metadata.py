"""``store_metadata`` after real builds: pushed (digests checked at the registry),
failed and cancelled; the document validates against the shipped schema."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.errors import BuildCancelled
from atomic_reactor.plugins.store_metadata import metadata_schema
from tests.integration.helpers import path_source, unique, write_context, write_plugin_file
from tests.support.env import BaseImage, Registry

KEY = "store_metadata"

APK_DB = "P:musl\nV:1.2.4-r2\nA:x86_64\n\nP:zlib\nV:1.3-r0\nA:x86_64\n"

CANCEL_PLUGIN = '''
import os
import signal
from atomic_reactor.plugin import PreBuildPlugin


class CancelMe(PreBuildPlugin):
    key = "cancel_me"

    def run(self):
        os.kill(os.getpid(), signal.SIGTERM)
'''


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(metadata_schema()).validate(document)
    return document


def test_metadata_of_a_pushed_build(tmp_path: Path, base_image: BaseImage,
                                    registry: Registry) -> None:
    dockerfile = f"""
        FROM {base_image.repo}
        LABEL com.example.flavour=vanilla
        COPY installed /lib/apk/db/installed
        """
    context = write_context(tmp_path / "src", dockerfile, {"installed": APK_DB})
    name = unique("art-test-meta")
    target = tmp_path / "meta" / "metadata.json"
    log_file = tmp_path / "build.log"
    results = build_image_here(
        source=path_source(context),
        image=f"{name}:1.0",
        parent_registry=base_image.registry.address,
        target_registries=[registry.address],
        postbuild_plugins=[{"name": "all_rpm_packages"}],
        exit_plugins=[{"name": KEY, "args": {"path": str(target)}}],
        log_file=str(log_file),
    )
    assert not results.is_failed(), results.error
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    meta = _load(target)

    assert meta["status"] == "succeeded"
    assert meta["error"] is None
    assert meta["image"] == f"{name}:1.0"
    assert meta["image_id"] == results.image_id
    assert meta["dockerfile"].strip().splitlines()[0] == f"FROM {base_image.repo}"
    assert meta["labels"]["com.example.flavour"] == "vanilla"
    assert meta["logs"]["log_file"] == str(log_file)
    assert meta["logs"]["build_log_lines"] > 0
    assert meta["packages"] == {"manager": "apk", "count": 2,
                                "packages": ["musl-1.2.4-r2.x86_64", "zlib-1.3-r0.x86_64"]}
    assert "docker_build" in meta["plugins"]["durations"]
    assert "tag_and_push" in meta["plugins"]["durations"]

    # the digest recorded is the one the registry serves for the pushed tag
    with RegistryClient(registry.address) as client:
        real_digest = client.get_manifest_digest(name, "1.0")
        base_repo, base_tag = base_image.repo.rsplit(":", 1)
        base_digest = client.get_manifest_digest(base_repo, base_tag)
    pushed = meta["registries"][registry.address]
    assert pushed == [{"reference": f"{registry.address}/{name}:1.0", "repository": name,
                       "tag": "1.0", "digest": real_digest, "size": pushed[0]["size"]}]
    assert meta["digests"] == {registry.address: {f"{registry.address}/{name}:1.0": real_digest}}
    assert meta["repositories"]["unique"] == [f"{registry.address}/{name}:1.0"]

    # the base image: what FROM names, its id and the digest it was pulled by
    assert meta["base_image"] == {"name": base_image.repo, "id": base_image.image_id,
                                  "digest": base_digest, "pulled_from": base_image.pushed}
    assert meta["parent_images"][0]["digest"] == base_digest

    outcome = results.plugin_results["exit"][KEY]
    assert outcome == {"path": str(target), "size": target.stat().st_size,
                       "status": "succeeded"}


def test_metadata_names_the_attached_sbom_and_provenance(tmp_path: Path, base_image: BaseImage,
                                                        registry: Registry) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo {unique('attached')} > /id
        """)
    name = unique("art-test-meta")
    target = tmp_path / "metadata.json"
    results = build_image_here(
        source=path_source(context), image=f"{name}:1",
        parent_registry=base_image.registry.address, target_registries=[registry.address],
        sbom=True, provenance=True,
        exit_plugins=[{"name": KEY, "args": {"path": str(target)}}])
    assert not results.is_failed(), results.error
    meta = _load(target)  # the schema knows the field
    digest = meta["digests"][registry.address][f"{registry.address}/{name}:1"]
    assert sorted(item["kind"] for item in meta["attached"]) == ["provenance", "sbom"]
    assert meta["attached"] == [
        {"kind": a.kind, "registry": a.registry, "repository": a.repository,
         "digest": a.digest, "subject": a.subject, "artifact_type": a.artifact_type,
         "size": a.size, "via": a.via, "document_digest": a.document_digest}
        for a in results.attached]
    with RegistryClient(registry.address) as client:
        for item in meta["attached"]:
            assert item["subject"] == digest and item["registry"] == registry.address
            assert item["via"] == "tag-schema"  # the Debian registry has no referrers API
            raw = client.get_manifest_raw(name, item["digest"])  # the registry has it
            assert raw.size == item["size"]
            manifest = json.loads(raw.body)
            assert manifest["subject"]["digest"] == digest
            assert manifest["artifactType"] == item["artifact_type"]
            assert manifest["layers"][0]["digest"] == item["document_digest"]
    # the typed results as JSON (--metadata-file) carry them too
    assert results.to_dict()["attached"] == meta["attached"]


def test_metadata_of_a_failed_build(tmp_path: Path, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo no && exit 7
        """)
    target = tmp_path / "metadata.json"
    results = build_image_here(
        source=path_source(context),
        image=unique("art-test-meta"),
        parent_registry=base_image.registry.address,
        exit_plugins=[{"name": KEY, "args": {"path": str(target)}}],
    )
    assert results.is_failed()
    meta = _load(target)
    assert meta["status"] == "failed"
    assert meta["error"]["type"] == "BuildFailed"
    assert "7" in meta["error"]["message"]
    assert meta["image_id"] is None
    assert meta["registries"] == {}
    assert meta["packages"] is None
    assert meta["base_image"]["id"] == base_image.image_id
    assert "docker_build" in meta["plugins"]["errors"]


def test_metadata_of_a_cancelled_build(tmp_path: Path, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\n")
    plugin_file = write_plugin_file(tmp_path / "cancel_plugin.py", CANCEL_PLUGIN)
    target = tmp_path / "metadata.json"
    with pytest.raises(BuildCancelled) as caught:
        build_image_here(
            source=path_source(context),
            image=unique("art-test-meta"),
            parent_registry=base_image.registry.address,
            prebuild_plugins=[{"name": "cancel_me"}],
            exit_plugins=[{"name": KEY, "args": {"path": str(target)}}],
            plugin_files=[str(plugin_file)],
        )
    meta = _load(target)
    assert meta["status"] == "cancelled"
    assert meta["error"]["type"] == "BuildCancelled"
    assert meta["error"]["signal"] == 15
    assert meta["image_id"] is None
    assert caught.value.results is not None
    assert caught.value.results.plugin_results["exit"][KEY]["status"] == "cancelled"
