"""The Docker Engine API's transport: connections and HTTP, apart from the resources.

In the manner of podman-py and httpx, the resource calls (``engine.py``) sit on a
small transport of our own instead of the Docker SDK (which costs ~110 ms to import,
with requests and urllib3, before the first call):

- :class:`Transport` speaks HTTP/1.1 (:mod:`._http`, not :mod:`http.client`, whose
  imports cost about 20 ms at every start) to dockerd over its unix socket, or over
  TCP (``tcp://``/``http://``, TLS for ``https://`` or
  ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` as the docker CLI reads them); idle
  connections are kept for the next call;
- a request body may be an iterator of chunks, sent with chunked transfer encoding
  while it is produced (:func:`chunked`: a build context, an image to load);
- a response with an error status raises :class:`APIStatusError` carrying dockerd's
  raw answer; a streamed response stays open for its reader: :meth:`Response.chunks`,
  :meth:`Response.json_messages` (:func:`json_messages`: the JSON progress messages of
  build, pull, push, whatever the reads cut them) and :meth:`Response.frames`
  (:func:`demultiplex`: the stdout/stderr frame format of logs and attach);
- :meth:`Transport.close` closes the idle connections and shuts every open stream
  down, which is how an in-flight build, pull or push is cancelled.

Nothing here interprets what went wrong: socket, HTTP (``_http``) and JSON errors pass
through as they are, and :mod:`atomic_reactor._engine.errors` translates them (and
the error bodies of :class:`APIStatusError`) into the project's errors.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import os
import select
import socket
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from atomic_reactor._engine.docker._http import (
    Connection,
    IncompleteRead,
    ProtocolError,
    RemoteDisconnected,
)
from atomic_reactor._engine.docker._http import (
    Response as RawResponse,
)

if TYPE_CHECKING:
    import ssl

__all__ = [
    "STDERR",
    "STDOUT",
    "APIStatusError",
    "Response",
    "Target",
    "Transport",
    "chunked",
    "demultiplex",
    "encode_auth",
    "json_messages",
    "parse_address",
    "path_quote",
    "tls_from_env",
]

STDOUT = 1
STDERR = 2
#: bytes asked of a stream per read (a read returns what has arrived, up to this)
READ_SIZE = 64 * 1024
_FRAME_HEADER = 8
#: "the transport's own timeout" (as opposed to None, no timeout at all)
DEFAULT: Any = object()


class APIStatusError(Exception):
    """dockerd answered ``method path`` with an error ``status``; ``body`` is its answer
    (JSON ``{"message": ...}`` as a rule; errors.py reads it)."""

    def __init__(self, method: str, path: str, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"{status} {reason} for {method} {path}")
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.body = body


@dataclass(frozen=True)
class Target:
    """Where dockerd listens: a unix socket path, or a host and port (``tls``: HTTPS)."""

    scheme: str
    """``unix``, ``http`` or ``https``"""
    host: str
    """the socket path for ``unix``"""
    port: int = 0


def parse_address(address: str, tls: bool = False) -> Target:
    """A :class:`Target` of a docker address (``unix:///path``, ``tcp://host:port``,
    ``http(s)://host:port``, ``host:port``); ValueError for one this cannot reach."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    scheme = scheme.lower()
    if scheme == "unix":
        path = rest if rest.startswith("/") else "/" + rest
        if path == "/":
            raise ValueError(f"no socket path in {address!r}")
        return Target("unix", path)
    if scheme not in ("tcp", "http", "https"):
        raise ValueError(f"{scheme}:// addresses are not supported (unix://, tcp://, "
                         "http:// or https://)")
    if scheme == "tcp":
        scheme = "https" if tls else "http"
    hostport = rest.split("/", 1)[0]
    host, colon, port_text = hostport.rpartition(":")
    if not colon or "]" in port_text:  # no port (or the end of an IPv6 literal)
        host, port_text = hostport, ""
    host = host.strip("[]")
    if not host:
        raise ValueError(f"no host in {address!r}")
    try:
        port = int(port_text) if port_text else (2376 if scheme == "https" else 2375)
    except ValueError:
        raise ValueError(f"bad port in {address!r}") from None
    return Target(scheme, host, port)


def tls_from_env(environ: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The TLS context the docker CLI would use from ``DOCKER_TLS_VERIFY`` and
    ``DOCKER_CERT_PATH`` (``ca.pem``, ``cert.pem``, ``key.pem``); None without TLS."""
    env = os.environ if environ is None else environ
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    cert_path = env.get("DOCKER_CERT_PATH") or ""
    if not (verify or cert_path):
        return None
    import ssl  # only for an engine spoken to over TLS
    directory = cert_path or os.path.join(os.path.expanduser("~"), ".docker")
    ca = os.path.join(directory, "ca.pem")
    if verify:
        context = ssl.create_default_context(cafile=ca if os.path.isfile(ca) else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if os.path.isfile(cert) and os.path.isfile(key):
        context.load_cert_chain(cert, key)
    return context


def path_quote(value: str) -> str:
    """``value`` as one path segment of a URL (an image name keeps its ``/`` and ``:``)."""
    return quote(value, safe="/:@")


def encode_auth(config: Mapping[str, Any]) -> str:
    """The ``X-Registry-Auth``/``X-Registry-Config`` header value of ``config``."""
    return base64.urlsafe_b64encode(json.dumps(dict(config)).encode()).decode("ascii")


def query(params: Mapping[str, Any] | None) -> str:
    """A query string: None values left out, booleans as 1/0, mappings as JSON,
    lists as repeated keys."""
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, Mapping):
            pairs.append((key, json.dumps(dict(value))))
        elif isinstance(value, list | tuple):
            pairs.extend((key, str(item)) for item in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


# -- pure stream codecs (unit-tested on their own) ---------------------------------------

def chunked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` in HTTP/1.1 chunked transfer encoding (empty chunks skipped: an empty
    one would end the body), then the last chunk."""
    for chunk in chunks:
        if chunk:
            yield b"%x\r\n" % len(chunk)
            yield chunk
            yield b"\r\n"
    yield b"0\r\n\r\n"


def json_messages(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The JSON values of a stream of them (dockerd writes one per line, but a read
    can end anywhere: inside a value, inside a UTF-8 sequence); a value that never
    completes raises ``json.JSONDecodeError`` at the end of the stream."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    for chunk in chunks:
        pending += text.decode(chunk)
        position = 0
        while True:
            while position < len(pending) and pending[position] in " \t\r\n":
                position += 1
            if position >= len(pending):
                break
            try:
                value, position = decoder.raw_decode(pending, position)
            except json.JSONDecodeError:
                break  # incomplete so far: wait for the rest
            yield value
        pending = pending[position:]
    pending = (pending + text.decode(b"", final=True)).strip()
    if pending:
        yield json.loads(pending)  # complete after all, or raises JSONDecodeError


def demultiplex(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) of each frame of dockerd's multiplexed stdout/stderr format
    (an 8-byte header: the stream, three zero bytes, the payload's size, big-endian);
    a stream that ends inside a frame raises :class:`~._http.IncompleteRead`."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= _FRAME_HEADER:
            size = int.from_bytes(pending[4:_FRAME_HEADER], "big")
            end = _FRAME_HEADER + size
            if len(pending) < end:
                break
            yield pending[0], bytes(pending[_FRAME_HEADER:end])
            del pending[:end]
    if pending:
        raise IncompleteRead(bytes(pending))


# -- connections -----------------------------------------------------------------------

def _closed_by_peer(connection: Connection) -> bool:
    """Whether an idle connection has been hung up on (readable while idle: an end of
    file, or bytes nobody asked for; either way not to be used again)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Response:
    """dockerd's answer to one request; a streamed one holds its connection until it is
    read to the end or closed."""

    def __init__(self, transport: Transport, connection: Connection,
                 raw: RawResponse, sock: socket.socket | None, generation: int) -> None:
        self._transport = transport
        self._connection: Connection | None = connection
        self._raw = raw
        # the connection hands its socket over to a response that ends with it
        self._sock = sock
        #: the body, once :meth:`read`
        self.content = b""
        self._done = False
        self._generation = generation
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers

    @property
    def content_type(self) -> str:
        return str(self.headers.get("Content-Type") or "").split(";", 1)[0].strip()

    def read(self) -> bytes:
        """The whole body (read once); the connection goes back to the pool."""
        if self._done:
            return self.content
        try:
            self.content = self._raw.read()
        except BaseException:
            self.shut()
            raise
        self._done = True
        self._finish()
        return self.content

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def chunks(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """The body as it arrives; the connection is shut if the reader stops early."""
        finished = False
        try:
            while True:
                data = self._raw.read1(size)
                if not data:
                    if self._raw.length:  # closed before the Content-Length it announced
                        raise IncompleteRead(b"", self._raw.length)
                    break
                yield data
            finished = True
        finally:
            if finished:
                self._finish()
            else:
                self.shut()

    def json_messages(self) -> Iterator[Any]:
        return json_messages(self.chunks())

    def frames(self) -> Iterator[tuple[int, bytes]]:
        return demultiplex(self.chunks())

    def _finish(self) -> None:
        connection, self._connection = self._connection, None
        self._transport._forget(self)
        if connection is None:
            return
        if self._raw.will_close or not self._raw.isclosed():
            connection.close()
        else:
            self._transport._release(connection, self._generation)

    def shut(self) -> None:
        """Close the connection at once (the engine sees its client go: a build, pull or
        push in flight is cancelled). For the thread reading the response."""
        self.abort()
        connection, self._connection = self._connection, None
        with contextlib.suppress(Exception):
            self._raw.close()
        if connection is not None:
            connection.close()

    def abort(self) -> None:
        """Shut the socket down, from any thread: a read in progress returns at once
        (the reader then closes the rest)."""
        self._transport._forget(self)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Done with this response: a body read to its end keeps the connection for
        reuse, anything else closes it."""
        if self._connection is not None:
            if self._raw.isclosed():
                self._finish()
            else:
                self.shut()


class Transport:
    """Requests to one dockerd (``address`` as in ``DOCKER_HOST``).

    ``timeout`` is the default for every socket operation of a request (None: none);
    ``version`` pins the API version (``/v1.41/...``), else dockerd's own is used (as
    the SDK's ``version="auto"`` does, without asking first); ``tls`` a TLS context
    for ``tcp://`` and ``https://`` addresses.
    """

    def __init__(self, address: str, timeout: float | None = 120, *,
                 version: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self.target = parse_address(address, tls is not None)
        self.timeout = timeout
        self._tls = tls
        if self.target.scheme == "https" and self._tls is None:
            import ssl  # only for an engine spoken to over TLS

            self._tls = ssl.create_default_context()
        self._prefix = f"/v{version.removeprefix('v')}" if version else ""
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        # streams still open (weakly: one its reader dropped unread is collected)
        self._open: weakref.WeakSet[Response] = weakref.WeakSet()
        # sockets of requests under way (sending the body, waiting for the answer)
        self._in_flight: set[socket.socket] = set()
        self._generation = 0

    def _new_connection(self, timeout: float | None) -> Connection:
        target = self.target
        return Connection(target.scheme, target.host, target.port, timeout=timeout,
                          tls=self._tls if target.scheme == "https" else None)

    def _take(self) -> tuple[Connection | None, int]:
        """An idle connection still open at the engine's end (or None), and the pool's
        generation."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
                generation = self._generation
            if connection is None or not _closed_by_peer(connection):
                return connection, generation
            connection.close()  # dockerd hung up while it was idle

    def _release(self, connection: Connection, generation: int) -> None:
        with self._lock:
            if generation == self._generation and len(self._idle) < 4:
                self._idle.append(connection)
                return
        connection.close()

    def _forget(self, response: Response) -> None:
        with self._lock:
            self._open.discard(response)

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return self._prefix + path + query(params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = DEFAULT,
        stream: bool = False,
    ) -> Response:
        """Send ``method path``; a streamed response is returned unread, any other read
        whole (its connection reused). An error status raises :class:`APIStatusError`.

        ``body`` bytes are sent as they are, an iterable of bytes chunked as it is
        produced; ``json_body`` is sent as JSON.
        """
        url = self.url(path, params)
        wanted = self.timeout if timeout is DEFAULT else timeout
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        replayable = body is None or isinstance(body, bytes)
        while True:
            reused, generation = self._take()
            connection = reused or self._new_connection(wanted)
            connection.settimeout(wanted)
            flying: socket.socket | None = None
            try:
                flying = self._take_off(connection, generation)
                raw, sock = self._exchange(connection, method, url, body, all_headers)
            except (RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                connection.close()
                # dockerd closed the idle connection meanwhile: once more. A request sent
                # whole and never answered may have been carried out: only a GET or HEAD
                # is sent again then (not a create, commit, tag or delete). Never after
                # close(), whose shut-down socket this may be
                answered_nothing = isinstance(exc, RemoteDisconnected)
                if reused is not None and replayable and generation == self._generation \
                        and (not answered_nothing or method in ("GET", "HEAD")):
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            finally:
                if flying is not None:
                    with self._lock:
                        self._in_flight.discard(flying)
            break
        response = Response(self, connection, raw, sock, generation)
        if raw.status >= 400:
            try:
                data = response.read()
            except (OSError, ProtocolError):
                data = b""
            raise APIStatusError(method, path, raw.status, raw.reason, data)
        if stream:
            with self._lock:
                self._open.add(response)
        else:
            response.read()
        return response

    def _take_off(self, connection: Connection, generation: int
                  ) -> socket.socket | None:
        """Connect now (if not yet) and note the socket as under way, so that
        :meth:`close` shuts the request down while it sends its body or waits for its
        answer; refused once the transport was closed since ``generation``."""
        if connection.sock is None:
            connection.connect()
        sock = connection.sock
        if not isinstance(sock, socket.socket):
            return None
        with self._lock:
            if generation != self._generation:
                raise ConnectionAbortedError("the engine connection was closed")
            self._in_flight.add(sock)
        return sock

    @staticmethod
    def _exchange(connection: Connection, method: str, url: str,
                  body: bytes | Iterable[bytes] | None, headers: dict[str, str]
                  ) -> tuple[RawResponse, socket.socket | None]:
        sock = connection.sock
        if body is None or isinstance(body, bytes):
            connection.send_head(method, url, headers, body)
            return connection.getresponse(method), sock
        connection.send_head(method, url, {**headers, "Transfer-Encoding": "chunked"})
        try:
            for piece in chunked(body):
                connection.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            # dockerd may answer (an error) and close before it has read everything:
            # its answer says more than the broken pipe does
            try:
                return connection.getresponse(method), sock
            except (OSError, ProtocolError):
                pass
            raise
        return connection.getresponse(method), sock

    def get(self, path: str, **options: Any) -> Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: Any) -> Response:
        return self.request("DELETE", path, **options)

    def close(self) -> None:
        """Close the idle connections and shut every open stream and every request
        under way down (from any thread); the next request connects anew."""
        with self._lock:
            idle, self._idle = self._idle, []
            streams, self._open = list(self._open), weakref.WeakSet()
            flying = list(self._in_flight)
            self._generation += 1
        for sock in flying:  # a request sending its body or waiting for its answer
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for response in streams:
            response.abort()
        for connection in idle:
            connection.close()
