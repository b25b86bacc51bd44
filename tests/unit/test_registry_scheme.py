"""RegistryClient: a loopback registry found plain-HTTP is asked over http at once by
later clients (no TLS attempt, whose set-up costs tens of milliseconds each time)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from atomic_reactor._registry import client as client_module
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.errors import RegistryError


class _Server(http.server.ThreadingHTTPServer):
    connections = 0

    def get_request(self):  # type: ignore[no-untyped-def]
        type(self).connections += 1
        return super().get_request()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_registry() -> Iterator[tuple[str, type[_Server]]]:
    class Counting(_Server):
        connections = 0

    server = Counting(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield address, Counting
    finally:
        server.shutdown()
        server.server_close()
        client_module._PLAIN_HTTP.discard(address)


def test_plain_http_is_remembered_for_later_clients(
        plain_registry: tuple[str, type[_Server]]) -> None:
    address, server = plain_registry
    with RegistryClient(address) as first:
        first.ping()
    assert server.connections == 2  # the TLS attempt, then plain HTTP
    with RegistryClient(address) as second:
        second.ping()
        second.ping()  # keep-alive: the same connection
    assert server.connections == 3
    assert address in client_module._PLAIN_HTTP


def test_forgotten_when_plain_http_stops_answering(
        plain_registry: tuple[str, type[_Server]]) -> None:
    address, _ = plain_registry
    with RegistryClient(address) as client:
        client.ping()
    gone = "127.0.0.1:9"  # discard port: nothing listens
    client_module._PLAIN_HTTP.add(gone)
    try:
        with RegistryClient(gone, retry=None) as client, \
                pytest.raises(RegistryError, match="unreachable"):
            client.request("GET", "/v2/", "", retry=False)
        assert gone not in client_module._PLAIN_HTTP  # both schemes tried next time
    finally:
        client_module._PLAIN_HTTP.discard(gone)


def test_not_for_registries_that_must_use_tls() -> None:
    client_module._PLAIN_HTTP.add("registry.example.com:5000")
    try:
        client = RegistryClient("registry.example.com:5000")
        assert client._schemes() == ["https://registry.example.com:5000"]
        client.close()
    finally:
        client_module._PLAIN_HTTP.discard("registry.example.com:5000")
