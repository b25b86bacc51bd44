"""The test suite's fault proxy (tests/support/faultproxy.py) against a tiny local
HTTP server: it forwards faithfully (keep-alive, chunked bodies), and each fault
does what it says, so the fault tests can trust it."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.faultproxy import Fault, FaultProxy


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        body = self._body()
        reply = f"{self.command} {self.path} {len(body)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_PUT = do_PATCH = do_POST = do_HEAD = _answer


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as running:
        yield running


def _connection(proxy: FaultProxy) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)


def test_forwards_on_one_kept_alive_connection(proxy: FaultProxy) -> None:
    conn = _connection(proxy)
    for path in ("/v2/", "/v2/a/manifests/1"):
        conn.request("GET", path)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, f"GET {path} 0".encode())
    conn.request("HEAD", "/v2/a/blobs/x")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b""
    conn.request("PATCH", "/v2/a/blobs/uploads/u", body=iter([b"abc", b"defg"]),
                 encode_chunked=True)
    assert conn.getresponse().read() == b"PATCH /v2/a/blobs/uploads/u 7"
    conn.close()
    expected = [("GET", "forwarded"), ("GET", "forwarded"), ("HEAD", "forwarded"),
                ("PATCH", "forwarded")]
    # the proxy records a request once it relayed the whole response: wait for it
    assert proxy.wait_for(lambda log: len(log) >= len(expected), timeout=10)
    assert [(s.method, s.outcome) for s in proxy.log] == expected


def test_status_fault_first_n_matching_then_forwards(proxy: FaultProxy) -> None:
    fault = Fault.status(503, path="/v2/*/manifests/*", method="PUT", times=2)
    proxy.add(fault)
    conn = _connection(proxy)
    statuses = []
    for method in ("GET", "PUT", "PUT", "PUT"):
        conn.request(method, "/v2/a/manifests/1", body=b"{}")
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    assert statuses == [200, 503, 503, 200]
    assert fault.hits == 2
    assert proxy.count("PUT", "/v2/*/manifests/*", outcome="503") == 2


def test_drop_cuts_the_body_after_k_bytes(proxy: FaultProxy) -> None:
    proxy.add(Fault.drop(after_bytes=3, path="/v2/*/blobs/uploads/*", method="PATCH"))
    conn = _connection(proxy)
    conn.request("PATCH", "/v2/a/blobs/uploads/u", body=b"x" * 100)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.getresponse()
    conn.close()
    conn = _connection(proxy)  # the next one goes through
    conn.request("PATCH", "/v2/a/blobs/uploads/u", body=b"x" * 100)
    assert conn.getresponse().read() == b"PATCH /v2/a/blobs/uploads/u 100"
    assert proxy.wait_for(lambda log: len(log) >= 2, timeout=10)
    assert [s.outcome for s in proxy.log] == ["drop", "forwarded"]


def test_delay_holds_until_released(proxy: FaultProxy) -> None:
    proxy.add(Fault.delay(600, path="/slow"))
    conn = _connection(proxy)
    done = threading.Event()

    def ask() -> None:
        conn.request("GET", "/slow")
        conn.getresponse().read()
        done.set()

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    assert proxy.wait_for(lambda log: any(s.outcome == "held" for s in log), timeout=10)
    assert not done.is_set()
    proxy.release()
    thread.join(timeout=10)
    assert done.is_set()


def test_tls_hello_gets_a_plain_http_answer(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")
        assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    assert proxy.tls_probes == 1 and proxy.log == []
