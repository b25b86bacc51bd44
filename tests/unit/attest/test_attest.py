"""Package databases read from layers, the SBOM and provenance documents, and the
artifacts' referrers index (no engine, no registry)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from atomic_reactor._attest.packages import (
    ImagePackages,
    LayerStack,
    OsRelease,
    packages_of,
    parse_dpkg_status,
)
from atomic_reactor._attest.provenance import ProvenanceInputs, provenance_statement
from atomic_reactor._attest.referrers import attach_artifact, fallback_tag, list_referrers
from atomic_reactor._attest.sbom import make_sbom
from atomic_reactor._registry.client import ManifestNotFound, RawManifest, sha256_digest
from atomic_reactor._secrets import _reset_for_tests, register_secret

STATUS = """\
Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7
Installed-Size: 7164
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 1:2.36-9+deb12u4
"""


def _layer(path: Path, files: dict[str, bytes | None]) -> str:
    """A layer tar: ``None`` makes a directory."""
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_dpkg_status_lists_installed_packages_only() -> None:
    packages = {p.name: p for p in parse_dpkg_status(STATUS)}
    assert set(packages) == {"bash", "tzdata", "libc6"}
    assert (packages["bash"].version, packages["bash"].release) == ("5.2.15", "2+b7")
    assert packages["bash"].size == 7164 * 1024
    assert packages["libc6"].epoch == "1" and packages["tzdata"].arch == "all"


def test_layers_apply_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    stack = LayerStack([
        _layer(tmp_path / "0.tar", {"var/lib/dpkg/status": b"old", "etc/os-release": b"ID=x",
                                    "lib/apk/db/installed": b"P:a\nV:1-r0\n",
                                    "opt/d/one": b"1"}),
        _layer(tmp_path / "1.tar", {"var/lib/dpkg/status": STATUS.encode(),
                                    "lib/apk/db/.wh.installed": b"",
                                    "opt/d/.wh..wh..opq": b"", "opt/d/two": b"2"}),
    ])
    assert stack.read("var/lib/dpkg/status") == STATUS.encode()
    assert stack.read("/etc/os-release") == b"ID=x"
    assert stack.read("lib/apk/db/installed") is None
    assert sorted(stack.tree("opt/d")) == ["opt/d/two"]
    manager, packages = packages_of(stack)
    assert manager == "dpkg" and len(packages) == 3


def test_a_deleted_database_directory_is_gone(tmp_path: Path) -> None:
    stack = LayerStack([
        _layer(tmp_path / "0.tar", {"var/lib/rpm": None, "var/lib/rpm/rpmdb.sqlite": b"db"}),
        _layer(tmp_path / "1.tar", {"var/lib/.wh.rpm": b""}),
    ])
    assert stack.tree("var/lib/rpm") == {}
    assert stack.copy_tree("var/lib/rpm", str(tmp_path / "db")) == 0


def _packages() -> ImagePackages:
    return ImagePackages(manager="dpkg", packages=tuple(parse_dpkg_status(STATUS)),
                         os=OsRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
                         architecture="amd64")


def test_sbom_is_valid_cyclonedx_and_the_same_for_the_same_inputs() -> None:
    when = datetime.fromtimestamp(1_700_000_000, UTC)
    args: dict[str, Any] = {"image": "127.0.0.1:5000/app", "image_digest": "sha256:" + "a" * 64,
                            "base_image": "127.0.0.1:5000/debian:bookworm",
                            "base_digest": "sha256:" + "b" * 64, "timestamp": when}
    document = make_sbom(_packages(), **args)
    assert document == make_sbom(_packages(), **args)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(document.decode()) is None
    sbom = json.loads(document)
    purls = {c["name"]: c["purl"] for c in sbom["components"] if c["type"] == "library"}
    assert purls["bash"] == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"
    assert purls["libc6"].startswith("pkg:deb/debian/libc6@1:2.36-9%2Bdeb12u4?")
    base = [c for c in sbom["components"] if c["type"] == "container"]
    assert base[0]["version"] == "sha256:" + "b" * 64
    assert sbom["metadata"]["component"]["version"] == "sha256:" + "a" * 64
    assert sbom["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    image_deps = next(d for d in sbom["dependencies"] if d["ref"] == "image")["dependsOn"]
    assert len(image_deps) == 4


@pytest.fixture
def clean_secrets() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


def test_provenance_leaves_secret_build_arguments_out(clean_secrets: None) -> None:
    register_secret("hunter2-very-secret")
    statement = provenance_statement(ProvenanceInputs(
        image="127.0.0.1:5000/app", image_digest="sha256:" + "c" * 64, source_provider="git",
        source_uri="https://user:pw@example.invalid/app.git", source_commit="d" * 40,
        dockerfile_path="./", base_image="127.0.0.1:5000/debian:bookworm",
        base_image_digest="sha256:" + "e" * 64, engine="docker", engine_version="20.10",
        started=datetime(2026, 12, 1, 21, 0, tzinfo=UTC),
        finished=datetime(2026, 12, 1, 21, 5, tzinfo=UTC),
        buildargs={"TOKEN": "x-hunter2-very-secret", "VERSION": "1.2"}))
    text = json.dumps(statement)
    assert "hunter2" not in text and "user:pw" not in text
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external["buildArgs"] == {"VERSION": "1.2"}
    assert external["secretBuildArgs"] == ["TOKEN"]
    assert external["source"] == {"provider": "git", "uri": "https://example.invalid/app.git",
                                  "commit": "d" * 40}
    assert statement["subject"] == [{"name": "127.0.0.1:5000/app",
                                     "digest": {"sha256": "c" * 64}}]
    assert statement["predicate"]["runDetails"]["metadata"] == {
        "startedOn": "2026-12-01T21:00:00Z", "finishedOn": "2026-12-01T21:05:00Z"}


class _Registry:
    """A registry's manifest and blob store, with or without the referrers API (no
    registry on this machine has one: Debian's 2.8 does not)."""

    registry = "fake"

    def __init__(self, referrers_api: bool) -> None:
        self.referrers_api = referrers_api
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}

    def get_manifest_raw(self, repo: str, reference: str,
                         accept: Sequence[str] = ()) -> RawManifest:
        if reference not in self.manifests:
            raise ManifestNotFound(reference)
        body, media_type = self.manifests[reference]
        return RawManifest(body=body, media_type=media_type, digest=sha256_digest(body))

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        self.manifests[reference] = (body, media_type)
        self.manifests[sha256_digest(body)] = (body, media_type)
        return sha256_digest(body)

    def upload_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        self.blobs[sha256_digest(data)] = data
        return sha256_digest(data)

    def get_referrers(self, repo: str, digest: str) -> dict[str, Any] | None:
        if not self.referrers_api:
            return None
        found = []
        for reference, (body, media_type) in self.manifests.items():
            manifest = json.loads(body)
            if reference.startswith("sha256:") and \
                    (manifest.get("subject") or {}).get("digest") == digest:
                found.append({"mediaType": media_type, "digest": reference, "size": len(body),
                              "artifactType": manifest.get("artifactType")})
        return {"schemaVersion": 2, "manifests": found}


@pytest.mark.parametrize("referrers_api", [False, True])
def test_artifacts_are_found_and_the_referrers_tag_is_extended(referrers_api: bool) -> None:
    registry = _Registry(referrers_api)
    image = json.dumps({"schemaVersion": 2, "mediaType":
                        "application/vnd.docker.distribution.manifest.v2+json"}).encode()
    subject = registry.put_manifest("app", "1", image,
                                    "application/vnd.docker.distribution.manifest.v2+json")
    tag = fallback_tag(subject)
    if not referrers_api:  # someone else's referrer is there already: it must stay
        registry.put_manifest("app", tag, json.dumps({"schemaVersion": 2, "manifests": [
            {"digest": "sha256:" + "f" * 64, "artifactType": "application/other"}]}).encode(),
            "application/vnd.oci.image.index.v1+json")
    client: Any = registry
    sbom = attach_artifact(client, "app", subject, artifact_type="application/vnd.cyclonedx+json",
                           document=b'{"bom": 1}', document_type="application/vnd.cyclonedx+json")
    prov = attach_artifact(client, "app", subject, artifact_type="application/vnd.in-toto+json",
                           document=b'{"st": 1}', document_type="application/vnd.in-toto+json")
    assert sbom.via == prov.via == ("referrers-api" if referrers_api else "tag-schema")
    manifest = json.loads(registry.manifests[sbom.digest][0])
    assert manifest["subject"] == {"mediaType": "application/vnd.docker.distribution.manifest"
                                   ".v2+json", "digest": subject, "size": len(image)}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert registry.blobs[manifest["layers"][0]["digest"]] == b'{"bom": 1}'
    referrers, via = list_referrers(client, "app", subject)
    assert via == sbom.via
    digests = {r["digest"] for r in referrers}
    assert {sbom.digest, prov.digest} <= digests
    if not referrers_api:
        assert "sha256:" + "f" * 64 in digests
        # attaching the same artifact again does not list it twice
        attach_artifact(client, "app", subject, artifact_type="application/vnd.in-toto+json",
                        document=b'{"st": 1}', document_type="application/vnd.in-toto+json")
        assert len(list_referrers(client, "app", subject)[0]) == 3
    else:
        assert tag not in registry.manifests
    only, _ = list_referrers(client, "app", subject, "application/vnd.in-toto+json")
    assert [r["digest"] for r in only] == [prov.digest]


SPEC = """\
Name: hello-test
Version: 1.2
Release: 3
Epoch: 2
Summary: a package for the tests
License: MIT
BuildArch: noarch
%description
for the tests
%files
"""


@pytest.mark.skipif(not (shutil.which("rpm") and shutil.which("rpmbuild")),
                    reason="needs the host's rpm and rpmbuild (Debian package rpm)")
def test_an_rpm_database_in_a_layer_is_read_with_the_hosts_rpm(tmp_path: Path) -> None:
    top, db = tmp_path / "top", tmp_path / "db"
    (tmp_path / "t.spec").write_text(SPEC)

    def run(*argv: str) -> None:
        subprocess.run(argv, capture_output=True, check=True)

    run("rpmbuild", "--define", f"_topdir {top}", "-bb", str(tmp_path / "t.spec"))
    package = next((top / "RPMS" / "noarch").glob("*.rpm"))
    run("rpm", "--dbpath", str(db), "--initdb")
    run("rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--noscripts", str(package))
    files: dict[str, bytes | None] = {"var/lib/rpm": None}
    files.update({f"var/lib/rpm/{p.name}": p.read_bytes() for p in db.iterdir()
                  if p.is_file()})
    stack = LayerStack([_layer(tmp_path / "0.tar", files)])
    manager, packages = packages_of(stack)
    assert manager == "rpm"
    assert [(p.name, p.version, p.release, p.arch, p.epoch) for p in packages] == [
        ("hello-test", "1.2", "3", "noarch", "2")]
    sbom = json.loads(make_sbom(
        ImagePackages(manager="rpm", packages=tuple(packages), os=OsRelease("fedora", "40")),
        image="app", image_digest=None, base_image=None, base_digest=None,
        timestamp=datetime.now(UTC)))
    assert [c["purl"] for c in sbom["components"]] == [
        "pkg:rpm/fedora/hello-test@1.2-3?arch=noarch&distro=fedora-40&epoch=2"]
