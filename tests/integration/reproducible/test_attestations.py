"""SBOM and provenance on the real engine and registry: made for a Debian based image,
pushed as OCI artifacts with the image as subject, found through the referrers tag
schema (Debian's registry 2.8 has no referrers API), free of secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from atomic_reactor._attest.referrers import fallback_tag, list_referrers
from atomic_reactor._registry.client import RegistryClient
from tests.integration.helpers import Outcome, git, git_repo, unique
from tests.support.env import Registry

if TYPE_CHECKING:
    from tests.integration.plugins.debian_fixtures import PushedTestImage

pytest_plugins = ["tests.integration.plugins.debian_fixtures"]

SECRET = "s3cr3t-token-4f9a1c"


@pytest.mark.both_engines
def test_sbom_and_provenance_of_a_debian_image(
        tmp_path: Path, debian_base_image: PushedTestImage, registry: Registry,
        auth_registry: Registry, docker_config: Path, cli: Callable[..., Outcome],
        engine_name: str) -> None:
    repo = git_repo(tmp_path / "repo",
                    f"FROM {debian_base_image.repo}\nARG TOKEN\nARG VERSION\n"
                    "RUN echo built > /built\n")
    commit = git(repo, "rev-parse", "HEAD")
    name = unique()
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "git", "uri": f"file://{repo}"},
        "image": f"{name}:1", "parent_registry": registry.address,
        "target_registries": [registry.address, auth_registry.address],
        "buildargs": {"TOKEN": "placeholder", "VERSION": "1.2"},
        "sbom": True, "provenance": True, "reproducible": True,
    }))
    metadata = tmp_path / "results.json"
    outcome = cli("build", "json", str(build_json), "--metadata-file", str(metadata),
                  "--substitute-secret", f"buildargs.TOKEN={SECRET}")
    assert outcome.code == 0, outcome.stderr
    results = json.loads(metadata.read_text())
    digest = results["digests"][registry.address][f"{registry.address}/{name}:1"]
    assert results["digests"][auth_registry.address][f"{auth_registry.address}/{name}:1"] \
        == digest
    # one SBOM and one provenance in each target registry
    assert sorted((item["registry"], item["kind"]) for item in results["attached"]) == sorted(
        (address, kind) for address in (registry.address, auth_registry.address)
        for kind in ("sbom", "provenance"))
    assert all(item["subject"] == digest and item["via"] == "tag-schema"
               and item["repository"] == name for item in results["attached"])
    attached = {item["kind"]: item for item in results["attached"]
                if item["registry"] == registry.address}
    with RegistryClient(auth_registry.address) as client:  # credentials from DOCKER_CONFIG
        referrers, via = list_referrers(client, name, digest)
        assert via == "tag-schema"
        assert {m["digest"] for m in referrers} == {
            item["digest"] for item in results["attached"]
            if item["registry"] == auth_registry.address}

    with RegistryClient(registry.address) as client:
        assert client.get_referrers(name, digest) is None  # no referrers API: the tag it is
        assert fallback_tag(digest) in client.list_tags(name)
        referrers, via = list_referrers(client, name, digest)
        assert via == "tag-schema"
        by_type = {m["artifactType"]: m for m in referrers}
        assert set(by_type) == {"application/vnd.cyclonedx+json", "application/vnd.in-toto+json"}
        documents = {}
        for artifact_type, descriptor in by_type.items():
            assert descriptor["digest"] == attached[
                "sbom" if "cyclonedx" in artifact_type else "provenance"]["digest"]
            manifest = json.loads(client.get_manifest_raw(name, descriptor["digest"]).body)
            assert manifest["subject"]["digest"] == digest
            assert manifest["artifactType"] == artifact_type
            blob = client.get_blob(name, manifest["layers"][0]["digest"])
            assert SECRET.encode() not in blob and SECRET.encode() not in \
                json.dumps(manifest).encode()
            documents[artifact_type] = json.loads(blob)

    sbom = documents["application/vnd.cyclonedx+json"]
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(sbom)) is None
    assert sbom["metadata"]["component"]["version"] == digest
    packages = {c["name"]: c for c in sbom["components"] if c["type"] == "library"}
    for wanted in ("dpkg", "bash", "libc6"):
        assert wanted in packages
        assert packages[wanted]["purl"].startswith(f"pkg:deb/debian/{wanted}@")
        assert "arch=amd64" in packages[wanted]["purl"]
        assert "distro=debian-12" in packages[wanted]["purl"]
    base = [c for c in sbom["components"] if c["type"] == "container"]
    assert len(base) == 1 and base[0]["version"] == results["base_image_digest"]

    statement = documents["application/vnd.in-toto+json"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source"]["commit"] == commit
    assert definition["externalParameters"]["buildArgs"] == {"VERSION": "1.2"}
    assert definition["externalParameters"]["secretBuildArgs"] == ["TOKEN"]
    resolved = {d.get("name", "source"): d for d in definition["resolvedDependencies"]}
    assert resolved["source"]["digest"] == {"gitCommit": commit}
    assert resolved["base-image"]["digest"]["sha256"] == \
        results["base_image_digest"].split(":", 1)[1]
    details = statement["predicate"]["runDetails"]
    assert details["builder"]["version"][engine_name]  # the engine's version
    assert details["builder"]["id"].endswith(engine_name)
    assert details["metadata"]["startedOn"] <= details["metadata"]["finishedOn"]
    assert SECRET not in metadata.read_text()
