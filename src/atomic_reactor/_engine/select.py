"""Which engine a build uses: ``docker``, ``buildah`` or ``auto``.

``auto`` (the default, also from ``ATOMIC_REACTOR_ENGINE``) takes docker when its
socket answers a ping within a short timeout, else buildah when it is installed,
and says which. The ping is a raw HTTP request on the socket: choosing never
imports the docker SDK, so a buildah build does not load it at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.parse

from atomic_reactor.errors import EngineConfigError

logger = logging.getLogger(__name__)

__all__ = ["AUTO", "ENGINE_ENV", "choose_engine", "docker_answers", "validate_engine_name"]

ENGINE_ENV = "ATOMIC_REACTOR_ENGINE"
AUTO = "auto"
PING_TIMEOUT = 0.5


def validate_engine_name(name: object) -> str:
    """``name`` if it is ``auto`` or an installed engine; :class:`EngineConfigError` if not."""
    from atomic_reactor._engine.registry import ENTRY_POINT_GROUP, engine_names
    from atomic_reactor._entrypoints import find_entry_point

    if isinstance(name, str) and (
            name == AUTO or find_entry_point(ENTRY_POINT_GROUP, name) is not None):
        return name
    raise EngineConfigError(f"unknown engine {name!r} (choose from "
                            f"{', '.join([AUTO, *engine_names()])})")


def docker_answers(address: str | None = None, timeout: float = PING_TIMEOUT) -> bool:
    """Whether a Docker engine answers ``GET /_ping`` at ``address`` ($DOCKER_HOST)."""
    import socket

    address = address or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    parsed = urllib.parse.urlparse(address)
    try:
        if parsed.scheme in ("unix", ""):
            path = parsed.path or address
            if not os.path.exists(path):
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = path
        elif parsed.scheme in ("tcp", "http"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (parsed.hostname or "127.0.0.1", parsed.port or 2375)
        else:  # https, ssh: leave it to the docker backend to say what is wrong
            return True
        with sock:
            sock.settimeout(timeout)
            sock.connect(target)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    status = reply.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[0].startswith(b"HTTP/") and status[1] == b"200"


def choose_engine(requested: str | None = None) -> str:
    """The engine name to use for ``requested`` (None: ``$ATOMIC_REACTOR_ENGINE`` or
    ``auto``); ``auto`` is resolved here and logged."""
    name = validate_engine_name(requested or os.environ.get(ENGINE_ENV) or AUTO)
    if name != AUTO:
        return name
    if docker_answers():
        logger.info("engine: docker (auto: the docker socket answers)")
        return "docker"
    if shutil.which("buildah"):
        logger.info("engine: buildah (auto: no docker engine answers at %s)",
                    os.environ.get("DOCKER_HOST") or "/var/run/docker.sock")
        return "buildah"
    logger.info("engine: docker (auto: neither a docker engine answers nor is buildah "
                "installed)")
    return "docker"
