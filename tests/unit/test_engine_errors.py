"""_engine/errors.py: the engines' failures -> the project's errors (class, exit code,
message). The texts are what dockerd 20.10 / the Docker SDK and buildah 1.28 really say
(the integration tests produce them against the real engines)."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest
import requests
import requests.exceptions

from atomic_reactor._engine.errors import (
    buildah_error,
    buildah_message,
    buildah_not_runnable,
    docker_error,
    docker_unavailable,
    insecure_hint,
    registry_of,
    transfer_error,
)
from atomic_reactor.errors import (
    AuthenticationError,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullError,
    PushError,
)
from tests.support.imports import loaded_after


class _Connection:
    address = "unix:///var/run/docker.sock"
    timeout = 7

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


def _api_error(cls: type[docker.errors.APIError], status: int, explanation: str
               ) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return cls("boom", response=response, explanation=explanation)


@pytest.mark.parametrize(("reference", "registry"), [
    ("127.0.0.1:5000/app:1", "127.0.0.1:5000"), ("localhost/app", "localhost"),
    ("registry.example/team/app:1", "registry.example"), ("team/app:1", None),
    ("app:1", None), (None, None),
])
def test_the_registry_a_reference_names(reference: str | None, registry: str | None) -> None:
    assert registry_of(reference) == registry


@pytest.mark.parametrize("said", [
    "unauthorized: authentication required", "no basic auth credentials",
    "denied: requested access to the resource is denied",
    "pull access denied for x, repository does not exist or may require 'docker login'",
    "invalid username/password: unauthorized: incorrect username or password",
    "reading manifest 1 in 127.0.0.1:5000/x: 403 (Forbidden)",
])
def test_refused_credentials_are_an_authentication_error(said: str) -> None:
    error = transfer_error("push", "pushing 127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", said)
    assert isinstance(error, AuthenticationError) and error.exit_code == 4
    assert error.message == f"pushing 127.0.0.1:5000/x:1 failed: {said}"
    assert error.registry == "127.0.0.1:5000"


def test_other_transfer_failures_keep_their_kind() -> None:
    pulled = transfer_error("pull", "pulling r.example/x:1", "r.example/x:1",
                            "manifest for r.example/x:1 not found: manifest unknown\n")
    assert type(pulled) is PullError and pulled.registry == "r.example"
    assert pulled.message == ("pulling r.example/x:1 failed: manifest for r.example/x:1 "
                              "not found: manifest unknown")
    pushed = transfer_error("push", "pushing r.example/x:1", "r.example/x:1",
                            "open /var/lib/containers/storage/x: permission denied")
    assert type(pushed) is PushError


def test_pulling_a_local_name_that_is_not_there_is_image_not_found() -> None:
    error = buildah_error("pulling app:1", "Error: app:1: image not known\n", kind="pull",
                          reference="app:1")
    assert isinstance(error, ImageNotFound) and error.exit_code == 6
    assert error.message == "pulling app:1 failed: app:1: image not known"


def test_buildah_error_line_and_lists() -> None:
    assert buildah_message("noise\nError: creating build container: boom\n") == \
        "creating build container: boom"
    assert buildah_message("Error: 2 errors occurred:\n\t* one\n\t* two\n") == "one; two"
    assert buildah_message('time="x" level=error msg="it broke" \n') == "it broke"
    assert buildah_message("") == "no error message"


def test_buildah_engine_errors() -> None:
    missing = buildah_error("inspecting image x", "Error: x: image not known")
    assert type(missing) is ImageNotFound
    storage = buildah_error("listing images", "Error: opening storage: permission denied")
    assert type(storage) is EngineUnavailable
    assert storage.message == ("listing images failed: opening storage: permission denied "
                               "(is the buildah storage usable by this user?)")
    other = buildah_error("committing c", "Error: something else")
    assert type(other) is EngineError and other.message == "committing c failed: something else"
    cannot = buildah_not_runnable(FileNotFoundError(2, "No such file or directory"), "tagging")
    assert cannot.message == "tagging: cannot run buildah (No such file or directory)"


def test_docker_sdk_errors_by_class() -> None:
    connection = _Connection()
    cases: list[tuple[Any, type[Exception], str]] = [
        (_api_error(docker.errors.ImageNotFound, 404, "No such image: x:1"), ImageNotFound,
         "inspecting image x:1: No such image: x:1"),
        (_api_error(docker.errors.NotFound, 404, "No such container: c"), EngineError,
         "inspecting image x:1: No such container: c"),
        (_api_error(docker.errors.APIError, 500, "conflict\nmore"), EngineError,
         "inspecting image x:1 failed: conflict"),
        (docker.errors.DockerException("odd"), EngineError,
         "inspecting image x:1 failed: odd"),
    ]
    for exc, kind, message in cases:
        error = docker_error("inspecting image x:1", exc, connection)
        assert type(error) is kind and error is not None and error.message == message
    assert connection.resets == 0
    assert docker_error("x", ValueError("not the SDK's"), connection) is None


def test_docker_connection_failures() -> None:
    connection = _Connection()
    refused = docker_error("listing images", requests.exceptions.ConnectionError(
        "('Connection aborted.', ConnectionRefusedError(111, 'Connection refused'))"),
        connection)
    assert type(refused) is EngineUnavailable and connection.resets == 1
    assert refused.message == ("no container engine answers at socket /var/run/docker.sock "
                               "(connection refused); is dockerd running?")
    broke = docker_error("pushing x", ConnectionResetError("Connection reset by peer"),
                         connection)
    assert broke is not None and broke.message == (
        "pushing x: the connection to the engine at socket /var/run/docker.sock broke off "
        "(connection reset); did dockerd stop?")
    slow = docker_error("pulling x", requests.exceptions.ReadTimeout("Read timed out."),
                        connection, streaming=True)
    assert type(slow) is EngineError and connection.resets == 2  # a stream closes its own
    assert slow.message == ("pulling x: no answer from the engine at socket "
                            "/var/run/docker.sock in 7 s (timed out)")
    assert docker_unavailable(OSError(), "tcp://h:2375").message == (
        "no container engine answers at tcp://h:2375 (OSError); is dockerd running?")


def test_the_plain_http_hint() -> None:
    said = 'Get "https://r:5000/v2/": http: server gave HTTP response to HTTPS client'
    assert insecure_hint(said, "r:5000", insecure=False) == (
        f"{said} (the engine must be told the registry speaks plain HTTP: add r:5000 to "
        "its insecure-registries (and mark it insecure in the request))")
    assert insecure_hint(said, "r:5000", insecure=True).endswith("insecure-registries)")
    assert insecure_hint("other", "r:5000", insecure=False) == "other"


def test_the_error_module_imports_no_engine_library() -> None:
    assert loaded_after(["atomic_reactor._engine.errors"], ["docker", "requests"]) == []
