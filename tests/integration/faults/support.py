"""Helpers for the fault tests: a recording retry sleep, checks that read the
registry directly, and a CLI process a test can signal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker, RetryPolicy
from tests.support.env import Registry, check_stream

#: an exit plugin recording what the workflow knew when the exit phase ran
MARKER_PLUGIN = '''
import json

from atomic_reactor.plugin import ExitPlugin


class FaultMarker(ExitPlugin):
    key = "fault_marker"
    is_allowed_to_fail = True

    def __init__(self, tasker, workflow, path: str, touch_engine: bool = False):
        super().__init__(tasker, workflow)
        self.path = path
        self.touch_engine = touch_engine

    def run(self):
        wf = self.workflow
        with open(self.path, "w") as handle:
            json.dump({"cancelled": str(wf.cancelled) if wf.cancelled else None,
                       "error": str(wf.error) if wf.error else None}, handle)
        if self.touch_engine:  # an exit plugin that needs the engine
            self.tasker.get_version()
'''


class RecordingSleep:
    """A retry sleep that records each wait and runs ``before`` first (e.g. heal a fault)."""

    def __init__(self, before: Callable[[], None] | None = None) -> None:
        self.calls: list[float] = []
        self.before = before

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.before is not None:
            self.before()
        time.sleep(min(seconds, 0.05))


def tasker_with(sleep: RecordingSleep, attempts: int = 4) -> DockerTasker:
    return DockerTasker(retry=RetryPolicy(attempts=attempts, delay=0.01, sleep=sleep))


@dataclass(frozen=True)
class UniqueImage:
    """A local image: the base plus one layer holding ``payload`` at /payload."""

    name: str  # repository, no registry, no tag
    tag: str
    image_id: str
    payload: str

    @property
    def local(self) -> str:
        return f"{self.name}:{self.tag}"


def drop_local(engine: docker.APIClient, image_id: str) -> None:
    """Remove every local name of ``image_id`` (and so the image)."""
    info = engine.inspect_image(image_id)
    for ref in (info.get("RepoTags") or []) + (info.get("RepoDigests") or []):
        with contextlib.suppress(docker.errors.NotFound):
            engine.remove_image(ref, noprune=False)


def run_payload(engine: docker.APIClient, image: str) -> str:
    """``cat /payload`` in a container of ``image`` (no network needed)."""
    container = engine.create_container(image, command=["cat", "/payload"],
                                        host_config=engine.create_host_config(
                                            network_mode="none"))
    try:
        engine.start(container["Id"])
        status = engine.wait(container["Id"], timeout=120)
        assert status["StatusCode"] == 0, status
        return str(engine.logs(container["Id"]).decode().strip())
    finally:
        engine.remove_container(container["Id"], force=True)


def assert_registry_holds(engine: docker.APIClient, registry: Registry, image: UniqueImage,
                          repo: str, tag: str, digest: str | None) -> None:
    """Read ``registry`` directly (not through any proxy): the manifest has ``digest``,
    every blob it names is there, and pulling it back gives the same, runnable image."""
    assert digest is not None and digest.startswith("sha256:")
    with RegistryClient(registry.address) as client:
        manifest, manifest_digest = client.get_manifest(repo, tag)
        assert manifest_digest == digest
        assert client.get_manifest_digest(repo, digest) == digest
        blobs = [manifest["config"], *manifest["layers"]]
        for blob in blobs:
            data = client.get_blob(repo, blob["digest"])
            assert len(data) == blob["size"], blob
    drop_local(engine, image.image_id)
    reference = f"{registry.address}/{repo}:{tag}"
    check_stream(engine.pull(reference, stream=True, decode=True), f"pulling {reference}")
    assert engine.inspect_image(reference)["Id"] == image.image_id
    assert run_payload(engine, reference) == image.payload


# -- the command line, as a process a test can signal -----------------------------------------


class CliProcess:
    """``python -m atomic_reactor ARGS`` with its own TMPDIR; stderr read as it comes."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        full_env = {**os.environ, "TMPDIR": str(tmpdir), **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "atomic_reactor", *args], env=full_env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stdout = ""
        self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._lines.append("")  # EOF
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for_line(self, needle: str, timeout: float = 120) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: any(needle in line for line in self._lines)
                or (bool(self._lines) and self._lines[-1] == ""), timeout=timeout
            ) and any(needle in line for line in self._lines)

    def wait_until(self, predicate: Callable[[str], bool], timeout: float = 120) -> bool:
        """Wait until ``predicate(stderr so far)`` holds; False if the process ended first."""
        with self._cond:
            ended = False

            def check() -> bool:
                nonlocal ended
                ended = bool(self._lines) and self._lines[-1] == ""
                return ended or predicate("".join(self._lines))

            return self._cond.wait_for(check, timeout=timeout) and \
                predicate("".join(self._lines))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    def finish(self, timeout: float = 120) -> int:
        """Wait for the process to end (killing it after ``timeout``); its exit code."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout=10)
        self._out_reader.join(timeout=10)
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tmp_leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name != "atomic-reactor-locks")

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines()
                if line.startswith("atomic-reactor: error:")]


@dataclass
class CliBuild:
    """A build json + marker plugin, ready to run as :class:`CliProcess`."""

    build_json: Path
    plugin: Path
    marker: Path
    image: str
    tmpdir: Path

    def start(self, *extra: str, env: Mapping[str, str] | None = None) -> CliProcess:
        return CliProcess(["build", "json", str(self.build_json), "--load-plugin",
                           str(self.plugin), *extra], dict(env or {}), self.tmpdir)

    def marker_data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.marker.read_text())
        return data


def containers_with(engine: docker.APIClient, needle: str) -> list[str]:
    """Containers (any state) whose command line contains ``needle``."""
    return [str(c["Id"])[:12] for c in engine.containers(all=True)
            if needle in str(c.get("Command", ""))]


SIGNALS = [pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
           pytest.param(signal.SIGINT, 130, id="SIGINT")]
