"""Reaching the host's loopback services (registries on 127.0.0.1) from a build container.

A privileged build container has a network namespace of its own (a nested engine
must not share the host's: it would take over the host's ``docker0`` bridge), so
``127.0.0.1:5000`` inside it is not the host's registry. The two halves here relay
such addresses over Unix sockets in a directory both sides see:

- on the host, :class:`LoopbackRelay` listens on one Unix socket per loopback
  address the build request mentions and connects each client to that address;
- in the container, :class:`LoopbackForwarder` listens on the same loopback
  address (``127.0.0.1:5000``) and passes each connection to the socket.

Only the addresses the request names are relayed, so the build container reaches
nothing else on the host's loopback interface.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from atomic_reactor.errors import EngineError

__all__ = ["LoopbackForwarder", "LoopbackRelay", "loopback_endpoints"]

logger = logging.getLogger(__name__)

MAP_FILE = "relays.json"
_CHUNK = 1 << 16
_LOOPBACK = re.compile(
    r"(?<![\w.-])(localhost|127(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}):(\d{1,5})(?!\d)")

Endpoint = tuple[str, int]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def loopback_endpoints(*values: Any) -> list[Endpoint]:
    """Every ``127.x.y.z:PORT`` / ``localhost:PORT`` found in the strings of ``values``."""
    found: set[Endpoint] = set()
    for value in values:
        for text in _strings(value):
            for match in _LOOPBACK.finditer(text):
                port = int(match.group(2))
                if 0 < port < 65536:
                    found.add((match.group(1), port))
    return sorted(found)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _splice(first: socket.socket, second: socket.socket) -> None:
    """Copy both ways until both sides are done, then close both."""
    def run() -> None:
        back = threading.Thread(target=_pump, args=(second, first), daemon=True)
        back.start()
        _pump(first, second)
        back.join()
        for sock in (first, second):
            with contextlib.suppress(OSError):
                sock.close()

    threading.Thread(target=run, daemon=True, name="atomic-reactor-relay").start()


class _Listener:
    def __init__(self, sock: socket.socket, connect: Any, what: str) -> None:
        self.sock = sock
        self.connect = connect
        self.what = what
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name=f"atomic-reactor-relay {what}")
        self.closed = False

    def _serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                break
            try:
                upstream = self.connect()
            except OSError as exc:
                logger.debug("relay %s: cannot connect: %s", self.what, exc)
                with contextlib.suppress(OSError):
                    client.close()
                continue
            _splice(client, upstream)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class LoopbackRelay:
    """Host side: one Unix socket in ``directory`` per loopback endpoint.

    ``directory`` also gets ``relays.json`` mapping socket names to endpoints, which
    :class:`LoopbackForwarder` reads. Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, directory: str, endpoints: Iterable[Endpoint]) -> None:
        self.directory = directory
        self.endpoints = list(endpoints)
        self._listeners: list[_Listener] = []
        mapping: dict[str, list[Any]] = {}
        try:
            for index, (host, port) in enumerate(self.endpoints):
                name = f"r{index}.sock"
                path = os.path.join(directory, name)
                if len(path.encode()) >= 104:
                    raise EngineError(f"relay socket path {path} is too long for a Unix socket")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(path)
                    sock.listen(64)
                except OSError as exc:
                    sock.close()
                    raise EngineError(f"cannot listen on relay socket {path}: {exc}") from None
                target = ("127.0.0.1" if host == "localhost" else host, port)
                listener = _Listener(
                    sock, lambda target=target: socket.create_connection(target, timeout=30),
                    f"{host}:{port}")
                self._listeners.append(listener)
                mapping[name] = [host, port]
            with open(os.path.join(directory, MAP_FILE), "w", encoding="utf-8") as handle:
                json.dump(mapping, handle)
        except BaseException:
            self.close()
            raise
        for listener in self._listeners:
            listener.thread.start()
        if self.endpoints:
            logger.debug("relaying %s into the build container",
                         ", ".join(f"{h}:{p}" for h, p in self.endpoints))

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    def __enter__(self) -> LoopbackRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LoopbackForwarder:
    """Container side: listen on each relayed loopback endpoint, pass connections on."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._listeners: list[_Listener] = []
        map_path = os.path.join(directory, MAP_FILE)
        try:
            with open(map_path, encoding="utf-8") as handle:
                mapping = json.load(handle)
        except FileNotFoundError:
            mapping = {}
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read relay map {map_path}: {exc}") from None
        try:
            for name, (host, port) in sorted(mapping.items()):
                path = os.path.join(directory, os.path.basename(str(name)))
                self._listen(str(host), int(port), path)
        except BaseException:
            self.close()
            raise
        for listener in self._listeners:
            listener.thread.start()

    def _listen(self, host: str, port: int, path: str) -> None:
        addresses = [("127.0.0.1", socket.AF_INET)] if host == "localhost" else \
            [(host, socket.AF_INET)]
        if host == "localhost" and socket.has_ipv6:
            addresses.append(("::1", socket.AF_INET6))
        for address, family in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
            except OSError as exc:
                sock.close()
                if family == socket.AF_INET6:
                    continue  # no IPv6 loopback here: IPv4 is enough
                raise EngineError(f"cannot forward {host}:{port} in the build container: "
                                  f"{exc.strerror or exc}") from None

            def connect(path: str = path) -> socket.socket:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    upstream.connect(path)
                except OSError:
                    upstream.close()
                    raise
                return upstream

            self._listeners.append(_Listener(sock, connect, f"{address}:{port}"))
            logger.debug("forwarding %s:%d to the host", address, port)

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    def __enter__(self) -> LoopbackForwarder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
