"""Build container helpers that need no engine: build root names, why a container left
no results, the loopback relay, build image contexts."""

from __future__ import annotations

import json
import os
import socket
import threading
import zipfile
from collections import deque
from pathlib import Path

import pytest

from atomic_reactor._buildcontainer import run as _container_build
from atomic_reactor._buildcontainer.image import context_digest, make_wheels, prepare_context
from atomic_reactor._buildcontainer.relay import (
    MAP_FILE,
    LoopbackForwarder,
    LoopbackRelay,
    loopback_endpoints,
)
from atomic_reactor._buildcontainer.run import (
    _no_results_error,
    buildroot_reference,
    run_in_build_container,
)
from atomic_reactor._engine.base import ContainerState
from atomic_reactor._request import BuildRequest
from atomic_reactor.errors import (
    BuildFailed,
    DockerfileError,
    EngineError,
    EngineUnavailable,
    InputError,
    PluginFailed,
    RegistryError,
    SourceError,
)

STAMP = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def test_buildroot_reference() -> None:
    assert str(buildroot_reference("127.0.0.1:5000", "ns/app:1", STAMP)) == \
        "127.0.0.1:5000/buildroot-app:20231114-221320"
    assert str(buildroot_reference("reg.example/roots", "app", STAMP)) == \
        "reg.example/roots:20231114-221320"
    assert str(buildroot_reference("reg.example/roots:mine", "app", STAMP)) == \
        "reg.example/roots:mine"
    assert str(buildroot_reference("localhost:5000/", "a/b/c:1", STAMP)) == \
        "localhost:5000/buildroot-b-c:20231114-221320"


@pytest.mark.parametrize(("code", "state", "last", "kind", "needle"), [
    (127, {}, "", InputError, "build image B has no atomic-reactor (exit 127)"),
    (1, {}, "[FATAL tini (7)] exec atomic-reactor failed: No such file or directory",
     InputError, "has no atomic-reactor"),
    (137, {}, "Step 2/3", EngineError,
     "killed by SIGKILL (exit 137) and wrote no results (last output: Step 2/3)"),
    (137, {"oom_killed": True}, "", EngineError, "ran out of memory"),
    (2, {}, "atomic-reactor: error: cannot read build json x", InputError,
     "exited with 2 and wrote no results (last output: atomic-reactor: error: cannot read"),
    (3, {}, "", BuildFailed, "exited with 3"),
    (4, {}, "", RegistryError, "exited with 4"),
    (5, {}, "", PluginFailed, "exited with 5"),
    (6, {}, "run-with-engine: no engine", EngineError, "run-with-engine: no engine"),
    (1, {}, "", BuildFailed, "exited with 1 and wrote no results"),
    (None, {}, "", EngineError, "went away before it finished"),
])
def test_why_no_results(code: int | None, state: dict[str, bool], last: str,
                        kind: type[Exception], needle: str) -> None:
    tail = deque([last] if last else [])
    container = ContainerState(id="c", status="exited", exit_code=code,
                               oom_killed=state.get("oom_killed", False))
    error = _no_results_error(code, container, tail, "B", "wrote no results")
    assert type(error) is kind
    assert needle in str(error)


def test_loopback_endpoints() -> None:
    found = loopback_endpoints(
        {"parent_registry": "127.0.0.1:5000", "target_registries": ["localhost:5001"],
         "x": ["http://127.0.0.2:80/v2/", "10.0.0.1:5000", "a127.0.0.1:9", "127.0.0.1:99999"]},
        "FROM 127.0.0.1:5000/base\n")
    assert found == [("127.0.0.1", 5000), ("127.0.0.2", 80), ("localhost", 5001)]


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


def test_relay_round_trip(tmp_path: Path) -> None:
    server, port = _echo_server()
    relay_dir = tmp_path / "r"
    relay_dir.mkdir()
    try:
        with LoopbackRelay(str(relay_dir), [("127.0.0.1", port)]):
            mapping = json.loads((relay_dir / MAP_FILE).read_text())
            assert mapping == {"r0.sock": ["127.0.0.1", port]}
            # in a build container the forwarder listens on the same address; here, in
            # the host's network namespace, on another loopback address
            (relay_dir / MAP_FILE).write_text(json.dumps({"r0.sock": ["127.0.0.3", port]}))
            with LoopbackForwarder(str(relay_dir)):
                for payload in (b"hello relay", b"x" * 300_000):
                    with socket.create_connection(("127.0.0.3", port), timeout=10) as client:
                        client.sendall(payload)
                        client.shutdown(socket.SHUT_WR)
                        received = b""
                        while chunk := client.recv(65536):
                            received += chunk
                    assert received == payload.upper()
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.3", port), timeout=2).close()
    finally:
        server.close()


def test_forwarder_without_relays_and_with_a_bad_map(tmp_path: Path) -> None:
    with LoopbackForwarder(str(tmp_path)):
        pass
    (tmp_path / MAP_FILE).write_text("{nope")
    with pytest.raises(EngineError, match="cannot read relay map"):
        LoopbackForwarder(str(tmp_path))


# -- requests that cannot start ------------------------------------------------------------


def _request(**extra: object) -> BuildRequest:
    return BuildRequest.from_mapping({"source": {"provider": "git",
                                                 "uri": "https://example.org/x.git"},
                                      "image": "x:1", **extra})


def test_method_and_build_image_are_required() -> None:
    with pytest.raises(InputError, match="unknown build method 'nope'"):
        run_in_build_container("nope", _request(build_image="b:1"))
    with pytest.raises(InputError, match=r"method hostdocker needs a build image "
                                         r"\(--build-image IMAGE"):
        run_in_build_container("hostdocker", _request())


def test_hostdocker_needs_the_engine_socket(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(EngineUnavailable, match=f"{tmp_path}/docker.sock does not exist"):
        run_in_build_container("hostdocker", _request(build_image="b:1"))
    monkeypatch.setenv("DOCKER_HOST", "ssh://user@host")
    with pytest.raises(InputError, match="cannot pass the engine at ssh://user@host"):
        run_in_build_container("hostdocker", _request(build_image="b:1"))


def test_command_passes_verbosity_and_relay(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="atomic_reactor")
    command = _container_build._command(relay=False)
    assert command[:2] == ["atomic-reactor", "inside-build"]
    assert "--relay-dir" not in command
    caplog.set_level(logging.DEBUG, logger="atomic_reactor")
    command = _container_build._command(relay=True)
    assert command[:3] == ["atomic-reactor", "--verbose", "inside-build"]
    assert command[-2:] == ["--relay-dir", _container_build.CONTAINER_RELAY]


# -- build image contexts ------------------------------------------------------------------


def _wheel(path: Path, content: str, date: tuple[int, int, int, int, int, int]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("pkg/__init__.py", date_time=date), content)


def test_context_digest_ignores_wheel_time_stamps(tmp_path: Path) -> None:
    digests = []
    for index, date in enumerate([(2020, 1, 1, 0, 0, 0), (2024, 5, 5, 5, 5, 6)]):
        context = tmp_path / f"c{index}"
        (context / "wheels").mkdir(parents=True)
        (context / "Dockerfile").write_text("FROM x\n")
        _wheel(context / "wheels/pkg-1-py3-none-any.whl", "A = 1\n", date)
        digests.append(context_digest(str(context), {"BASE_IMAGE": "b"}))
    assert digests[0] == digests[1]
    assert digests[0] != context_digest(str(tmp_path / "c0"), {"BASE_IMAGE": "other"})
    _wheel(tmp_path / "c0/wheels/pkg-1-py3-none-any.whl", "A = 2\n", (2020, 1, 1, 0, 0, 0))
    assert context_digest(str(tmp_path / "c0"), {"BASE_IMAGE": "b"}) != digests[0]


def test_prepare_context_and_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match="has no Dockerfile"):
        prepare_context(str(tmp_path), str(tmp_path / "ctx"), wheel_dir=str(tmp_path))
    dockerfile_dir = tmp_path / "df"
    dockerfile_dir.mkdir()
    (dockerfile_dir / "Dockerfile").write_text("FROM x\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels / "atomic_reactor-1-py3-none-any.whl", "", (2020, 1, 1, 0, 0, 0))
    prepare_context(str(dockerfile_dir), str(tmp_path / "ctx"), wheel_dir=str(wheels))
    assert sorted(os.listdir(tmp_path / "ctx")) == ["Dockerfile", "wheels"]
    assert os.listdir(tmp_path / "ctx/wheels") == ["atomic_reactor-1-py3-none-any.whl"]
    with pytest.raises(SourceError, match="does not exist"):
        make_wheels(str(tmp_path / "w"), reactor_tarball_path=str(tmp_path / "no.tar.gz"))
    with pytest.raises(SourceError, match="is not an atomic-reactor checkout"):
        make_wheels(str(tmp_path / "w"), reactor_local_path=str(dockerfile_dir))
    with pytest.raises(InputError, match="give one source of atomic-reactor"):
        make_wheels(str(tmp_path / "w"), reactor_local_path="a", reactor_tarball_path="b")
