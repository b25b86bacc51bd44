"""A throw-away HTTP server on 127.0.0.1 serving yum repo files (yum repo plugin tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["RepoServer", "Response", "repo_file", "serve_repos"]


@dataclass
class Response:
    """What the server answers for one path; ``fail_first`` answers 503 that many times."""

    body: bytes
    status: int = 200
    fail_first: int = 0
    content_type: str = "text/plain"
    #: seconds to wait before answering
    delay: float = 0.0


@dataclass
class RepoServer:
    host: str
    port: int
    routes: dict[str, Response] = field(default_factory=dict)
    #: paths requested, in order (with the Authorization header seen, if any)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}{self.host}:{self.port}/{path.lstrip('/')}"


def repo_file(repo_id: str, marker: str = "", baseurl: str = "http://example.invalid/repo"
              ) -> str:
    """A small yum repo file; ``marker`` goes into a comment to recognise it later."""
    return (f"# {marker}\n[{repo_id}]\nname=Test repo {repo_id}\nbaseurl={baseurl}\n"
            "enabled=1\ngpgcheck=0\n")


@contextmanager
def serve_repos(routes: dict[str, Response] | None = None) -> Iterator[RepoServer]:
    """Serve ``routes`` (path -> :class:`Response`) on a free loopback port."""
    server_state = RepoServer(host="127.0.0.1", port=0, routes=dict(routes or {}))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with lock:
                server_state.requests.append((path, self.headers.get("Authorization")))
                response = server_state.routes.get(path)
                failing = response is not None and response.fail_first > 0
                if failing and response is not None:
                    response.fail_first -= 1
            if response is not None and response.delay:
                time.sleep(response.delay)
            if response is None:
                self._answer(404, b"not found\n", "text/plain")
            elif failing:
                self._answer(503, b"try again\n", "text/plain")
            else:
                self._answer(response.status, response.body, response.content_type)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that gave up (timeout tests) is not an error here

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name="repo-server", daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
