"""A fault-injecting HTTP proxy for the integration tests.

:class:`FaultProxy` listens on ``127.0.0.1:<free port>`` and forwards HTTP/1.1
requests to an upstream server (a real registry), one upstream connection per
client connection, keeping both alive.  Faults are added as :class:`Fault` rules;
each applies to the first ``times`` requests that match its method and path glob:

* ``Fault.status(503, ...)``: answer that status (the request body is read and
  dropped first, so the connection stays usable);
* ``Fault.drop(after_bytes=K, ...)``: forward the request and ``K`` bytes of its
  body, then cut both connections (with a TCP reset when ``reset``);
* ``Fault.delay(seconds, ...)``: hold the request that long before forwarding it
  (:meth:`FaultProxy.release` or :meth:`FaultProxy.stop` end every hold early).

Every request is recorded (:attr:`FaultProxy.log`) with what was done to it;
:meth:`FaultProxy.wait_for` blocks until a matching request was seen.  A TLS
handshake (the engine tries https first) is answered like a plain-HTTP Go
server does, so clients fall back to http; it is not recorded as a request.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultProxy", "Seen"]

_MAX_HEAD = 64 * 1024
_BUFFER = 64 * 1024


class _Cut(Exception):
    """The proxy cut this connection on purpose."""


@dataclass
class Fault:
    """One rule: what to do to the first ``times`` matching requests (None: all)."""

    action: str  # "status", "drop" or "delay"
    path: str = "*"
    method: str | None = None
    times: int | None = 1
    status_code: int = 503
    after_bytes: int = 0
    reset: bool = True
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    @classmethod
    def status(cls, code: int = 503, path: str = "*", method: str | None = None,
               times: int | None = 1, headers: dict[str, str] | None = None) -> Fault:
        return cls("status", path=path, method=method, times=times, status_code=code,
                   headers=dict(headers or {}))

    @classmethod
    def drop(cls, after_bytes: int = 0, path: str = "*", method: str | None = None,
             times: int | None = 1, reset: bool = True) -> Fault:
        return cls("drop", path=path, method=method, times=times, after_bytes=after_bytes,
                   reset=reset)

    @classmethod
    def delay(cls, seconds: float, path: str = "*", method: str | None = None,
              times: int | None = 1) -> Fault:
        return cls("delay", path=path, method=method, times=times, seconds=seconds)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class Seen:
    """One request the proxy received and what it did (``forwarded``, ``503``, ``drop``…)."""

    method: str
    path: str
    outcome: str
    status: int | None = None


class _Reader:
    """Buffered reads from a socket, keeping what was read beyond the request."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> bool:
        chunk = self.sock.recv(_BUFFER)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def head(self) -> bytes | None:
        """Everything up to and including the blank line; None at a clean EOF."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > _MAX_HEAD:
                raise _Cut("header too large")
            if not self.fill():
                if self.buffer:
                    raise _Cut("connection closed in a header")
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self.fill():
                raise _Cut("connection closed in a chunk header")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def exactly(self, size: int) -> Iterator[bytes]:
        remaining = size
        while remaining > 0:
            if not self.buffer and not self.fill():
                raise _Cut("connection closed in a body")
            piece = self.buffer[:remaining]
            self.buffer = self.buffer[len(piece):]
            remaining -= len(piece)
            yield piece

    def until_eof(self) -> Iterator[bytes]:
        if self.buffer:
            piece, self.buffer = self.buffer, b""
            yield piece
        while True:
            chunk = self.sock.recv(_BUFFER)
            if not chunk:
                return
            yield chunk

    def body(self, headers: dict[str, str], to_eof: bool) -> Iterator[bytes]:
        """The raw bytes of a message body (chunk framing included)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self.line()
                yield size_line
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the blank line
                        trailer = self.line()
                        yield trailer
                        if trailer == b"\r\n":
                            return
                yield from self.exactly(size)
                yield self.line()
        elif "content-length" in headers:
            yield from self.exactly(int(headers["content-length"]))
        elif to_eof:
            yield from self.until_eof()


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _reason(code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


class FaultProxy:
    """A threaded HTTP proxy to ``upstream`` (``host:port``) that injects faults.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.faults: list[Fault] = []
        self.log: list[Seen] = []
        self.tls_probes = 0
        self._lock = threading.Condition()
        self._stopped = threading.Event()
        self._release = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

    # -- life cycle ----------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._listener is not None, "proxy not started"
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references through the proxy."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._release.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- configuration and observation ------------------------------------------------
    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        """Remove every fault (requests held by a delay stay held: see :meth:`release`)."""
        with self._lock:
            self.faults.clear()

    def release(self) -> None:
        """End every delay now and from now on."""
        self._release.set()

    def seen(self, method: str | None = None, path: str = "*",
             outcome: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.log
                    if (method is None or s.method == method.upper())
                    and fnmatch.fnmatchcase(s.path, path)
                    and (outcome is None or s.outcome == outcome)]

    def count(self, method: str | None = None, path: str = "*",
              outcome: str | None = None) -> int:
        return len(self.seen(method, path, outcome))

    def wait_for(self, predicate: Callable[[list[Seen]], bool], timeout: float = 120) -> bool:
        """Block until ``predicate(log)`` holds (True) or ``timeout`` passes (False)."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(list(self.log)), timeout=timeout)

    def _record_forward(self, method: str, path: str, status: int) -> None:
        self._record(Seen(method, path, "forwarded", status))

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.log.append(seen)
            self._lock.notify_all()

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    # -- serving ---------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,),
                                      name="faultproxy-conn", daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _close(self, sock: socket.socket | None, reset: bool = False) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        up_reader: _Reader | None = None
        reader = _Reader(client)
        reset = False
        try:
            if not reader.fill():
                return
            if reader.buffer[:1] == b"\x16":  # a TLS ClientHello: answer as Go's http server
                with self._lock:
                    self.tls_probes += 1
                client.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"
                               b"Client sent an HTTP request to an HTTPS server.\n")
                return
            while not self._stopped.is_set():
                head = reader.head()
                if head is None:
                    return
                request_line, headers = _parse_head(head)
                method, _, rest = request_line.partition(" ")
                target = rest.rsplit(" ", 1)[0]
                path = target.split("?", 1)[0]
                fault = self._fault_for(method, path)
                if fault is not None and fault.action == "status":
                    for _ in reader.body(headers, to_eof=False):
                        pass
                    # recorded before the answer, as a forwarded response is: the client
                    # may act on the answer before this thread runs again
                    self._record(Seen(method.upper(), path, str(fault.status_code),
                                      fault.status_code))
                    self._answer(client, fault)
                    continue
                if fault is not None and fault.action == "delay":
                    self._record(Seen(method.upper(), path, "held"))
                    self._release.wait(fault.seconds)
                    if self._stopped.is_set():
                        return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=300)
                    self._track(upstream)
                    up_reader = _Reader(upstream)
                assert up_reader is not None
                upstream.sendall(head)
                sent = 0
                for piece in reader.body(headers, to_eof=False):
                    if fault is not None and fault.action == "drop" and \
                            sent + len(piece) >= fault.after_bytes:
                        upstream.sendall(piece[: max(0, fault.after_bytes - sent)])
                        self._record(Seen(method.upper(), path, "drop"))
                        reset = fault.reset
                        raise _Cut("dropped on purpose")
                    upstream.sendall(piece)
                    sent += len(piece)
                if fault is not None and fault.action == "drop":  # body shorter than K
                    self._record(Seen(method.upper(), path, "drop"))
                    reset = fault.reset
                    raise _Cut("dropped on purpose")
                record = functools.partial(self._record_forward, method.upper(), path)
                _, keep = self._relay_response(up_reader, client, method, record)
                if not keep or "close" in headers.get("connection", "").lower():
                    return
        except (_Cut, OSError, ValueError):
            return
        finally:
            self._close(upstream, reset)
            self._close(client, reset)

    def _relay_response(self, up_reader: _Reader, client: socket.socket, method: str,
                        on_status: Callable[[int], None]) -> tuple[int, bool]:
        """Relay one response; ``on_status`` hears its final status before the client
        does, so whoever reads the proxy's log after the response sees the request."""
        while True:
            head = up_reader.head()
            if head is None:
                raise _Cut("upstream closed")
            status_line, headers = _parse_head(head)
            status = int(status_line.split(" ", 2)[1])
            if status >= 200:
                on_status(status)
            client.sendall(head)
            if 100 <= status < 200:
                continue
            break
        no_body = method.upper() == "HEAD" or status in (204, 304)
        framed = "content-length" in headers or "chunked" in headers.get(
            "transfer-encoding", "").lower()
        if not no_body:
            for piece in up_reader.body(headers, to_eof=True):
                client.sendall(piece)
        keep = (no_body or framed) and "close" not in headers.get("connection", "").lower()
        return status, keep

    def _answer(self, client: socket.socket, fault: Fault) -> None:
        body = f"{fault.status_code} {_reason(fault.status_code)} (injected)\n".encode()
        content_type = "text/plain; charset=utf-8"
        if fault.status_code in (400, 401, 403, 404):
            code = {400: "MANIFEST_INVALID", 401: "UNAUTHORIZED", 403: "DENIED",
                    404: "NAME_UNKNOWN"}[fault.status_code]
            body = (f'{{"errors":[{{"code":"{code}","message":"injected '
                    f'{fault.status_code}"}}]}}\n').encode()
            content_type = "application/json; charset=utf-8"
        lines = [f"HTTP/1.1 {fault.status_code} {_reason(fault.status_code)}",
                 f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}",
                 "Docker-Distribution-Api-Version: registry/2.0"]
        lines += [f"{name}: {value}" for name, value in fault.headers.items()]
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
