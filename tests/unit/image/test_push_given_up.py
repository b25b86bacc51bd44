"""A registry's part of our push stops at its next blob once the push was given up (a
cancel, another registry's failure): no further blob is asked for, no manifest put.

The moment between two blobs cannot be hit on demand with a real registry, so a
stand-in answers the blob HEADs (every blob there already) and gives the push up while
it answers the first one. The integration test of a cancel holding a manifest PUT is
tests/integration/faults/test_cancel.py."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator

import pytest

from atomic_reactor._image.push import (
    PreparedImage,
    PushSettings,
    RegistryTarget,
    _GivenUp,
    _push_one,
)
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.upload import Blob
from tests.support.registry_standin import running

GIVEN_UP = threading.Event()


class _Registry(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str]] = []

    def _answer(self) -> None:
        type(self).requests.append((self.command, self.path))
        if "/blobs/" in self.path:
            GIVEN_UP.set()  # the push is given up while this blob is asked for
        self.send_response(200 if self.command == "HEAD" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = _answer
    do_GET = _answer

    def do_PUT(self) -> None:  # a manifest
        type(self).requests.append((self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    _Registry.requests = []
    GIVEN_UP.clear()
    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)) as address:
        yield address


def _prepared() -> PreparedImage:
    layers = tuple(Blob.of_bytes(f"layer {n}".encode()) for n in range(3))
    return PreparedImage(config=Blob.of_bytes(b"{}"), layers=layers, manifest=b"{}",
                         media_type="application/vnd.docker.distribution.manifest.v2+json",
                         diff_ids=(), compression="gzip")


def test_the_next_blob_is_not_asked_for_once_the_push_was_given_up(registry: str) -> None:
    target = RegistryTarget(registry=registry,
                            names=(ImageName.parse(f"{registry}/art-unit/given-up:1"),))
    with pytest.raises(_GivenUp):
        _push_one(_prepared(), target, PushSettings(), None, given_up=GIVEN_UP)
    blobs = [path for method, path in _Registry.requests if "/blobs/" in path]
    assert len(blobs) == 1  # the first of four blobs, none after it
    assert not any("/manifests/" in path for _, path in _Registry.requests)


def test_a_push_not_given_up_asks_for_every_blob_and_puts_the_manifest(
        registry: str) -> None:
    never = threading.Event()
    prepared = _prepared()
    target = RegistryTarget(registry=registry,
                            names=(ImageName.parse(f"{registry}/art-unit/kept:1"),))
    pushed = _push_one(prepared, target, PushSettings(), None, given_up=never)
    blobs = [path for method, path in _Registry.requests if "/blobs/" in path]
    assert len(blobs) == 4 and pushed.skipped == 4
    assert ("PUT", "/v2/art-unit/kept/manifests/1") in _Registry.requests
    assert [tag.digest for tag in pushed.tags] == [prepared.digest]
