"""_engine/docker/_http: the HTTP/1.1 answers dockerd gives, read from raw bytes."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from atomic_reactor._engine.docker._http import (
    Connection,
    Headers,
    IncompleteRead,
    ProtocolError,
    RemoteDisconnected,
    Response,
)


def answer(raw: bytes, method: str = "GET") -> Response:
    return Response(io.BufferedReader(io.BytesIO(raw)), method)


def test_a_content_length_body_and_what_follows_it_stays_for_the_next_answer() -> None:
    reader = io.BufferedReader(io.BytesIO(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    first = Response(reader, "GET")
    assert (first.status, first.reason, first.headers["Content-Type"]) == \
        (200, "OK", "application/json")
    assert first.read() == b"{}" and first.isclosed() and not first.will_close
    second = Response(reader, "GET")
    assert second.status == 404 and second.read() == b"" and second.isclosed()


def test_a_chunked_body_with_extensions_and_trailers() -> None:
    got = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: y\r\n\r\n")
    pieces = []
    while data := got.read1(3):
        pieces.append(data)
    assert b"".join(pieces) == b"hello world" and max(map(len, pieces)) <= 3
    assert got.isclosed()


def test_continue_is_skipped_and_no_body_answers_have_none() -> None:
    got = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert got.status == 204 and got.read() == b"" and got.isclosed()
    head = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")
    assert head.read() == b"" and head.isclosed()


def test_a_body_without_framing_lasts_till_the_connection_ends() -> None:
    got = answer(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert got.will_close and got.read() == b"all of it" and got.isclosed()
    upgraded = answer(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                      b"\x01\x00\x00\x00\x00\x00\x00\x02hi")
    assert upgraded.will_close and upgraded.read() == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
])
def test_an_answer_cut_short_is_incomplete(raw: bytes) -> None:
    with pytest.raises(IncompleteRead):
        answer(raw).read()


@pytest.mark.parametrize("raw", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n",
])
def test_what_is_not_http_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        answer(raw).read()


def test_a_connection_closed_without_an_answer() -> None:
    with pytest.raises(RemoteDisconnected) as closed:
        answer(b"")
    assert isinstance(closed.value, ConnectionResetError)
    with pytest.raises(RemoteDisconnected):
        answer(b"HTTP/1.1 200 OK\r\nContent-")


def test_headers_are_found_whatever_their_case() -> None:
    headers = Headers([("Api-Version", "1.41"), ("X-A", "1"), ("x-a", "2")])
    assert headers["api-version"] == "1.41" and headers.get("API-VERSION") == "1.41"
    assert headers["X-A"] == "1, 2" and "x-a" in headers and len(headers) == 2
    assert headers.get("Missing", "none") == "none"


def test_a_request_as_sent_on_a_socket() -> None:
    ours, theirs = socket.socketpair()
    received = bytearray()

    def serve() -> None:
        with theirs:
            while b"\r\n\r\n" not in received or not received.endswith(b"body"):
                data = theirs.recv(65536)
                if not data:
                    return
                received.extend(data)
            theirs.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")

    thread = threading.Thread(target=serve)
    thread.start()
    connection = Connection("unix", "/not/used")
    connection.sock = ours
    connection._reader = ours.makefile("rb")
    connection.send_head("POST", "/v1.41/build?t=x", {"X-Registry-Config": "e30="}, b"body")
    got = connection.getresponse("POST")
    assert (got.status, got.read()) == (201, b"done")
    thread.join(10)
    connection.close()
    head = bytes(received).split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert head[0] == b"POST /v1.41/build?t=x HTTP/1.1"
    assert set(head[1:]) == {b"Host: localhost", b"X-Registry-Config: e30=",
                             b"Content-Length: 4"}
