"""BlobUploader and a blob known only by its descriptor (a base image's layer): mounted
from the repository that has it; where the registry refuses the mount (a registry
that does not mount, or no pull access there), read from that repository and uploaded.

The refusal cannot be had on demand from the Debian registry (it mounts whenever the
blob is there), so a stand-in registry answers here."""

from __future__ import annotations

import hashlib
import http.server
from collections.abc import Iterator

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._registry.upload import Blob, BlobUploader
from atomic_reactor.errors import RegistryError
from tests.support.registry_standin import running

CONTENT = b"the base image's layer, gzip as pulled" * 100
DIGEST = "sha256:" + hashlib.sha256(CONTENT).hexdigest()


class _Registry(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mounts = True
    requests: list[tuple[str, str]] = []
    received = b""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
               ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_HEAD(self) -> None:
        type(self).requests.append(("HEAD", self.path))
        self._reply(404)

    def do_GET(self) -> None:
        type(self).requests.append(("GET", self.path))
        if self.path == f"/v2/base/blobs/{DIGEST}":
            self._reply(200, CONTENT)
        else:
            self._reply(404)

    def do_POST(self) -> None:
        type(self).requests.append(("POST", self.path))
        if "mount=" in self.path and type(self).mounts:
            self._reply(201, headers={"Location": f"/v2/app/blobs/{DIGEST}"})
        else:
            self._reply(202, headers={"Location": "/v2/app/blobs/uploads/session-1"})

    def do_PUT(self) -> None:
        type(self).requests.append(("PUT", self.path))
        type(self).received = self._body()
        self._reply(201, headers={"Location": f"/v2/app/blobs/{DIGEST}",
                                  "Docker-Content-Digest": DIGEST})


@pytest.fixture
def registry() -> Iterator[str]:
    _Registry.requests = []
    _Registry.received = b""
    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)) as address:
        yield address


def _remote_blob() -> Blob:
    return Blob(digest=DIGEST, size=len(CONTENT))  # no path, no data: only a descriptor


def test_a_descriptor_only_blob_is_mounted(registry: str) -> None:
    _Registry.mounts = True
    with RegistryClient(registry) as client:
        assert BlobUploader(client).upload("app", _remote_blob(), mount_from="base") == "mounted"
    assert not any(method == "GET" for method, _ in _Registry.requests)


def test_refused_it_is_read_from_the_base_and_uploaded(registry: str) -> None:
    _Registry.mounts = False
    with RegistryClient(registry) as client:
        assert BlobUploader(client).upload("app", _remote_blob(), mount_from="base") == \
            "uploaded"
    assert ("GET", f"/v2/base/blobs/{DIGEST}") in _Registry.requests
    assert _Registry.received == CONTENT


def test_without_a_repository_to_take_it_from_it_says_so(registry: str) -> None:
    with RegistryClient(registry) as client, \
            pytest.raises(RegistryError, match="no repository to take it from"):
        BlobUploader(client).upload("app", _remote_blob())
