"""SIGTERM / Ctrl-C (SIGINT) during a pull, the build or a push, sent to the real
command: the engine's work stops (no container of the build is left), the exit
plugins run, temporary directories go, and the exit code is 143 / 130.

The pull and the push are held mid-way by the fault proxy (it delays the registry's
answer), the build by a ``RUN sleep 300`` step.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from atomic_reactor._engine.base import EngineEvent
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker
from tests.integration.faults.support import SIGNALS, CliBuild, CliProcess, containers_with
from tests.integration.helpers import unique, write_context
from tests.support.env import BaseImage, Registry
from tests.support.faultproxy import Fault, FaultProxy, Seen

HOLD = 600.0  # the proxy holds the request until the test ends


def _held(log: list[Seen]) -> bool:
    return any(seen.outcome == "held" for seen in log)


def _assert_cancelled(cli: CliProcess, build: CliBuild, code: int, signame: str,
                      engine: docker.APIClient, containers_before: set[str]) -> None:
    assert cli.finish(timeout=120) == code, cli.stderr
    assert cli.error_lines() == [f"atomic-reactor: error: build cancelled by {signame}"], \
        cli.stderr
    assert "Traceback" not in cli.stderr
    marker = build.marker_data()  # the exit plugin ran, and knew about the cancel
    assert marker["cancelled"] == f"build cancelled by {signame}"
    assert cli.tmp_leftovers() == []
    new = [c["Id"][:12] for c in engine.containers(all=True) if c["Id"] not in containers_before]
    assert new == []


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_cancel_during_pull(engine: docker.APIClient, base_image: BaseImage, proxy: FaultProxy,
                            cli_build: Callable[..., CliBuild], signum: int, code: int) -> None:
    proxy.add(Fault.delay(HOLD, path="/v2/*/manifests/*", times=None))
    build = cli_build(f"FROM {base_image.repo}\nRUN true\n", parent_registry=proxy.address,
                      parent_registry_insecure=True)
    before = {c["Id"] for c in engine.containers(all=True)}
    cli = build.start()
    try:
        assert proxy.wait_for(_held), cli.stderr
        assert "pulling" in cli.stderr
        cli.signal(signum)
        _assert_cancelled(cli, build, code, signal.Signals(signum).name,
                          engine, before)
    finally:
        cli.kill()
    pulled = f"{proxy.address}/{base_image.repo}"
    assert engine.images(name=pulled.rsplit(":", 1)[0]) == []


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_cancel_during_build(engine: docker.APIClient, base_image: BaseImage,
                             cli_build: Callable[..., CliBuild], signum: int, code: int) -> None:
    needle = unique("sleeper")
    build = cli_build(f"FROM {base_image.local}\nRUN echo one > /one\n"
                      f"RUN sleep 300 # {needle}\n", dont_pull_base_image=True)
    before = {c["Id"] for c in engine.containers(all=True)}
    cli = build.start()
    try:
        # the second step's container runs: "Step 3/3 : RUN sleep …", " ---> Running in …"
        assert cli.wait_until(lambda err: f"sleep 300 # {needle}" in err
                              and err.count("Running in") == 2), cli.stderr
        assert containers_with(engine, needle) != []  # the RUN step's container exists
        cli.signal(signum)
        _assert_cancelled(cli, build, code, signal.Signals(signum).name,
                          engine, before)
    finally:
        cli.kill()
    # gone when the command returned: dockerd killed it, or the command removed it
    assert containers_with(engine, needle) == []
    assert engine.images(name=build.image.rsplit(":", 1)[0]) == []  # never tagged


@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_cancel_during_push(engine: docker.APIClient, base_image: BaseImage,
                            registry: Registry, proxy: FaultProxy,
                            cli_build: Callable[..., CliBuild], signum: int, code: int) -> None:
    proxy.add(Fault.delay(HOLD, path="/v2/*/blobs/uploads/*", method="POST", times=None))
    build = cli_build(f"FROM {base_image.local}\nCOPY payload /payload\n",
                      {"payload": unique("payload")}, dont_pull_base_image=True,
                      target_registries=[proxy.address], target_registries_insecure=True)
    repository = build.image.rsplit(":", 1)[0]
    before = {c["Id"] for c in engine.containers(all=True)}
    cli = build.start()
    try:
        assert proxy.wait_for(_held), cli.stderr
        cli.signal(signum)
        _assert_cancelled(cli, build, code, signal.Signals(signum).name,
                          engine, before)
    finally:
        cli.kill()
    with RegistryClient(registry.address) as client:  # read directly, not via the proxy
        assert client.list_tags(repository) == []
    assert engine.images(name=f"{proxy.address}/{repository}") == []  # tag dropped


class _StopReading(Exception):
    """Raised from an event callback: the caller stops reading the build stream."""


@pytest.mark.parametrize("remove_intermediate", [False, True],
                         ids=["dockerd-alone", "with-reaping"])
def test_dockerd_cancels_a_build_whose_client_goes(
        engine: docker.APIClient, base_image: BaseImage, tmp_path: Path,
        remove_intermediate: bool) -> None:
    """dockerd 20.10 kills and removes a legacy build's RUN container when the client's
    connection closes: measured here without our reaping (remove_intermediate=False
    turns it off), so dockerd alone must do it; with it, the container is gone by the
    time build_image returns."""
    needle = unique("sleeper")
    context = write_context(tmp_path / "ctx", f"FROM {base_image.local}\n"
                                              f"RUN sleep 300 # {needle}\n")
    existed: list[list[str]] = []

    def stop_at_run(event: EngineEvent) -> None:
        if event.message and "Running in" in event.message:
            existed.append(containers_with(engine, needle))
            raise _StopReading

    with pytest.raises(_StopReading):
        DockerTasker().build_image(str(context), f"{unique()}:1", on_event=stop_at_run,
                                   remove_im=remove_intermediate)
    assert existed and existed[0] != []  # the step's container was there
    if remove_intermediate:
        assert containers_with(engine, needle) == []
    else:
        deadline = time.monotonic() + 60  # dockerd works asynchronously: wait for it
        while containers_with(engine, needle) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert containers_with(engine, needle) == []


@pytest.mark.parametrize(("signum", "code"), SIGNALS[:1])
def test_cancel_during_our_push_to_two_registries(
        engine: docker.APIClient, base_image: BaseImage, registry: Registry,
        proxy: FaultProxy, cli_build: Callable[..., CliBuild], signum: int, code: int) -> None:
    """Our push to two registries, one of them holding the manifest's PUT (the part of
    the push each registry's own thread does): the cancel ends the command at once,
    nothing waits for the held request."""
    proxy.add(Fault.delay(HOLD, path="/v2/*/manifests/*", method="PUT", times=None))
    build = cli_build(f"FROM {base_image.local}\nCOPY payload /payload\n",
                      {"payload": unique("payload")}, dont_pull_base_image=True,
                      target_registries=[proxy.address, registry.address],
                      target_registries_insecure=True, push_method="registry")
    before = {c["Id"] for c in engine.containers(all=True)}
    cli = build.start()
    try:
        assert proxy.wait_for(_held), cli.stderr
        cli.signal(signum)
        started = time.monotonic()
        _assert_cancelled(cli, build, code, signal.Signals(signum).name, engine, before)
        assert time.monotonic() - started < 30  # not held for the upload's HOLD
    finally:
        cli.kill()
    assert proxy.count("PUT", "/v2/*/manifests/*", outcome="forwarded") == 0
