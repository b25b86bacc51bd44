"""Our push of a buildah image to the registry its base came from mounts the base's own
layer blobs (as ``buildah push`` does), on a machine that never pushed before: the
manifest names the base's blobs, nothing of them is compressed or uploaded again. To
another registry the layers are compressed and uploaded as before."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry

DOCKERFILE = """\
FROM {base}
RUN head -c 2000000 /dev/urandom > /big && echo {payload} > /payload
"""


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No earlier push known: no layer digest cache, no blob store."""
    monkeypatch.setenv("ATOMIC_REACTOR_CACHE_DIR", str(tmp_path / "cache"))


def _layers(registry: str, reference: str) -> list[str]:
    repo, _, tag = reference.rpartition(":")
    with RegistryClient(registry) as client:
        manifest, _ = client.get_manifest(repo, tag)
        digests = [str(layer["digest"]) for layer in manifest["layers"]]
        for digest in digests:  # every blob is there, in that repository
            assert client.blob_exists(repo, digest), f"{registry}/{repo}: {digest}"
    return digests


def _build(base_image: BaseImage, targets: list[str], tmp_path: Path,
           caplog: pytest.LogCaptureFixture) -> str:
    name = unique("art-reuse")
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.repo,
                                                                payload=unique("payload")))
    with caplog.at_level(logging.INFO, logger="atomic_reactor"):
        results = build_image_here(path_source(context), f"{name}:1", engine="buildah",
                                   parent_registry=base_image.registry.address,
                                   target_registries=targets)
    results.raise_for_status()
    return name


def test_the_base_s_blobs_are_mounted_where_the_base_came_from(
        base_image: BaseImage, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = base_image.registry.address
    name = _build(base_image, [registry], tmp_path, caplog)
    base = _layers(registry, base_image.repo)
    pushed = _layers(registry, f"{name}:1")
    assert pushed[:len(base)] == base  # the base's own blobs
    assert len(pushed) == len(base) + 1
    counts = [r.getMessage() for r in caplog.records if "blobs uploaded" in r.getMessage()]
    assert counts and f"{len(base)} mounted" in counts[0], counts  # not uploaded again


def test_to_another_registry_the_layers_are_compressed_and_uploaded(
        base_image: BaseImage, more_registries: list[Registry], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    other = more_registries[0].address
    name = _build(base_image, [other], tmp_path, caplog)
    base = _layers(base_image.registry.address, base_image.repo)
    pushed = _layers(other, f"{name}:1")
    assert len(pushed) == len(base) + 1
    assert pushed[0] != base[0]  # compressed here: another blob of the same layer
