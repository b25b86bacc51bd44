"""The build farm for real: Redis, three workers in network namespaces of their own,
real builds on the engine pushed to real registries, and the faults produced for real
(kill -9 of a whole worker, a Redis restart, an engine that is down)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from atomic_reactor import farm as farm_api
from atomic_reactor._results import BuildResults
from tests.integration.farm.conftest import Farm
from tests.integration.helpers import run_cli
from tests.support.farmnet import Worker

SLOW = """
FROM BASE
RUN echo slow-start && sleep {seconds} && echo slow-end
"""


def _manifest_digest(registry_url: str, image: str) -> str | None:
    name, _, tag = image.rpartition(":")
    response = requests.head(
        f"{registry_url}/v2/{name}/manifests/{tag}", timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    return response.headers.get("Docker-Content-Digest") if response.ok else None


def _wait_state(build: farm_api.FarmBuild, states: set[str], timeout: float = 60
                ) -> farm_api.FarmStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = build.status()
        if status.state in states:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build.id} still {status.state} after {timeout}s")
        time.sleep(0.3)


def test_submit_wait_streams_output_and_returns_results(live_farm: Farm, tmp_path: Path
                                                        ) -> None:
    path, image = live_farm.build_json(tmp_path, """
        FROM BASE
        COPY marker.txt /marker.txt
        RUN cat /marker.txt
        """, {"marker.txt": "farm-marker-1\n"})
    meta = tmp_path / "out" / "meta.json"
    done = run_cli(["submit", str(path), "--wait", "--metadata-file", str(meta)],
                   env=live_farm.env())
    assert done.returncode == 0, done.stderr
    build_id = done.stdout.splitlines()[0]
    assert len(build_id) == 32
    assert "farm-marker-1" in done.stderr  # the build's output, live
    assert "Step 1/3" in done.stderr
    results = BuildResults.from_dict(json.loads(meta.read_text()))
    assert results.exit_code == 0
    digest = _manifest_digest(live_farm.registry.url, image)
    assert digest is not None
    assert results.digests[live_farm.registry.address] == {
        f"{live_farm.registry.address}/{image}": digest}
    assert f"pushed {live_farm.registry.address}/{image}@{digest}" in done.stdout
    status = run_cli(["farm", "status", build_id, "--json"], env=live_farm.env())
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert record["state"] == "succeeded"
    assert record["worker"] in {"w1", "w2", "w3"}
    assert record["attempts"] == 1 and record["exit_code"] == 0
    log = run_cli(["farm", "status", build_id, "--log"], env=live_farm.env())
    assert log.returncode == 0, log.stderr
    assert "farm-marker-1" in log.stdout and "running postbuild plugin tag_and_push" in log.stdout
    # the worker's working directory for the build is gone
    worker = live_farm.worker(record["worker"])
    assert not any(worker.builds_dir.iterdir())
    listing = run_cli(["farm", "status"], env=live_farm.env())
    assert build_id in listing.stdout and "succeeded" in listing.stdout
