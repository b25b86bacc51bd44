"""RegistryClient's choice of scheme: a loopback registry is asked over plain HTTP first
(no TLS attempt, whose set-up costs tens of milliseconds each time) and over https when
it turns out to want TLS; a registry found plain-HTTP is asked over http at once by
later clients."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_reactor._registry import client as client_module
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.errors import RegistryError
from tests.support.registry_standin import running


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
    with running(server) as address:
        yield address, Counting


def test_plain_http_is_remembered_for_later_clients(
        plain_registry: tuple[str, type[_Server]]) -> None:
    address, server = plain_registry
    with RegistryClient(address) as first:
        first.ping()
    assert server.connections == 1  # plain HTTP first: no TLS attempt
    with RegistryClient(address) as second:
        second.ping()
        second.ping()  # keep-alive: the same connection
    assert server.connections == 2
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


class _TlsOnly(http.server.ThreadingHTTPServer):
    """A TLS registry as Go serves one: plain HTTP to its port gets Go's 400."""

    context: ssl.SSLContext
    plain_requests = 0

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, address = super().get_request()
        first = sock.recv(1, socket.MSG_PEEK)
        if first != b"\x16":  # not a TLS handshake record
            type(self).plain_requests += 1
            sock.recv(65536)
            sock.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 48\r\n\r\n"
                         b"Client sent an HTTP request to an HTTPS server.\n")
            sock.close()
            raise OSError("plain HTTP refused")  # the server drops this request
        return self.context.wrap_socket(sock, server_side=True), address

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def tls_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[tuple[str, type[_TlsOnly]]]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # this test's CA, for requests

    class Counting(_TlsOnly):
        plain_requests = 0

    Counting.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    Counting.context.load_cert_chain(cert, key)
    server = Counting(("127.0.0.1", 0), _Handler)
    with running(server) as address:
        yield address, Counting


def test_a_loopback_registry_that_wants_tls_is_asked_over_https(
        tls_registry: tuple[str, type[_TlsOnly]]) -> None:
    address, server = tls_registry
    with RegistryClient(address) as client:
        client.ping()
        assert client._base == f"https://{address}"
        client.ping()  # then https at once
    assert server.plain_requests == 1
    assert address not in client_module._PLAIN_HTTP


class _Refusing(_Handler):
    def do_GET(self) -> None:
        body = b'{"errors": [{"code": "NAME_INVALID", "message": "invalid repository name"}]}'
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_plain_400_without_tls_words_is_the_registry_s_answer() -> None:
    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)) as address, \
            RegistryClient(address) as client:
        response = client.request("GET", "/v2/Bad/tags/list", "Bad", retry=False)
        assert response.status_code == 400 and client._base == f"http://{address}"


def test_an_insecure_remote_registry_is_asked_over_https_first() -> None:
    client = RegistryClient("registry.example.com:5000", insecure=True)
    try:
        assert client._schemes() == ["https://registry.example.com:5000",
                                     "http://registry.example.com:5000"]
    finally:
        client.close()


class _DropsFirst(http.server.ThreadingHTTPServer):
    """Plain HTTP whose first connection is closed unanswered (a transient fault)."""

    dropped = 0

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, address = super().get_request()
        if type(self).dropped == 0:
            type(self).dropped += 1
            sock.recv(65536)
            sock.close()
            raise OSError("dropped")  # the server forgets this connection
        return sock, address

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass


def test_a_plain_registry_s_dropped_connection_is_the_error_and_is_retried() -> None:
    """The TLS attempt after a failed plain one meets a plain server ("wrong version
    number"): the failure reported, and retried, is the plain attempt's."""
    from atomic_reactor._retry import RetryPolicy

    class Once(_DropsFirst):
        dropped = 0

    with running(Once(("127.0.0.1", 0), _Handler)) as address:
        with RegistryClient(address, retry=RetryPolicy(attempts=1)) as client, \
                pytest.raises(RegistryError, match="unreachable") as caught:
            client.ping()
        assert "wrong version number" not in str(caught.value)
        Once.dropped = 0
        retrying = RetryPolicy(attempts=3, delay=0.01, sleep=lambda seconds: None)
        with RegistryClient(address, retry=retrying) as client:
            client.ping()  # the retry after the dropped connection answers
            assert client._base == f"http://{address}"
