"""The docker backend's transport (_engine/docker/_transport.py) against a real HTTP
server on a unix socket started here: chunked request bodies, JSON message streams and
multiplexed frames cut anywhere by the reads, error answers and connection failures as
errors.py translates them, connection reuse, and close() shutting open streams."""

from __future__ import annotations

import base64
import hashlib
import http.server
import itertools
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._engine.docker._http import IncompleteRead, ProtocolError, RemoteDisconnected
from atomic_reactor._engine.docker._transport import (
    STDERR,
    STDOUT,
    APIStatusError,
    Transport,
    chunked,
    demultiplex,
    encode_auth,
    json_messages,
    parse_address,
    query,
)
from atomic_reactor._engine.errors import docker_error
from atomic_reactor.errors import EngineError, EngineUnavailable, ImageNotFound
from tests.support.imports import loaded_after

#: progress messages as dockerd writes them, with a multi-byte character
MESSAGES = [{"stream": "Step 1/2 : FROM busybox\n"}, {"status": "Pulling fs layer", "id": "a1"},
            {"stream": " ---> caf\u00e9 \u2713\n"}, {"aux": {"ID": "sha256:" + "f" * 64}}]


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _chunks(self, pieces: list[bytes], pause: float = 0.02) -> None:
        """Answer with these pieces, each its own chunk, each flushed apart."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            time.sleep(pause)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _json(self, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_chunked(self) -> tuple[bytes, list[int]]:
        """The body of a chunked request, read strictly by the HTTP/1.1 grammar."""
        body, sizes = bytearray(), list[int]()
        while True:
            line = self.rfile.readline()
            assert line.endswith(b"\r\n"), line
            size = int(line.strip(), 16)
            if size == 0:
                assert self.rfile.readline() == b"\r\n"
                return bytes(body), sizes
            sizes.append(size)
            body += self.rfile.read(size)
            assert self.rfile.read(2) == b"\r\n"

    def do_POST(self) -> None:
        if self.path.startswith("/stall"):  # reads nothing of the body (a busy engine)
            self.server.stopping.wait(30)
            self.close_connection = True  # what is left unread is body, not a request
            return
        if self.path.startswith("/upload"):
            assert self.headers["Transfer-Encoding"] == "chunked"
            body, sizes = self._read_chunked()
            self._json(200, {"sha256": hashlib.sha256(body).hexdigest(), "sizes": sizes,
                             "auth": self.headers.get("X-Registry-Auth")})
        else:
            self.do_GET()

    def do_DELETE(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path.startswith("/v1.41/ping") or self.path.startswith("/ping"):
            self._json(200, {"path": self.path})
        elif self.path == "/json-stream":
            data = b"".join(json.dumps(m, ensure_ascii=False).encode() + b"\r\n" for m in MESSAGES)
            # cut inside a value, inside the UTF-8 of "é" and between two values
            cut = [7, data.index("\u00e9".encode()) + 1, data.index(b"}\r\n{") + 1]
            bounds = [0, *sorted(cut), len(data)]
            self._chunks([data[a:b] for a, b in itertools.pairwise(bounds)])
        elif self.path == "/json-truncated":
            self._chunks([b'{"stream": "a"}\n{"stream": "b'])
        elif self.path == "/frames":
            data = (_frame(STDOUT, b"out line\n") + _frame(STDERR, b"err line\n")
                    + _frame(STDOUT, b"x" * 70000))
            self._chunks([data[:3], data[3:12], data[12:20000], data[20000:]])
        elif self.path == "/missing-image":
            self._json(404, {"message": "No such image: x:1"})
        elif self.path == "/missing-container":
            self._json(404, {"message": "No such container: c1"})
        elif self.path == "/conflict":
            data = b"conflict: unable to delete\nsecond line"
            self.send_response(409)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/slow":
            time.sleep(1.5)
            self._json(200, {})
        elif self.path == "/answer-then-hang-up":  # kept alive by its headers, then closed
            self._json(200, {"path": self.path})
            self.close_connection = True
        elif self.path == "/short":  # ends 90 bytes before its Content-Length
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/hang-up":
            self.close_connection = True  # no answer at all
        elif self.path == "/endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\n{}\r\n")
            self.wfile.flush()
            while not self.server.stopping.wait(0.05):
                try:
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
                except OSError:
                    self.server.streams_closed += 1
                    return
        else:
            self._json(404, {"message": f"page not found: {self.path}"})


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The stand-in engine on a unix socket (a path) or on TCP (a host and port)."""

    daemon_threads = True

    def __init__(self, address: str | tuple[str, int]) -> None:
        self.address_family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        super().__init__(address, _Handler)  # type: ignore[arg-type]  # AF_UNIX: a path
        self.requests: list[str] = []
        self.connections = 0
        self.streams_closed = 0
        self.stopping = threading.Event()

    def get_request(self) -> Any:
        self.connections += 1
        return super().get_request()


def _serving(address: str | tuple[str, int]) -> Iterator[tuple[_Server, str]]:
    served = _Server(address)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served, (f"unix://{address}" if isinstance(address, str)
                   else f"tcp://127.0.0.1:{served.server_address[1]}")
    served.stopping.set()
    served.shutdown()
    served.server_close()
    thread.join(5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[_Server, str]]:
    yield from _serving(str(tmp_path / "api.sock"))


@pytest.fixture
def tcp_server() -> Iterator[tuple[_Server, str]]:
    yield from _serving(("127.0.0.1", 0))


class _Connection:
    timeout = 1

    def __init__(self, address: str) -> None:
        self.address = address
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


def _translated(exc: BaseException, address: str, action: str = "inspecting image x:1",
                streaming: bool = False) -> Any:
    error = docker_error(action, exc, _Connection(address), streaming)
    assert error is not None, exc
    return error


def test_a_chunked_body_is_sent_as_produced_and_arrives_whole(server: tuple[_Server, str]
                                                              ) -> None:
    pieces = [b"a" * 10, b"", b"b" * 100000, b"c"]
    assert b"".join(chunked(pieces)) == (b"a\r\n" + b"a" * 10 + b"\r\n" + b"186a0\r\n"
                                         + b"b" * 100000 + b"\r\n1\r\nc\r\n0\r\n\r\n")
    transport = Transport(server[1], timeout=10)
    answer = transport.post("/upload", body=iter(pieces),
                            headers={"X-Registry-Auth": encode_auth({"username": "u"})}).json()
    assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert answer["sizes"] == [10, 100000, 1]  # the empty piece did not end the body
    assert json.loads(base64.urlsafe_b64decode(answer["auth"])) == {
        "username": "u"}
    transport.close()


def test_json_messages_split_anywhere_by_the_reads(server: tuple[_Server, str]) -> None:
    transport = Transport(server[1], timeout=10)
    response = transport.get("/json-stream", stream=True)
    assert list(response.json_messages()) == MESSAGES
    # whatever the cuts, byte by byte included
    data = b"".join(json.dumps(m, ensure_ascii=False).encode() + b"\n" for m in MESSAGES)
    assert list(json_messages(data[i:i + 1] for i in range(len(data)))) == MESSAGES
    assert list(json_messages([b'{"a":1}{"b":2}', b"  \n"])) == [{"a": 1}, {"b": 2}]
    with pytest.raises(json.JSONDecodeError) as info:
        list(transport.get("/json-truncated", stream=True).json_messages())
    error = _translated(info.value, server[1], "building x:1", streaming=True)
    assert type(error) is EngineError
    assert error.message.startswith("building x:1 failed: the engine's answer is not valid JSON")
    transport.close()


def test_multiplexed_frames_are_split_by_stream(server: tuple[_Server, str]) -> None:
    transport = Transport(server[1], timeout=10)
    frames = list(transport.get("/frames", stream=True).frames())
    assert frames == [(STDOUT, b"out line\n"), (STDERR, b"err line\n"), (STDOUT, b"x" * 70000)]
    with pytest.raises(IncompleteRead):
        list(demultiplex([_frame(STDOUT, b"whole"), _frame(STDERR, b"cut short")[:-3]]))
    transport.close()


def test_error_answers_become_the_project_errors(server: tuple[_Server, str]) -> None:
    transport = Transport(server[1], timeout=10)
    with pytest.raises(APIStatusError) as missing:
        transport.get("/missing-image")
    assert missing.value.status == 404
    error = _translated(missing.value, server[1])
    assert type(error) is ImageNotFound and error.message == (
        "inspecting image x:1: No such image: x:1")
    with pytest.raises(APIStatusError) as gone:
        transport.get("/missing-container")
    error = _translated(gone.value, server[1], "inspecting container c1")
    assert type(error) is EngineError and error.message == (
        "inspecting container c1: No such container: c1")
    with pytest.raises(APIStatusError) as conflict:
        transport.delete("/conflict")
    error = _translated(conflict.value, server[1], "removing image x:1")
    assert type(error) is EngineError and error.message == (
        "removing image x:1 failed: conflict: unable to delete")
    # the connection survives an error answer
    assert transport.get("/ping").json() == {"path": "/ping"}
    transport.close()


def test_connections_are_reused_and_the_version_pins_the_path(server: tuple[_Server, str]
                                                              ) -> None:
    served, address = server
    transport = Transport(address, timeout=10, version="1.41")
    for _ in range(3):
        assert transport.get("/ping", params={"a": True, "b": None}).json() == {
            "path": "/v1.41/ping?a=1"}
    assert served.connections == 1
    transport.close()
    transport.get("/ping")
    assert served.connections == 2
    transport.close()


def test_connection_failures_become_engine_unavailable(server: tuple[_Server, str],
                                                       tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path}/none.sock"
    with pytest.raises(OSError) as absent:
        Transport(nowhere).get("/ping")
    error = _translated(absent.value, nowhere)
    assert type(error) is EngineUnavailable and error.message == (
        f"no container engine answers at socket {tmp_path}/none.sock "
        "(no such file or directory); is dockerd running?")
    with pytest.raises(RemoteDisconnected) as hung_up:
        Transport(server[1]).get("/hang-up")
    error = _translated(hung_up.value, server[1], "pushing x")
    assert type(error) is EngineUnavailable and error.message == (
        f"pushing x: the connection to the engine at socket {server[1][7:]} broke off "
        "(connection aborted); did dockerd stop?")


def test_a_read_timeout_is_timed_out(server: tuple[_Server, str]) -> None:
    transport = Transport(server[1], timeout=0.3)
    with pytest.raises(TimeoutError) as slow:
        transport.get("/slow")
    connection = _Connection(server[1])
    error = docker_error("pulling x", slow.value, connection, streaming=True)
    assert type(error) is EngineError and error is not None and error.message == (
        f"pulling x: no answer from the engine at socket {server[1][7:]} in 1 s (timed out)")
    assert connection.resets == 0  # a stream's reader closes its own connection
    assert transport.get("/slow", timeout=5).json() == {}


@pytest.mark.parametrize("over", ["unix", "tcp"])
def test_an_idle_connection_the_engine_closed_is_not_used(
        over: str, request: pytest.FixtureRequest) -> None:
    """Over TCP a request written to a connection the engine closed goes out without an
    error and then finds no answer: the pool drops such a connection before using it."""
    served, address = request.getfixturevalue("server" if over == "unix" else "tcp_server")
    transport = Transport(address, timeout=10)
    transport.get("/answer-then-hang-up")
    time.sleep(0.1)  # the server's end of the kept connection is closed by now
    assert transport.post("/ping").json() == {"path": "/ping"}
    assert served.requests.count("/ping") == 1
    assert served.connections == 2
    transport.close()


@pytest.mark.parametrize(("method", "sent"), [("GET", 2), ("POST", 1), ("DELETE", 1)])
def test_only_a_get_unanswered_on_a_reused_connection_is_sent_again(
        server: tuple[_Server, str], method: str, sent: int) -> None:
    """A request sent whole that dockerd hung up on may have been carried out: a create,
    commit or delete is not repeated behind the caller's back."""
    served, address = server
    transport = Transport(address, timeout=10)
    transport.get("/ping")  # the connection is pooled
    with pytest.raises(RemoteDisconnected):
        transport.request(method, "/hang-up")
    assert served.requests.count("/hang-up") == sent
    transport.close()


@pytest.mark.parametrize("stream", [False, True], ids=["read", "chunks"])
def test_a_body_shorter_than_its_length_is_incomplete(server: tuple[_Server, str],
                                                      stream: bool) -> None:
    """An engine that hangs up inside a body is an error, not the end of the body, and
    its connection is not kept for the next request."""
    served, address = server
    transport = Transport(address, timeout=10)
    with pytest.raises(IncompleteRead):
        response = transport.get("/short", stream=stream)
        for _ in response.chunks():
            pass
    error = _translated(IncompleteRead(b"", 90), address, "pulling x",
                        streaming=stream)
    assert "pulling x" in error.message
    assert transport.get("/ping").json() == {"path": "/ping"}
    assert served.connections == 2  # a new connection, not the broken one
    transport.close()


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_close_shuts_a_request_still_sending_its_body(
        kind: str, server: tuple[_Server, str], tcp_server: tuple[_Server, str]) -> None:
    """A build's context still uploading when the build is cancelled from another
    thread: close() cuts the request, which raises at once (not when the engine reads
    or the timeout comes)."""
    _, address = server if kind == "unix" else tcp_server
    transport = Transport(address, timeout=60)
    sent = itertools.count()

    def endless() -> Iterator[bytes]:
        while True:
            next(sent)
            yield b"x" * (1 << 20)

    outcome: list[BaseException] = []

    def upload() -> None:
        try:
            transport.post("/stall", body=endless())
        except BaseException as exc:  # what the request raised
            outcome.append(exc)

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    time.sleep(0.5)  # the socket's buffers are full: the sender waits in send()
    assert thread.is_alive()
    started = time.monotonic()
    transport.close()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 10
    assert len(outcome) == 1 and isinstance(outcome[0], OSError | ProtocolError)
    pieces = next(sent)
    time.sleep(0.2)
    assert next(sent) == pieces + 1  # nothing more was read from the body since


def test_a_request_after_close_connects_anew(server: tuple[_Server, str]) -> None:
    served, address = server
    transport = Transport(address, timeout=10)
    assert transport.get("/ping").json() == {"path": "/ping"}
    transport.close()
    assert transport.get("/ping").json() == {"path": "/ping"}
    assert served.connections == 2


def test_close_shuts_an_open_stream(server: tuple[_Server, str]) -> None:
    served, address = server
    transport = Transport(address, timeout=10)
    response = transport.get("/endless", stream=True)
    chunks = response.chunks()
    assert next(chunks) == b"{}"
    stopped = threading.Timer(0.2, transport.close)
    stopped.start()
    started = time.monotonic()
    with pytest.raises((OSError, ProtocolError, ValueError)):
        for _ in chunks:
            pass
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while served.streams_closed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.streams_closed == 1  # the server saw its client go


def test_addresses_and_queries() -> None:
    assert parse_address("unix:///var/run/docker.sock").host == "/var/run/docker.sock"
    assert parse_address("tcp://10.0.0.1:2375") == parse_address("10.0.0.1:2375")
    secure = parse_address("tcp://h.example", tls=True)
    assert (secure.scheme, secure.host, secure.port) == ("https", "h.example", 2376)
    assert parse_address("http://[::1]:99").host == "::1"
    with pytest.raises(ValueError, match="ssh://"):
        parse_address("ssh://user@h")
    assert query({"t": "a:1", "buildargs": {"A": "1"}, "changes": ["X", "Y"], "n": None,
                  "q": False}) == ("?t=a%3A1&buildargs=%7B%22A%22%3A+%221%22%7D"
                                   "&changes=X&changes=Y&q=0")


def test_the_transport_imports_no_http_library() -> None:
    assert loaded_after(["atomic_reactor._engine.docker._transport",
                         "atomic_reactor._engine.docker.engine"],
                        ["docker", "requests", "urllib3", "http.client", "email",
                         "ssl"]) == []
