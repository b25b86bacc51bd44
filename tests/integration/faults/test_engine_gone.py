"""No engine at the address, or the engine going away mid-build: one clear line that
names the socket, exit 6, the exit plugins still run (one line each if they fail
themselves), nothing left behind.

The shared dockerd is never stopped: a unix-socket proxy stands in front of it and
is cut, which is what the client sees when dockerd stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.faults.support import CliBuild, CliProcess, containers_with
from tests.integration.helpers import unique
from tests.support.env import BaseImage, Registry
from tests.support.faultproxy import Fault, FaultProxy, Seen
from tests.support.socketproxy import SocketProxy


@pytest.fixture
def engine_proxy() -> Iterator[SocketProxy]:
    with SocketProxy("/var/run/docker.sock") as proxy:
        yield proxy


def _assert_one_line_naming(cli: CliProcess, socket_path: str) -> str:
    assert "Traceback" not in cli.stderr, cli.stderr
    errors = cli.error_lines()
    assert len(errors) == 1, cli.stderr
    assert f"socket {socket_path}" in errors[0], errors[0]
    # the exit plugin that needed the engine failed with one line, not a storm
    plugin_lines = [line for line in cli.stderr.splitlines() if "fault_marker" in line]
    assert len([line for line in plugin_lines if "failed" in line]) <= 1, cli.stderr
    return errors[0]


@pytest.mark.parametrize("pull", [True, False], ids=["pull-first", "build-first"])
def test_no_engine_at_the_address(cli_build: Callable[..., CliBuild], registry: Registry,
                                  tmp_path: Path, pull: bool) -> None:
    socket_path = str(tmp_path / "nonexistent.sock")
    # engine "auto" would fall back to buildah when the docker socket is gone: this test is
    # about a docker engine that is asked for and does not answer
    settings: dict[str, Any] = {"engine": "docker"}
    settings.update({"parent_registry": registry.address} if pull else
                    {"dont_pull_base_image": True})
    build = cli_build("FROM atomic-reactor-test/busybox:latest\nRUN true\n",
                      touch_engine=True, **settings)
    cli = build.start(env={"DOCKER_HOST": f"unix://{socket_path}"})
    assert cli.finish() == 6, cli.stderr
    line = _assert_one_line_naming(cli, socket_path)
    assert "no container engine answers" in line
    assert build.marker_data()["error"]  # the exit plugin ran and saw the error
    assert cli.tmp_leftovers() == []


def _held(log: list[Seen]) -> bool:
    return any(seen.outcome == "held" for seen in log)


@pytest.mark.parametrize("stage", ["pull", "build", "push"])
def test_engine_goes_away(engine: docker.APIClient, base_image: BaseImage, proxy: FaultProxy,
                          engine_proxy: SocketProxy, cli_build: Callable[..., CliBuild],
                          stage: str) -> None:
    needle = unique("gone")
    if stage == "pull":
        proxy.add(Fault.delay(600, path="/v2/*/manifests/*", times=None))
        build = cli_build(f"FROM {base_image.repo}\nRUN true\n", touch_engine=True,
                          parent_registry=proxy.address, parent_registry_insecure=True)
    elif stage == "build":
        build = cli_build(f"FROM {base_image.local}\nRUN sleep 300 # {needle}\n",
                          touch_engine=True, dont_pull_base_image=True)
    else:
        proxy.add(Fault.delay(600, path="/v2/*/blobs/uploads/*", method="POST", times=None))
        build = cli_build(f"FROM {base_image.local}\nCOPY payload /payload\n",
                          {"payload": needle}, touch_engine=True, dont_pull_base_image=True,
                          target_registries=[proxy.address], target_registries_insecure=True,
                          push_method="engine")  # the engine's own push is what breaks off
    before = {c["Id"] for c in engine.containers(all=True)}
    cli = build.start(env={"DOCKER_HOST": engine_proxy.url})
    try:
        if stage == "build":
            assert engine_proxy.wait_for(b"Running in"), cli.stderr
        else:
            assert proxy.wait_for(_held), cli.stderr
        engine_proxy.cut()  # dockerd "stops", as far as the command can tell
        assert cli.finish() == 6, cli.stderr
    finally:
        cli.kill()
    line = _assert_one_line_naming(cli, engine_proxy.path)
    assert "broke off" in line or "no container engine answers" in line
    assert build.marker_data()["error"]
    assert cli.tmp_leftovers() == []
    # dockerd saw its client go and cancelled the work: the step container goes too
    deadline = time.monotonic() + 60
    while containers_with(engine, needle) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert containers_with(engine, needle) == []
    new = [c["Id"][:12] for c in engine.containers(all=True) if c["Id"] not in before]
    assert new == []
