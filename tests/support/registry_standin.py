"""A stand-in HTTP server for the registry client's unit tests, served in a thread."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator

from atomic_reactor._registry import client as client_module

__all__ = ["running"]


@contextlib.contextmanager
def running(server: socketserver.TCPServer) -> Iterator[str]:
    """Serve ``server`` (bound to a 127.0.0.1 port) in a thread; its ``host:port``.
    Stopped, and forgotten as a plain-HTTP registry, at the end."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()
        client_module._PLAIN_HTTP.discard(address)
