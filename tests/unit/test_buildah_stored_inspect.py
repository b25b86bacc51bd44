"""convert.stored_inspect: a storage record read as buildah would show it, or None
where that is not sure (the engine then asks buildah)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from atomic_reactor._engine.buildah import convert

CONFIG: dict[str, Any] = {
    "Hostname": "", "User": "1001", "Env": ["A=1"], "Cmd": ["/bin/sh"], "Volumes": None,
    "WorkingDir": "/srv", "Entrypoint": None, "OnBuild": [], "Labels": {"a": "b"},
    "ExposedPorts": {"8080/tcp": {}},
}
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"digest": "sha256:" + "1" * 64, "size": 1},
    "layers": [{"digest": "sha256:" + "2" * 64, "size": 123}]}).encode()


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "created": "2026-12-02T04:00:20.947281438Z", "config": dict(CONFIG),
        "container_config": dict(CONFIG), "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "3" * 64]},
        "history": [{"created": "2026-12-02T04:00:20Z", "comment": "made"}]}
    doc.update(changes)
    return doc


RECORD: dict[str, Any] = {"id": "4" * 64, "names": ["localhost/x:1", "127.0.0.1:5/x:1"],
          "digest": "sha256:" + "5" * 64}


def read(doc: dict[str, Any], manifest: bytes = MANIFEST) -> Any:
    return convert.stored_inspect(RECORD, json.dumps(doc).encode(), manifest)


def test_a_docker_image_reads_as_buildah_shows_it() -> None:
    found = read(document())
    assert found is not None
    entry, inspect = found
    assert entry == {"id": "sha256:" + "4" * 64, "names": RECORD["names"],
                     "digest": RECORD["digest"]}
    assert inspect["FromImageDigest"] == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    info = convert.image_info(inspect, entry["names"], entry["digest"])
    assert info.id == "sha256:" + "4" * 64
    assert info.size == 123
    assert info.labels == {"a": "b"}
    assert info.digests == (f"127.0.0.1:5/x@{RECORD['digest']}",)
    shown = convert.docker_image_inspect(inspect, info)
    assert shown["Comment"] == "made"
    assert shown["Config"]["ExposedPorts"] == {"8080/tcp": {}}


def test_empty_omitted_keys_are_left_out() -> None:
    config = {**CONFIG, "ExposedPorts": {}, "StopSignal": "", "Shell": None}
    found = read(document(config=config, container_config=config))
    assert found is not None
    assert "ExposedPorts" not in found[1]["Docker"]["config"]
    assert "StopSignal" not in found[1]["Docker"]["config"]


@pytest.mark.parametrize("doc, manifest", [
    (document(config={**CONFIG, "Healthcheck": {"Test": ["NONE"]}}), MANIFEST),
    (document(config={**CONFIG, "Cmd": "/bin/sh"}), MANIFEST),
    (document(config={**CONFIG, "Labels": {"a": 1}}), MANIFEST),
    (document(container_config={}), MANIFEST),
    (document(config=None), MANIFEST),
    (document(created="2026-12-02T04:00:20.50Z"), MANIFEST),
    (document(created="2026-12-02T04:00:20.000Z"), MANIFEST),
    (document(architecture=""), MANIFEST),
    (document(), MANIFEST.replace(b"vnd.docker.distribution.manifest.v2+json",
                                  b"vnd.oci.image.manifest.v1+json")),
    (document(), b"not json"),
], ids=["healthcheck", "string-cmd", "label-number", "other-container-config", "no-config",
        "trailing-zero", "zero-fraction", "no-architecture", "oci", "bad-manifest"])
def test_what_buildah_could_show_otherwise_is_not_read(doc: dict[str, Any],
                                                       manifest: bytes) -> None:
    assert read(doc, manifest) is None
