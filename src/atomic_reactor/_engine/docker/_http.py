"""HTTP/1.1 on one socket: as much of it as the Engine API needs, for :mod:`._transport`.

:mod:`http.client` would do, but importing it brings :mod:`email` (for its header
parser) and :mod:`ssl`: about 20 ms at the start of every docker build, before its
first call to dockerd. What dockerd needs of a client is small: a request with a
``Content-Length`` or a chunked body; an answer framed by ``Content-Length``, by
chunked transfer encoding or by the end of the connection (an attach, also after
``101 Switching Protocols``); keep-alive. :mod:`ssl` is imported only for an
``https`` engine.

Errors: :class:`RemoteDisconnected` (the engine closed the connection instead of
answering; a ``ConnectionResetError``), :class:`IncompleteRead` (an answer that ends
before its end), :class:`ProtocolError` (any other answer that is not HTTP), and the
socket's own ``OSError``/``TimeoutError``; ``_engine/errors.py`` translates them.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import ssl

__all__ = ["Connection", "Headers", "IncompleteRead", "ProtocolError", "Reader",
           "RemoteDisconnected", "Response"]

#: the longest status or header line read, and the most header lines
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
#: a body up to this size goes out in the same send as the request's head
_SMALL_BODY = 64 * 1024


class Reader(Protocol):
    """What an answer is read from: a buffered reader of the socket."""

    def readline(self, size: int = -1, /) -> bytes: ...

    def read1(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class ProtocolError(Exception):
    """The engine's answer is not HTTP/1.1 as this client reads it."""


class RemoteDisconnected(ConnectionResetError, ProtocolError):
    """The engine closed the connection without answering."""


class IncompleteRead(ProtocolError):
    """An answer's body ended before its announced end (``partial``: what came)."""

    def __init__(self, partial: bytes, expected: int | None = None) -> None:
        more = f", {expected} more expected" if expected is not None else ""
        super().__init__(f"IncompleteRead({len(partial)} bytes read{more})")
        self.partial = partial
        self.expected = expected


class Headers(Mapping[str, str]):
    """An answer's header fields, looked up whatever their case (a field given more
    than once: its values joined with ``", "``)."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields: dict[str, tuple[str, str]] = {}
        for name, value in fields:
            key = name.lower()
            earlier = self._fields.get(key)
            self._fields[key] = (name, value if earlier is None else f"{earlier[1]}, {value}")

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


def _line(reader: Reader, what: str) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ProtocolError(f"{what} longer than {_MAX_LINE} bytes")
    return line


class Response:
    """One answer; its body is read with :meth:`read` or :meth:`read1`."""

    def __init__(self, reader: Reader, method: str) -> None:
        self._reader = reader
        while True:
            status_line = _line(reader, "status line")
            if not status_line.endswith(b"\n"):
                raise RemoteDisconnected("the engine closed the connection without answering")
            version, _, rest = status_line.decode("iso-8859-1").rstrip("\r\n").partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
                raise ProtocolError(f"not an HTTP status line: {status_line[:80]!r}")
            self.status = int(code)
            self.reason = reason.strip()
            self.version = version
            self.headers = self._read_headers()
            if self.status != 100:  # 100 Continue: the real answer follows
                break
        connection = self.headers.get("Connection", "").lower()
        self.will_close = "close" in connection or (version == "HTTP/1.0"
                                                     and "keep-alive" not in connection)
        #: bytes of a ``Content-Length`` body not read yet (None: not framed so)
        self.length: int | None = None
        self._chunked = False
        self._chunk_left = 0
        self._done = False
        encoding = self.headers.get("Transfer-Encoding", "").lower()
        if method == "HEAD" or self.status in (204, 304) \
                or (100 <= self.status < 200 and self.status != 101):
            self.length = 0
            self._done = True
        elif self.status == 101:  # switched protocols: the stream lasts till the end
            self.will_close = True
        elif "chunked" in encoding:
            self._chunked = True
        elif "Content-Length" in self.headers:
            try:
                self.length = int(self.headers["Content-Length"])
            except ValueError:
                raise ProtocolError("a Content-Length that is not a number: "
                                    f"{self.headers['Content-Length']!r}") from None
            if self.length < 0:
                raise ProtocolError(f"a negative Content-Length: {self.length}")
            self._done = self.length == 0
        else:  # the body ends with the connection
            self.will_close = True

    def _read_headers(self) -> Headers:
        fields: list[tuple[str, str]] = []
        while True:
            line = _line(self._reader, "header line")
            if line in (b"\r\n", b"\n"):
                return Headers(fields)
            if not line.endswith(b"\n"):
                raise RemoteDisconnected("the engine closed the connection inside its "
                                         "answer's header")
            if len(fields) >= _MAX_HEADERS:
                raise ProtocolError(f"more than {_MAX_HEADERS} header lines")
            text = line.decode("iso-8859-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:  # an old-style continuation line
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if not colon or not name.strip():
                raise ProtocolError(f"not a header line: {text[:80]!r}")
            fields.append((name.strip(), value.strip()))

    def isclosed(self) -> bool:
        """Whether the body has been read to its end (or the answer closed)."""
        return self._done

    def read1(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body, what has arrived (b"": its end);
        :class:`IncompleteRead` if the connection ends before the body does."""
        if self._done or size <= 0:
            return b""
        if self._chunked:
            return self._read1_chunked(size)
        if self.length is None:  # till the connection ends
            data = self._reader.read1(size)
            if not data:
                self._done = True
            return data
        data = self._reader.read1(min(size, self.length))
        if not data:
            raise IncompleteRead(b"", self.length)
        self.length -= len(data)
        self._done = self.length == 0
        return data

    def _read1_chunked(self, size: int) -> bytes:
        if self._chunk_left == 0:
            line = _line(self._reader, "chunk size line")
            if not line:
                raise IncompleteRead(b"")
            text = line.split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(text, 16)
            except ValueError:
                raise ProtocolError(f"not a chunk size: {line[:40]!r}") from None
            if self._chunk_left < 0:
                raise ProtocolError(f"not a chunk size: {line[:40]!r}")
            if self._chunk_left == 0:  # the last chunk: trailer lines up to a blank one
                while True:
                    trailer = _line(self._reader, "trailer line")
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                self._done = True
                return b""
        data = self._reader.read1(min(size, self._chunk_left))
        if not data:
            raise IncompleteRead(b"", self._chunk_left)
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and _line(self._reader, "chunk end") not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk not followed by its line end")
        return data

    def read(self) -> bytes:
        """The rest of the body."""
        parts: list[bytes] = []
        while data := self.read1(1 << 20):
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        """Done with the answer (what is unread stays unread: the connection is then
        not to be used again)."""
        self._done = True


class Connection:
    """One connection to the engine: a unix socket (``host`` its path), TCP, or TLS over
    TCP (``tls``: the context); opened by :meth:`connect` or the first request."""

    def __init__(self, scheme: str, host: str, port: int = 0, *,
                 timeout: float | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.timeout = timeout
        self._tls = tls
        self.sock: socket.socket | None = None
        self._reader: Reader | None = None
        #: the Host header (a unix socket's engine is "localhost")
        self.authority = "localhost" if scheme == "unix" else \
            (f"[{host}]" if ":" in host else host) + f":{port}"

    def connect(self) -> None:
        if self.sock is not None:
            return
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.host)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                try:
                    sock = self._wrap(sock)
                except BaseException:
                    sock.close()
                    raise
        self.sock = sock
        self._reader = sock.makefile("rb")

    def _wrap(self, sock: socket.socket) -> socket.socket:
        import ssl  # only for an engine spoken to over TLS

        context = self._tls or ssl.create_default_context()
        return context.wrap_socket(sock, server_hostname=self.host)

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def send_head(self, method: str, url: str, headers: Mapping[str, str],
                  body: bytes | None = None) -> None:
        """Send the request line and headers (``Host`` added; ``Content-Length`` too
        unless the headers say ``Transfer-Encoding``), and ``body`` if given."""
        self.connect()
        assert self.sock is not None
        lines = [f"{method} {url} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        framed = any(name.lower() in ("content-length", "transfer-encoding")
                     for name in headers)
        if not framed and (body is not None or method in ("POST", "PUT", "PATCH")):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
        if body and len(body) <= _SMALL_BODY:
            self.sock.sendall(head + body)
            return
        self.sock.sendall(head)
        if body:
            self.sock.sendall(body)

    def send(self, data: bytes) -> None:
        """More of a request's body (chunked: already framed by the caller)."""
        assert self.sock is not None
        self.sock.sendall(data)

    def getresponse(self, method: str = "GET") -> Response:
        if self._reader is None:
            raise ProtocolError("no request was sent on this connection")
        return Response(self._reader, method)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(OSError):
                reader.close()
        if sock is not None:
            sock.close()
