"""A unix-socket proxy in front of the engine's socket, which a test can cut.

Point ``DOCKER_HOST`` at :attr:`SocketProxy.url` and the client talks to the
real engine through it; :meth:`SocketProxy.cut` then makes the engine "go away"
for that client only (every connection is closed and the socket file removed),
without stopping the shared dockerd.  :meth:`SocketProxy.wait_for` blocks until
some bytes went by (a request path, a line of build output), so a test can cut
at a known point.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading

__all__ = ["SocketProxy"]

_BUFFER = 64 * 1024
_KEEP = 256 * 1024  # bytes of each direction kept for wait_for()


class SocketProxy:
    """Relays connections on a fresh unix socket to ``upstream`` (a unix socket path)."""

    def __init__(self, upstream: str = "/var/run/docker.sock") -> None:
        self.upstream = upstream
        self._dir = tempfile.mkdtemp(prefix="art-sockproxy-")
        self.path = os.path.join(self._dir, "engine.sock")
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._cut = threading.Event()
        self._seen = {"request": b"", "response": b""}
        self.connections = 0

    @property
    def url(self) -> str:
        """``unix:///…/engine.sock``: a ``DOCKER_HOST`` value."""
        return f"unix://{self.path}"

    def start(self) -> SocketProxy:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        self._listener = listener
        self._spawn(self._accept)
        return self

    def __enter__(self) -> SocketProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def cut(self) -> None:
        """The engine goes away: stop listening, remove the socket, close every connection."""
        self._cut.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with self._cond:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        self.cut()
        for thread in list(self._threads):
            thread.join(timeout=10)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def wait_for(self, needle: bytes, direction: str = "response", timeout: float = 120
                  ) -> bool:
        """Block until ``needle`` went by in ``direction`` ("request" or "response")."""
        with self._cond:
            return self._cond.wait_for(lambda: needle in self._seen[direction],
                                       timeout=timeout)

    # -- relaying ---------------------------------------------------------------------------
    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,  # type: ignore[arg-type]
                                  name="socketproxy")
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._cut.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                engine.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._cond:
                if self._cut.is_set():
                    client.close()
                    engine.close()
                    return
                self.connections += 1
                self._sockets.update((client, engine))
            pending = [2]  # both directions must finish before the pair is closed
            self._spawn(self._pipe, client, engine, "request", pending)
            self._spawn(self._pipe, engine, client, "response", pending)

    def _pipe(self, source: socket.socket, target: socket.socket, direction: str,
              pending: list[int]) -> None:
        try:
            while True:
                data = source.recv(_BUFFER)
                if not data:
                    break
                with self._cond:
                    self._seen[direction] = (self._seen[direction] + data)[-_KEEP:]
                    self._cond.notify_all()
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            with self._cond:
                pending[0] -= 1
                last = pending[0] == 0
                if last:
                    self._sockets.difference_update((source, target))
            if last:
                source.close()
                target.close()
