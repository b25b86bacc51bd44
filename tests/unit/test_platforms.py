"""Unit tests of platform parsing (requests, CLI) and platform selection in lists."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atomic_reactor._engine.types import Platform
from atomic_reactor._platforms import parse_platforms
from atomic_reactor._registry.manifest_list import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestListEntry,
    list_document,
    list_entries,
    select_platform,
)
from atomic_reactor._request import BuildRequest
from atomic_reactor.errors import BuildJsonError, InputError

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("linux/amd64,linux/arm64", (AMD64, ARM64)),
    (" linux/arm64 , linux/amd64 ", (ARM64, AMD64)),
    (["linux/amd64"], (AMD64,)),
    (["x86_64", "aarch64"], (AMD64, ARM64)),
    ("linux/arm/v7", (Platform("linux", "arm", "v7"),)),
    ([ARM64], (ARM64,)),
    ("", ()),
    (None, ()),
    ([], ()),
])
def test_parse_platforms(value: Any, expected: tuple[Platform, ...]) -> None:
    assert parse_platforms(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("linux/amd64,linux/amd64", "named twice"),
    ("linux/amd64,", "expected os/arch"),
    ("linux/", "expected os/arch"),
    ("linux/amd64/v3/x", "expected os/arch"),
    ("windows/amd64", "only linux"),
    ("linux/sparc", "unknown architecture 'sparc'"),
    ("linux/arm64/v7", "no variant 'v7'"),
    ([3], "invalid platform 3"),
    ({"os": "linux"}, "must be a list"),
])
def test_bad_platforms_are_bad_input(value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_platforms(value)


def test_request_keeps_platforms_as_strings() -> None:
    request = BuildRequest.from_mapping({
        "source": {"provider": "path", "uri": "file:///src"}, "image": "app:1",
        "platforms": ["linux/amd64", "aarch64"]})
    assert request.options["platforms"] == ["linux/amd64", "linux/arm64"]
    assert request.workflow_kwargs()["platforms"] == ["linux/amd64", "linux/arm64"]
    json.dumps(request.to_dict())  # still plain JSON


def test_request_without_platforms_is_unchanged() -> None:
    request = BuildRequest.from_mapping({
        "source": {"provider": "path", "uri": "file:///src"}, "image": "app:1",
        "platforms": []})
    assert "platforms" not in request.options
    assert "platforms" not in request.workflow_kwargs()


def test_request_with_a_bad_platform_names_the_key() -> None:
    with pytest.raises(BuildJsonError, match="'platforms': invalid platform 'linux/'"):
        BuildRequest.from_mapping({
            "source": {"provider": "path", "uri": "file:///src"}, "image": "app:1",
            "platforms": "linux/"})


# -- lists ---------------------------------------------------------------------------------


def _index(*platforms: dict[str, str]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "size": 10 + n, "digest": f"sha256:{n:064x}",
         "platform": p} for n, p in enumerate(platforms)]}


def test_select_platform_picks_the_entry() -> None:
    document = _index({"os": "linux", "architecture": "amd64"},
                      {"os": "linux", "architecture": "arm64", "variant": "v8"},
                      {"os": "linux", "architecture": "arm", "variant": "v7"})
    amd = select_platform(document, AMD64)
    arm = select_platform(document, ARM64)
    assert amd is not None and amd.digest == f"sha256:{0:064x}" and amd.size == 10
    assert arm is not None and arm.platform == Platform("linux", "arm64", "v8")
    assert select_platform(document, Platform("linux", "arm64", "v8")) == arm
    assert select_platform(document, Platform("linux", "arm", "v6")) is None
    assert select_platform(document, Platform("linux", "s390x")) is None


def test_arm64_v8_matches_an_entry_without_variant() -> None:
    document = _index({"os": "linux", "architecture": "arm64"})
    assert select_platform(document, Platform("linux", "arm64", "v8")) is not None


def test_entries_without_platform_are_left_out() -> None:
    document = _index({"os": "linux", "architecture": "amd64"},
                      {"os": "unknown", "architecture": "unknown"})
    document["manifests"].append({"mediaType": OCI_MANIFEST, "digest": "sha256:" + "f" * 64,
                                  "size": 1})
    assert [e.platform for e in list_entries(document)] == [AMD64]


def test_list_document_docker_when_all_docker() -> None:
    entries = [ManifestListEntry("sha256:" + "a" * 64, AMD64, DOCKER_MANIFEST, 5),
               ManifestListEntry("sha256:" + "b" * 64, ARM64, DOCKER_MANIFEST, 6)]
    body, media_type = list_document(entries)
    assert media_type == DOCKER_MANIFEST_LIST
    document = json.loads(body)
    assert document["mediaType"] == DOCKER_MANIFEST_LIST
    assert [m["platform"] for m in document["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    assert list_entries(document) == entries


def test_list_document_oci_when_any_is_oci() -> None:
    entries = [ManifestListEntry("sha256:" + "a" * 64, AMD64, DOCKER_MANIFEST, 5),
               ManifestListEntry("sha256:" + "b" * 64, ARM64, OCI_MANIFEST, 6)]
    assert list_document(entries)[1] == OCI_INDEX


def test_list_document_refuses_duplicates_and_nothing() -> None:
    entry = ManifestListEntry("sha256:" + "a" * 64, AMD64, DOCKER_MANIFEST, 5)
    with pytest.raises(InputError, match="two entries for linux/amd64"):
        list_document([entry, entry])
    with pytest.raises(InputError, match="at least one entry"):
        list_document([])
    with pytest.raises(InputError, match="no media type or size"):
        list_document([ManifestListEntry("sha256:" + "a" * 64, AMD64)])


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ("linux/sparc", "unknown architecture 'sparc'"),
    ("linux/amd64,linux/amd64", "platform linux/amd64 is named twice"),
    ("windows/amd64", "only linux images can be built"),
])
def test_cli_bad_platform_is_one_line_exit_2(tmp_path: Any, value: str, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from atomic_reactor.cli.main import main

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    code = main(["build", "path", "--uri", str(tmp_path), "--image", "app:1",
                 "--platform", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("atomic-reactor: error: ")
    assert message in err[0]


def test_cli_platform_overrides_the_build_json(tmp_path: Any) -> None:
    from atomic_reactor.cli.main import _request_from_args, build_parser

    path = tmp_path / "build.json"
    path.write_text(json.dumps({"source": {"provider": "path", "uri": "file:///src"},
                                "image": "app:1", "platforms": ["linux/amd64"]}))
    args = build_parser().parse_args(["build", "json", str(path),
                                      "--platform", "linux/arm64,linux/amd64"])
    request, _ = _request_from_args(args)
    assert request.options["platforms"] == ["linux/arm64", "linux/amd64"]
    args = build_parser().parse_args(["build", "json", str(path)])
    assert _request_from_args(args)[0].options["platforms"] == ["linux/amd64"]
