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
from typing import Any

import pytest
import requests

from atomic_reactor import farm as farm_api
from atomic_reactor._results import BuildResults
from tests.integration.farm.conftest import Farm
from tests.integration.helpers import run_cli, unique
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


def _lines(farm: Farm, build_id: str) -> list[dict[str, str]]:
    from atomic_reactor.farm._records import Records

    records = Records.connect(farm.broker)
    try:
        return [fields for _id, fields in records.read_output(build_id, "0", None)]
    finally:
        records.close()


def _wait_output(farm: Farm, build_id: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in f.get("line", "") for f in _lines(farm, build_id)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in the output of {build_id} after {timeout}s")
        time.sleep(0.3)


def _redis_dump(farm: Farm) -> bytes:
    """Every key and value in the farm's Redis (to look for what must not be there)."""
    import redis

    client: Any = redis.Redis.from_url(farm.broker)
    out: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            out.append(key)
            if kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"list":
                out.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    out += [field, value]
            elif kind == b"zset":
                out.extend(client.zrange(key, 0, -1))
            elif kind == b"set":
                out.extend(client.smembers(key))
            elif kind == b"stream":
                for _id, fields in client.xrange(key):
                    for field, value in fields.items():
                        out += [field, value]
    finally:
        client.close()
    return b"\n".join(out)


def test_a_failing_build_exits_3_and_a_missing_base_4(live_farm: Farm, tmp_path: Path) -> None:
    path, _image = live_farm.build_json(tmp_path / "a", "FROM BASE\nRUN echo before && false\n")
    done = run_cli(["submit", str(path), "--wait"], env=live_farm.env())
    assert done.returncode == 3, done.stderr
    assert "before" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("atomic-reactor: error: ")
    missing = f"{live_farm.registry.address}/no-such/base:1"
    path, _image = live_farm.build_json(tmp_path / "b", f"FROM {missing}\nRUN true\n")
    done = run_cli(["submit", str(path), "--wait"], env=live_farm.env())
    assert done.returncode == 4, done.stderr
    status = run_cli(["farm", "status", done.stdout.splitlines()[0]], env=live_farm.env())
    assert " failed on w" in status.stdout and "(exit 4)" in status.stdout


def test_bad_input_is_refused_before_queueing(live_farm: Farm, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"image": "x:1"}))
    done = run_cli(["submit", str(path)], env=live_farm.env())
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "atomic-reactor: error: build json: 'source' is missing"
    nobroker = run_cli(["submit", str(path)], env={"ATOMIC_REACTOR_BROKER": ""})
    assert nobroker.returncode == 2 and "no broker" in nobroker.stderr


def test_secrets_and_credentials_never_cross_the_broker_in_clear(
        live_farm: Farm, tmp_path: Path) -> None:
    secret = "farm-s3cr3t-value-xyz"
    dockerfile = ('FROM BASE\nARG TOKEN\nRUN test "${#TOKEN}" -eq ' + str(len(secret)) +
                  ' && echo token-ok\n')
    path, image = live_farm.build_json(tmp_path, dockerfile, registry=live_farm.auth_registry)
    refused = run_cli(["submit", str(path), "--substitute-secret", f"buildargs.TOKEN={secret}"],
                      env=live_farm.env())
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "encrypt" in refused.stderr and secret not in refused.stderr
    keyed = live_farm.env(ATOMIC_REACTOR_FARM_KEY_FILE=str(live_farm.key_file))
    # queued where nobody takes it: the message itself holds no secret in clear
    held = run_cli(["submit", str(path), "--queue", "nobody-takes-this",
                    "--substitute-secret", f"buildargs.TOKEN={secret}"], env=keyed)
    assert held.returncode == 0, held.stderr
    assert secret.encode() not in _redis_dump(live_farm)
    assert run_cli(["farm", "cancel", held.stdout.strip()], env=keyed).returncode == 0
    # the build: the secret reaches the build, the workers' docker config the push
    done = run_cli(["submit", str(path), "--wait",
                    "--substitute-secret", f"buildargs.TOKEN={secret}"], env=keyed)
    assert done.returncode == 0, done.stderr
    assert "token-ok" in done.stderr
    assert secret not in done.stderr + done.stdout
    assert f"pushed {live_farm.auth_registry.address}/{image}@sha256:" in done.stdout
    dump = _redis_dump(live_farm)
    assert secret.encode() not in dump
    password = live_farm.auth_registry.password
    assert password and password.encode() not in dump


def test_cancel_a_queued_and_a_running_build(live_farm: Farm, tmp_path: Path) -> None:
    meta = tmp_path / "running-meta.json"
    running_json, _ = live_farm.build_json(
        tmp_path / "running", SLOW.format(seconds=60),
        exit_plugins=[{"name": "store_metadata", "args": {"path": str(meta)}}])
    queued_json, _ = live_farm.build_json(tmp_path / "queued", "FROM BASE\nRUN echo never\n")
    running = farm_api.submit(running_json, broker=live_farm.broker, queue="solo-1")
    queued = farm_api.submit(queued_json, broker=live_farm.broker, queue="solo-1")
    _wait_output(live_farm, running.id, "slow-start")
    assert queued.status().state == "queued"
    assert queued.cancel().state == "cancelled"
    started = time.monotonic()
    running.cancel()
    results = running.wait(timeout=60)
    assert time.monotonic() - started < 30  # not the 60 s of the RUN step
    assert results.exit_code == 143
    assert running.status().state == "cancelled"
    # the exit plugins ran, on the worker, as for a SIGTERM'd local build
    assert json.loads(meta.read_text())["error"]["type"] == "BuildCancelled"
    cancelled = queued.wait(timeout=30)
    assert cancelled.exit_code == 143
    # the worker survived and takes the next build; the cancelled one never started
    path, _ = live_farm.build_json(tmp_path / "next", "FROM BASE\nRUN echo next-one\n")
    after = farm_api.submit(path, broker=live_farm.broker, queue="solo-1")
    assert after.wait(timeout=120).exit_code == 0
    assert after.status().worker == "w1"
    status = queued.status()
    assert status.state == "cancelled" and status.attempts == 0
    assert live_farm.worker("w1").alive


def test_platform_builds_go_to_workers_of_that_platform(live_farm: Farm, tmp_path: Path
                                                        ) -> None:
    from tests.support.multiarch import push_multiarch_base

    # a build for linux/arm64 needs a base offering it (issue 9): a multi-arch one
    base = push_multiarch_base(live_farm.registry, unique("farm-mbase"))
    path, _ = live_farm.build_json(tmp_path, f"FROM {base.reference}\nRUN true\n",
                                   platforms=["linux/arm64"])
    builds = [farm_api.submit(path, broker=live_farm.broker) for _ in range(3)]
    for build in builds:
        status = build.status()
        assert status.queue == "atomic-reactor@linux-arm64" and status.platform == "linux/arm64"
    for build in builds:
        assert build.wait(timeout=180).exit_code == 0
        assert build.status().worker == "w3"  # the only worker declaring linux/arm64


def test_a_multi_platform_request_fans_out_and_pushes_the_list(live_farm: Farm,
                                                                 tmp_path: Path) -> None:
    from atomic_reactor import _request
    from atomic_reactor._registry.client import RegistryClient
    from tests.support.multiarch import ARM64, push_multiarch_base, read_image_file

    base = push_multiarch_base(live_farm.registry, unique("farm-mbase"))
    path, image = live_farm.build_json(
        tmp_path, f"FROM {base.reference}\nRUN uname -m > /arch.txt && echo built-here\n",
        platforms=["linux/amd64", "linux/arm64"])
    build = farm_api.submit(path, broker=live_farm.broker)
    lines: list[str] = []
    results = build.wait(timeout=300, on_output=lines.append)
    assert results.exit_code == 0, results.error
    status = build.status()
    assert status.state == "succeeded" and len(status.children) == 2
    children = {farm_api.build(c, broker=live_farm.broker).status().platform: c
                for c in status.children}
    arm = farm_api.build(children["linux/arm64"], broker=live_farm.broker).status()
    assert arm.worker == "w3" and arm.image == image.replace(":1", ":1-linux-arm64")
    assert any(line.startswith("[linux/arm64] ") and "built-here" in line for line in lines)
    registry = live_farm.registry
    response = requests.get(
        f"{registry.url}/v2/{image.split(':')[0]}/manifests/1", timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json, "
                           "application/vnd.oci.image.index.v1+json"})
    assert response.ok, response.text
    document = response.json()
    assert document["mediaType"].endswith(("manifest.list.v2+json", "image.index.v1+json"))
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
              for m in document["manifests"]}
    per_platform = results.plugin_results["farm"]["platforms"]
    for platform in ("linux/amd64", "linux/arm64"):
        pushed = per_platform[platform]["digests"][registry.address]
        assert listed[platform] == next(iter(pushed.values()))
    assert results.digests[registry.address][f"{registry.address}/{image}"] == \
        response.headers["Docker-Content-Digest"]
    shown = run_cli(["farm", "status", build.id], env=live_farm.env()).stdout.splitlines()
    assert len(shown) == 3 and shown[0].startswith(f"{build.id} succeeded")
    assert any("[linux/arm64]" in line and " on w3 " in line for line in shown[1:])
    if "platforms" in _request._KEYS:  # the builds themselves are per platform (issue 9)
        with RegistryClient(registry.address, insecure=True) as client:
            arch, text = read_image_file(client, image.split(":")[0], "1", ARM64, "/arch.txt")
        assert arch == "arm64" and text.strip() == b"aarch64"


def test_a_queued_multi_platform_build_is_cancelled_with_its_builds(live_farm: Farm,
                                                                     tmp_path: Path) -> None:
    path, _ = live_farm.build_json(tmp_path, "FROM BASE\nRUN true\n",
                                   platforms=["linux/amd64", "linux/arm64"])
    build = farm_api.submit(path, broker=live_farm.broker, queue="nobody-takes-these")
    assert build.status().state == "queued"
    assert build.cancel().state == "cancelled"
    started = time.monotonic()
    assert build.wait(timeout=30).exit_code == 143
    assert time.monotonic() - started < 10
    for child in build.status().children:
        status = farm_api.build(child, broker=live_farm.broker).status()
        assert status.state == "cancelled" and status.attempts == 0


def test_twelve_builds_three_workers_each_once_each_result_to_its_submitter(
        live_farm: Farm, tmp_path: Path) -> None:
    jsons = []
    for i in range(12):
        path, image = live_farm.build_json(
            tmp_path / f"b{i}", "FROM BASE\nCOPY . /ctx/\nRUN ls -A /ctx\n",
            {f"only-{i}.txt": f"build {i}\n"})
        jsons.append((path, image))
    results: dict[int, BuildResults] = {}
    outputs: dict[int, list[str]] = {i: [] for i in range(12)}
    builds: dict[int, farm_api.FarmBuild] = {}
    errors: list[BaseException] = []

    def submitter(i: int) -> None:
        try:
            builds[i] = farm_api.submit(jsons[i][0], broker=live_farm.broker)
            results[i] = builds[i].wait(timeout=400, on_output=outputs[i].append)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=450)
    assert not errors, errors
    workers = set()
    for i in range(12):
        assert results[i].exit_code == 0, results[i].error
        assert results[i].image == jsons[i][1]  # its own result
        listing = [line for line in outputs[i] if line.endswith(".txt")]
        assert listing == [f"only-{i}.txt"]  # its own files, nobody else's
        status = builds[i].status()
        assert status.attempts == 1 and status.state == "succeeded"
        starts = [f for f in _lines(live_farm, builds[i].id) if f.get("event") == "start"]
        assert len(starts) == 1
        workers.add(status.worker)
        assert _manifest_digest(live_farm.registry.url, jsons[i][1]) == \
            results[i].pushed[0].digest
    assert workers == {"w1", "w2", "w3"}
    for worker in live_farm.workers:
        assert not any(worker.builds_dir.iterdir())


def test_a_worker_whose_engine_is_down_takes_no_build(farm: Farm, tmp_path: Path) -> None:
    socket_dir = tmp_path / "engine"
    socket_dir.mkdir()
    engine = socket_dir / "docker.sock"  # nothing there yet: the engine is "down"
    worker = Worker("w4", farm.net.namespace(4), farm.broker, farm.root / "w4",
                    queues=["solo-4"], env={"DOCKER_HOST": f"unix://{engine}"},
                    visibility_timeout=15, engine="docker")
    farm.extra.append(worker)
    worker.start()
    worker.wait_for_log("engine down", "not taking builds from solo-4")
    path, _ = farm.build_json(tmp_path, "FROM BASE\nRUN echo engine-is-back\n")
    build = farm_api.submit(path, broker=farm.broker, queue="solo-4")
    time.sleep(8)
    status = build.status()
    assert status.state == "queued" and status.attempts == 0
    os.symlink("/var/run/docker.sock", engine)  # the engine is back
    worker.wait_for_log("engine answers again")
    results = build.wait(timeout=120)
    assert results.exit_code == 0
    assert build.status().worker == "w4"
    worker.stop()
    farm.extra.remove(worker)


def test_redis_restart_loses_no_queued_build(live_farm: Farm, tmp_path: Path) -> None:
    paths = [live_farm.build_json(tmp_path / f"r{i}", SLOW.format(seconds=2))[0]
             for i in range(6)]
    builds = [farm_api.submit(p, broker=live_farm.broker) for p in paths]
    time.sleep(1)
    queued = [b for b in builds if b.status().state == "queued"]
    assert queued, "every build started at once: nothing was queued"
    live_farm.redis.restart(signal.SIGKILL)  # append-only: what was acknowledged stays
    for build in builds:
        assert build.wait(timeout=300).exit_code == 0
        assert build.status().state == "succeeded"


def test_kill_9_of_a_whole_worker_mid_build(live_farm: Farm, tmp_path: Path) -> None:
    import subprocess
    import sys

    path, image = live_farm.build_json(tmp_path, SLOW.format(seconds=8))
    submitter = subprocess.Popen(
        [sys.executable, "-m", "atomic_reactor", "submit", str(path), "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **live_farm.env()})
    try:
        assert submitter.stdout is not None
        build_id = submitter.stdout.readline().strip()
        build = farm_api.build(build_id, broker=live_farm.broker)
        _wait_output(live_farm, build_id, "slow-start")
        first = build.status()
        assert first.state == "running" and first.attempts == 1
        victim = live_farm.worker(str(first.worker))
        victim.kill9()
        killed_at = time.monotonic()
        again = _wait_state_attempt(build, 2, timeout=60)
        assert time.monotonic() - killed_at < 60
        assert again.worker != victim.name
        stdout, stderr = submitter.communicate(timeout=180)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.communicate()
    assert submitter.returncode == 0, stderr
    assert f"restarted on worker {again.worker} (attempt 2)" in stderr
    assert stdout.count("\npushed ") == 1  # one result
    final = build.status()
    assert final.state == "succeeded" and final.attempts == 2 and final.worker == again.worker
    assert _manifest_digest(live_farm.registry.url, image) is not None


def _wait_state_attempt(build: farm_api.FarmBuild, attempt: int, timeout: float
                        ) -> farm_api.FarmStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = build.status()
        if status.attempts >= attempt and status.state in ("running", "succeeded"):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build.id} not restarted within {timeout}s: {status}")
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _no_stray_submitter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOMIC_REACTOR_FARM_KEY_FILE", raising=False)
    monkeypatch.delenv("ATOMIC_REACTOR_BROKER", raising=False)
