"""What an engine says went wrong -> the project's errors (``atomic_reactor.errors``).

The one place where the engines' foreign failures are read and turned into the
project's own types (each carrying its exit code), in the manner of httpx's
transports, which map the exceptions of the library below them onto httpx's own
in one table:

- the Docker backend hands every exception a call of its transport raised to
  :func:`docker_error`: dockerd's error answers (``APIStatusError``, its JSON
  ``message`` read here), socket and HTTP failures and malformed JSON
  become ``ImageNotFound``, ``EngineError`` or ``EngineUnavailable``
  (:func:`docker_unavailable`: the engine does not answer); the Docker SDK's own
  exceptions (raised by ``DockerTasker.d``, the SDK client 1.6 callers may use) are
  mapped the same way by a second table, read only when the SDK has been imported
  (it is never imported for them: not on either engine's path, not at start-up);
- the buildah backend hands a failed command's stderr to :func:`buildah_error`
  (:func:`buildah_message` finds buildah's own error line in it) and a command
  that cannot start to :func:`buildah_not_runnable`;
- both make registry failures with :func:`transfer_error`: one table of the words
  registries and engines use for refused credentials (:data:`AUTH_MARKERS`), one
  rule for the registry a reference names (:func:`registry_of`);
- the tasker adds :func:`insecure_hint` to a pull or push that met a plain-HTTP
  registry, whichever engine reported it.

Messages are one line, ``<action> failed: <what the engine said>`` (docker's
not-found answers: ``<action>: <what it said>``).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from atomic_reactor.errors import (
    AtomicReactorError,
    AuthenticationError,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullError,
    PushError,
    RegistryError,
)

__all__ = [
    "AUTH_MARKERS",
    "Connection",
    "buildah_error",
    "buildah_message",
    "buildah_not_runnable",
    "docker_error",
    "docker_unavailable",
    "insecure_hint",
    "registry_of",
    "transfer_error",
]

#: words of a registry (or an engine) refusing credentials, lower case: any engine
#: (not a bare "denied": buildah's "permission denied" is about its storage)
AUTH_MARKERS = (
    "unauthorized", "authentication required", "no basic auth credentials",
    "incorrect username or password", "invalid username/password", "denied:",
    "access denied", "requested access to the resource is denied", "403 (forbidden)",
)
#: buildah's words for an image its storage does not have
NOT_FOUND_MARKERS = ("image not known", "no such image", "identifier is not an image",
                     "not found in local storage", "unable to find image")
#: buildah's words for storage it cannot use (with "storage" in the message)
_UNUSABLE_STORAGE = ("permission denied", "read-only file system", "database is locked",
                     "kernel does not support overlay", "driver not supported")
#: reasons that mean an engine that answered before went away mid-call
_BROKE_OFF = ("connection broken", "connection reset", "connection aborted")


def _transport_reasons() -> tuple[tuple[type[BaseException], str], ...]:
    """How a failure of the transport's connection is named (before the words below):
    the transport's own HTTP errors (``_http``) and, for the Docker SDK's client, those
    of http.client when it is imported (its email and ssl stay off a build's start)."""
    from atomic_reactor._engine.docker._http import IncompleteRead, RemoteDisconnected

    client = sys.modules.get("http.client")
    return (
        (RemoteDisconnected, "Connection aborted"),
        *(((client.RemoteDisconnected, "Connection aborted"),) if client else ()),
        (BrokenPipeError, "Connection aborted"),
        (ConnectionAbortedError, "Connection aborted"),
        (ConnectionResetError, "Connection reset"),
        (IncompleteRead, "Connection broken"),
        *(((client.IncompleteRead, "Connection broken"),) if client else ()),
        (TimeoutError, "Read timed out"),
    )


#: what dockerd's 404 answers say when it is an image that is missing (else some other
#: object is), lower case
_IMAGE_NOT_FOUND = ("no such image", "not found: does not exist or no pull access",
                    "repository does not exist",
                    "was found but does not match the specified platform")
#: how a connection failure is named, in this order of preference
_CONNECTION_REASONS = ("Connection refused", "No such file or directory", "Permission denied",
                       "Connection broken", "Connection reset", "Connection aborted",
                       "Read timed out")


def registry_of(reference: str | None) -> str | None:
    """The registry ``reference`` names (``host[:port]`` or ``localhost``), if any."""
    if reference is None or "/" not in reference:
        return None
    first = reference.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return first
    return None


def is_auth_failure(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in AUTH_MARKERS)


def transfer_error(kind: Literal["pull", "push"], action: str, reference: str | None,
                   message: str) -> RegistryError:
    """The error of a pull or push (``action``, e.g. "pulling r/x:1") that failed with
    the engine's ``message``: ``AuthenticationError`` for refused credentials, else
    ``PullError``/``PushError``; each names the registry of ``reference``."""
    message = message.strip()
    text = f"{action} failed: {message}"
    registry = registry_of(reference)
    if is_auth_failure(message):
        return AuthenticationError(text, registry=registry)
    return (PullError if kind == "pull" else PushError)(text, registry=registry)


def insecure_hint(message: str, registry: str | None, insecure: bool) -> str:
    """``message``, with what to do when the engine met a registry speaking plain HTTP."""
    if "server gave HTTP response to HTTPS client" in message:
        hint = ("the engine must be told the registry speaks plain HTTP: add "
                f"{registry} to its insecure-registries")
        if not insecure:
            hint += " (and mark it insecure in the request)"
        return f"{message} ({hint})"
    return message


# -- buildah: a command's stderr ---------------------------------------------------------

def buildah_message(output: str) -> str:
    """buildah's own error line (``Error: ...``), else the last line of ``output``."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line.startswith("Error: "):
            message = line[len("Error: "):]
            if re.fullmatch(r"\d+ errors? occurred:", message):  # a list follows
                items = [item.lstrip("* ") for item in lines[index + 1:]
                         if item.startswith("*")]
                message = "; ".join(items) or message
            return message
    for line in reversed(lines):
        if "level=error" in line or "level=fatal" in line:
            found = re.search(r'msg="(.*?)"(\s|$)', line)
            return found.group(1) if found else line
    return lines[-1] if lines else "no error message"


def buildah_error(action: str, output: str, *, kind: str = "engine",
                  reference: str | None = None) -> AtomicReactorError:
    """The project's error for buildah failing ``action`` with ``output`` (its stderr).

    ``kind`` is ``"pull"``/``"push"`` for registry transfers (:func:`transfer_error`;
    ``ImageNotFound`` for a name without a registry that buildah's storage does not
    have), else an engine error (``ImageNotFound`` when buildah says so,
    ``EngineUnavailable`` for storage it cannot use).
    """
    message = buildah_message(output)
    lowered = message.lower()
    text = f"{action} failed: {message}"
    not_found = any(marker in lowered for marker in NOT_FOUND_MARKERS)
    if kind in ("pull", "push"):
        error = transfer_error("pull" if kind == "pull" else "push", action, reference,
                               message)
        if (kind == "pull" and not_found and type(error) is PullError
                and error.registry is None and "manifest unknown" not in lowered):
            return ImageNotFound(text)
        return error
    if not_found:
        return ImageNotFound(text)
    if any(marker in lowered for marker in _UNUSABLE_STORAGE) and "storage" in lowered:
        return EngineUnavailable(f"{text} (is the buildah storage usable by this user?)")
    return EngineError(text)


def buildah_not_runnable(exc: OSError, action: str | None = None) -> EngineUnavailable:
    """The error for a buildah command that could not be started at all."""
    prefix = f"{action}: " if action else ""
    return EngineUnavailable(f"{prefix}cannot run buildah ({exc.strerror})")


# -- docker: the SDK's exceptions --------------------------------------------------------

class Connection(Protocol):
    """What :func:`docker_error` needs of the engine's connection."""

    address: str
    timeout: int

    def reset(self) -> None: ...


def describe(address: str) -> str:
    """The engine's address, as a message names it."""
    if address.startswith("unix://"):
        return f"socket {address[len('unix://'):]}"
    return address


def api_message(exc: Any) -> str:
    """The first line of what dockerd answered (a ``docker.errors.APIError``)."""
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    text = str(explanation or exc).strip()
    return text.splitlines()[0] if text else str(exc)


def api_explanation(body: bytes) -> str:
    """What dockerd said in an error answer: its JSON ``message``, else the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and document.get("message") is not None:
        return str(document["message"]).strip()
    return text


def docker_unavailable(exc: BaseException, address: str, action: str | None = None
                       ) -> EngineUnavailable:
    """The error for dockerd not answering at ``address`` (or going away mid-call)."""
    reason = str(exc)
    for kind, words in _transport_reasons():
        if isinstance(exc, kind):
            reason = words
            break
    for marker in _CONNECTION_REASONS:
        if marker in reason:
            reason = marker.lower()
            break
    else:
        reason = reason.splitlines()[0][:200] if reason else type(exc).__name__
    if action is not None and reason in _BROKE_OFF:
        return EngineUnavailable(
            f"{action}: the connection to the engine at {describe(address)} broke "
            f"off ({reason}); did dockerd stop?")
    return EngineUnavailable(
        f"no container engine answers at {describe(address)} ({reason}); "
        "is dockerd running?"
    )


_Translate = Callable[[str, BaseException, Connection, bool], AtomicReactorError]


@dataclass(frozen=True)
class _DockerTable:
    entries: tuple[tuple[tuple[type[BaseException], ...], _Translate], ...]
    """(foreign exception types, translation), most specific first: the first match wins"""
    timeouts: tuple[type[BaseException], ...]


def _connection_lost(action: str, exc: BaseException, connection: Connection,
                     streaming: bool) -> AtomicReactorError:
    """Timed out, refused, reset, or a stream broke off: the connection is dropped
    (a stream's own connection is closed by the stream's reader)."""
    if timed_out(exc):
        if not streaming:
            connection.reset()
        return EngineError(f"{action}: no answer from the engine at "
                           f"{describe(connection.address)} in {connection.timeout} s "
                           "(timed out)")
    connection.reset()  # the engine is gone (or restarting)
    return docker_unavailable(exc, connection.address, action)


def _api_status(action: str, exc: BaseException, _connection: Connection,
                _streaming: bool) -> AtomicReactorError:
    """dockerd's error answer: a 404 is a missing object (``<action>: <what it said>``),
    a missing image ``ImageNotFound``; anything else ``<action> failed: ...``."""
    status = getattr(exc, "status", 0)
    explanation = api_explanation(getattr(exc, "body", b""))
    line = explanation.splitlines()[0] if explanation else str(exc)
    if status == 404:
        lowered = explanation.lower()
        if any(fragment in lowered for fragment in _IMAGE_NOT_FOUND):
            return ImageNotFound(f"{action}: {line}")
        return EngineError(f"{action}: {line}")
    return EngineError(f"{action} failed: {line}")


def _bad_json(action: str, exc: BaseException, _connection: Connection,
              _streaming: bool) -> AtomicReactorError:
    return EngineError(f"{action} failed: the engine's answer is not valid JSON ({exc})")


def _socket_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the connection (an ``OSError`` of a socket names
    no file, unlike one of a file read on the way)."""
    from atomic_reactor._engine.docker._http import ProtocolError

    return isinstance(exc, ConnectionError | TimeoutError | ProtocolError) or (
        isinstance(exc, OSError) and exc.filename is None)


@functools.cache
def _transport_table() -> tuple[tuple[Callable[[BaseException], bool], _Translate], ...]:
    from atomic_reactor._engine.docker._transport import APIStatusError

    return (
        (lambda exc: isinstance(exc, APIStatusError), _api_status),
        (lambda exc: isinstance(exc, json.JSONDecodeError), _bad_json),
        (_socket_failure, _connection_lost),
    )


@functools.cache
def _docker_table() -> _DockerTable:
    import http.client

    import docker.errors
    import requests.exceptions
    import urllib3.exceptions

    return _DockerTable(
        entries=(
            ((docker.errors.ImageNotFound,),
             lambda action, exc, _c, _s: ImageNotFound(f"{action}: {api_message(exc)}")),
            ((docker.errors.NotFound,),
             lambda action, exc, _c, _s: EngineError(f"{action}: {api_message(exc)}")),
            ((docker.errors.APIError,),
             lambda action, exc, _c, _s: EngineError(f"{action} failed: {api_message(exc)}")),
            ((requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout,
              urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError,
              TimeoutError), _connection_lost),
            ((requests.exceptions.RequestException, docker.errors.DockerException),
             lambda action, exc, _c, _s: EngineError(f"{action} failed: {exc}")),
        ),
        timeouts=(urllib3.exceptions.ReadTimeoutError, TimeoutError,
                  requests.exceptions.ReadTimeout),
    )


def _sdk_loaded() -> bool:
    """Whether the Docker SDK (or requests) is imported: else none of their exceptions
    can exist, and their table is not loaded (which would import them)."""
    return "docker" in sys.modules or "requests" in sys.modules


def docker_error(action: str, exc: BaseException, connection: Connection,
                 streaming: bool = False) -> AtomicReactorError | None:
    """The project's error for ``exc``, raised by a call to dockerd doing ``action``
    (``streaming``: while reading a stream) through the transport or the Docker SDK;
    None for an exception that is neither's (it is raised as it is)."""
    if _sdk_loaded():  # first: requests' exceptions are OSErrors too
        for types, translate in _docker_table().entries:
            if isinstance(exc, types):
                return translate(action, exc, connection, streaming)
    for matches, translate in _transport_table():
        if matches(exc):
            return translate(action, exc, connection, streaming)
    return None


def timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a read timeout."""
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
    if _sdk_loaded():
        timeouts = _docker_table().timeouts
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, timeouts):
            return True
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = inner or seen.__cause__ or seen.__context__
    return False
