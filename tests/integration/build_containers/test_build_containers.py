"""Builds in build containers (methods hostdocker and privileged), for real.

Both build images are made once per session from a debootstrap Debian base (see
``conftest.py``); each method then builds a small busybox-based image, pushes it to
the ``registry`` fixture, and its results read back from the container are compared
with a ``build_image_here`` build of the same source.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from atomic_reactor._buildcontainer import run as _container_build
from atomic_reactor._buildcontainer.run import CONTAINER_LABEL
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._results import BuildResults
from atomic_reactor.api import (
    build_image_here,
    build_image_in_privileged_container,
    build_image_using_hosts_docker,
)
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import EngineError, EngineUnavailable, InputError
from tests.integration.build_containers.conftest import BuildImageInfo
from tests.integration.helpers import REPO_ROOT, git_repo, path_source, unique, write_context
from tests.support.env import BaseImage, EngineTracker, Registry

BUILDERS: dict[str, Callable[..., BuildResults]] = {
    "hostdocker": build_image_using_hosts_docker,
    "privileged": build_image_in_privileged_container,
}
_DEADLINE = 120  # seconds to wait for a condition before giving up (not a speed check)


def _context(directory: Path, base_image: BaseImage, extra: str = "") -> Path:
    return write_context(directory, f"""
        FROM {base_image.repo}
        RUN echo hello > /hello
        LABEL example=build-containers
        {extra}
        """, files={"data.txt": "some data\n"})


def _build_containers(engine: docker.APIClient) -> list[dict[str, Any]]:
    return list(engine.containers(all=True, filters={"label": CONTAINER_LABEL}) or [])


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "atomic-reactor-locks")


def _wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def _labels(results: BuildResults) -> dict[str, str]:
    assert results.built_img_inspect is not None
    return dict(results.built_img_inspect["Config"]["Labels"] or {})


def _check_like_here(results: BuildResults, here: BuildResults, registry: Registry,
                     name: str) -> None:
    assert results.error is None, results.error
    assert not results.is_failed()
    results.raise_for_status()
    assert results.return_code == 0
    assert results.container_id
    assert results.image == f"{name}:1"
    assert results.image_id and results.image_id.startswith("sha256:")
    assert _labels(results) == _labels(here)
    assert _labels(results)["example"] == "build-containers"
    # the digest per registry, as the registry serves it
    reference = f"{registry.address}/{name}:1"
    digest = results.digests[registry.address][reference]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name, "1") == digest
    assert list(results.digests) == list(here.digests)
    # the same plugins ran, with the same kind of results
    assert set(results.plugins_timestamps) == set(here.plugins_timestamps)
    assert results.plugins_errors == here.plugins_errors == {}
    assert set(results.plugin_results) == set(here.plugin_results)
    for phase, outputs in here.plugin_results.items():
        assert set(results.plugin_results[phase]) == set(outputs)
    assert results.base_plugins_output["pull_base_image"][0]["digest"] == \
        here.base_plugins_output["pull_base_image"][0]["digest"]
    assert results.base_img_inspect is not None
    assert results.base_img_inspect["Id"] == here.base_img_inspect["Id"]  # type: ignore[index]
    assert results.dockerfile == here.dockerfile
    assert any("Step 2/3" in line for line in results.build_logs)
    assert results.source["provider"] == "path"
    assert results.log_file and Path(results.log_file).is_file()
    assert "Step 2/3" in Path(results.log_file).read_text()
    # a JSON round trip keeps it all
    again = BuildResults.from_dict(json.loads(results.to_json()))
    assert again.digests == results.digests and again.container_id == results.container_id


@pytest.mark.parametrize("method", ["hostdocker", "privileged"])
def test_build_in_build_container_matches_build_here(
        method: str, hostdocker_build_image: BuildImageInfo,
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, private_tmp: Path,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # (both build images are session fixtures set up before the test's engine snapshot)
    build_image = hostdocker_build_image if method == "hostdocker" else privileged_build_image
    context = _context(tmp_path / "src", base_image)
    here_name, name = unique(), unique()
    here = build_image_here(path_source(context), f"{here_name}:1",
                            parent_registry=registry.address,
                            target_registries=[registry.address])
    here.raise_for_status()
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    caplog.set_level(logging.INFO, logger="atomic_reactor")
    results = BUILDERS[method](build_image.image, path_source(context), f"{name}:1",
                               parent_registry=registry.address,
                               target_registries=[registry.address])
    _check_like_here(results, here, registry, name)
    output = [r.getMessage() for r in caplog.records if r.name == "atomic_reactor.build.output"]
    assert any("Step 2/3 : RUN echo hello > /hello" in line for line in output)
    if method == "hostdocker":
        # the host's engine built it: the image is here
        assert engine.inspect_image(f"{name}:1")["Id"] == results.image_id
    else:
        # the nested engine built it: the host has only the pushed copy
        with pytest.raises(docker.errors.ImageNotFound):
            engine.inspect_image(f"{name}:1")
        refused = [r for r in caplog.records if "refuses --privileged" in r.getMessage()]
        if refused:  # this engine refuses --privileged: the fallback was used and said so
            assert refused[0].levelno == logging.WARNING
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_cli_privileged_git_source_with_metadata(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient) -> None:
    repo = git_repo(tmp_path / "repo", f"FROM {base_image.repo}\nLABEL from=git\n")
    name = unique()
    metadata = tmp_path / "metadata.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "atomic_reactor", "build", "git", "--uri", f"file://{repo}",
         "--commit", "main", "--image", f"{name}:1", "--method", "privileged",
         "--build-image", privileged_build_image.image,
         "--source-registry", registry.address, "--target-registries", registry.address,
         "--metadata-file", str(metadata)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    # the container's output streamed through the host's output
    assert "Step 2/2 : LABEL from=git" in done.stderr
    assert f"pushed {registry.address}/{name}:1@sha256:" in done.stdout
    data = json.loads(metadata.read_text())
    assert data["failed"] is False and data["container_id"]
    assert data["source"]["provider"] == "git" and data["source"]["vcs_ref"]
    assert data["digests"][registry.address][f"{registry.address}/{name}:1"]
    assert _build_containers(engine) == []
    assert _leftovers(tmp) == []


def test_keep_build_container_and_push_buildroot(
        hostdocker_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, engine_cleanup: EngineTracker,
        private_tmp: Path) -> None:
    context = _context(tmp_path / "src", base_image)
    repository = f"{registry.address}/{unique('buildroot')}"
    results = build_image_using_hosts_docker(
        hostdocker_build_image.image, path_source(context), unique(),
        parent_registry=registry.address, push_buildroot_to=repository,
        keep_build_container=True)
    results.raise_for_status()
    assert results.container_id is not None
    engine_cleanup.track_container(results.container_id)
    kept = engine.inspect_container(results.container_id)
    assert kept["State"]["Running"] is False and kept["State"]["ExitCode"] == 0
    buildroot = results.buildroot
    assert buildroot is not None and "error" not in buildroot, buildroot
    assert buildroot["image"].startswith(f"{repository}:")
    tag = buildroot["image"].rsplit(":", 1)[1]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(repository.split("/", 1)[1], tag) == \
            buildroot["digest"]
    # the committed build root is not left on the engine
    assert not engine.images(name=repository)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.inspect_image(buildroot["image_id"])
    engine.remove_container(results.container_id, force=True)
    assert _leftovers(private_tmp) == []


def test_quiet_build_outlasts_the_engine_read_timeout(
        hostdocker_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    context = _context(tmp_path / "src", base_image, "RUN sleep 6 && echo slept")
    caplog.set_level(logging.INFO, logger="atomic_reactor")
    results = build_image_using_hosts_docker(
        hostdocker_build_image.image, path_source(context), unique(),
        parent_registry=registry.address, tasker=DockerTasker(timeout=2))
    results.raise_for_status()
    output = [r.getMessage() for r in caplog.records if r.name == "atomic_reactor.build.output"]
    # followed again after the read timeout, and no line shown twice
    assert sum("Step 4/4 : RUN sleep 6" in line for line in output) == 1
    assert sum("Step 1/4" in line for line in output) == 1


def test_failing_build_in_build_container_with_a_plugin_file(
        hostdocker_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, private_tmp: Path) -> None:
    plugin_file = tmp_path / "plugins" / "produce.py"
    plugin_file.parent.mkdir()
    plugin_file.write_text(
        "from atomic_reactor.plugin import PreBuildPlugin\n\n\n"
        "class Produce(PreBuildPlugin):\n"
        "    key = 'produce'\n\n"
        "    def run(self):\n"
        "        return {'answer': 42}\n")
    context = _context(tmp_path / "src", base_image, "RUN echo failing-now && false")
    results = build_image_using_hosts_docker(
        hostdocker_build_image.image, path_source(context), unique(),
        parent_registry=registry.address, target_registries=[registry.address],
        plugin_files=[str(plugin_file)], prebuild_plugins=[{"name": "produce"}])
    assert results.is_failed() and results.return_code == 3
    assert results.plugin_results["prebuild"]["produce"] == {"answer": 42}
    assert results.fail_reason and "non-zero code: 1" in results.fail_reason
    assert any("failing-now" in line for line in results.build_logs)
    assert results.pushed == ()
    assert results.exit_code == 3
    # the results name the source as the caller did
    assert results.source["uri"] == f"file://{context}"
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


# -- inside-build on the host -----------------------------------------------------------


def test_inside_build_env_and_osv3_inputs_on_the_host(
        tmp_path: Path, base_image: BaseImage, registry: Registry) -> None:
    from tests.integration.helpers import run_cli

    context = _context(tmp_path / "src", base_image)
    name = unique()
    build_json = {"source": path_source(context), "image": f"{name}:env",
                  "parent_registry": registry.address, "target_registries": [registry.address]}
    results_file = tmp_path / "results.json"
    done = run_cli(["inside-build", "--input", "env", "--input-arg", "env_name=MY_BUILD",
                    "--results-file", str(results_file), "--substitute", "use_cache=false"],
                   env={"MY_BUILD": json.dumps(build_json)})
    assert done.returncode == 0, done.stderr
    data = json.loads(results_file.read_text())
    assert data["failed"] is False
    assert data["digests"][registry.address][f"{registry.address}/{name}:env"]

    repo = git_repo(tmp_path / "repo", f"FROM {base_image.repo}\nLABEL from=osv3\n")
    plugins = {"prebuild_plugins": [{"name": "pull_base_image",
                                     "args": {"parent_registry": registry.address}}]}
    build = {"spec": {"source": {"git": {"uri": "https://unused.invalid/x.git"}},
                      "output": {"to": {"name": "unused:1"}}}}
    results_file = tmp_path / "osv3.json"
    done = run_cli(["inside-build", "--input-arg", f"results={results_file}"],
                   env={"BUILD": json.dumps(build), "SOURCE_URI": f"file://{repo}",
                        "SOURCE_REF": "main", "OUTPUT_IMAGE": f"{name}:osv3",
                        "OUTPUT_REGISTRY": registry.address,
                        "ATOMIC_REACTOR_PLUGINS": json.dumps(plugins)})
    assert done.returncode == 0, done.stderr
    assert "input osv3" in done.stderr
    data = json.loads(results_file.read_text())
    assert data["digests"][registry.address][f"{registry.address}/{name}:osv3"]


# -- bad input and failures ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["hostdocker", "privileged"])
def test_build_image_that_does_not_exist(
        method: str, tmp_path: Path, base_image: BaseImage, engine: docker.APIClient,
        private_tmp: Path) -> None:
    missing = f"{unique('no-such-build-image')}:1"
    with pytest.raises(InputError, match=f"build image {missing} does not exist"):
        BUILDERS[method](missing, path_source(_context(tmp_path / "src", base_image)),
                         unique())
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


@pytest.mark.parametrize("method", ["hostdocker", "privileged"])
def test_build_image_without_atomic_reactor(
        method: str, tmp_path: Path, base_image: BaseImage, engine: docker.APIClient,
        private_tmp: Path) -> None:
    with pytest.raises(InputError, match=f"build image {base_image.local} has no "
                                         "atomic-reactor"):
        BUILDERS[method](base_image.local, path_source(_context(tmp_path / "src", base_image)),
                         unique())
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def _derived_image(engine: docker.APIClient, tmp_path: Path, base: str, lines: str,
                   engine_cleanup: EngineTracker) -> str:
    tag = f"{unique('derived-build-image')}:1"
    write_context(tmp_path / "derived", f"FROM {base}\n{lines}\n")
    for _ in engine.build(path=str(tmp_path / "derived"), tag=tag, rm=True, forcerm=True,
                          decode=True, pull=False):
        pass
    engine.inspect_image(tag)
    engine_cleanup.track_image(tag)
    return tag


def test_privileged_entrypoint_without_atomic_reactor_exits_127(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        engine: docker.APIClient, engine_cleanup: EngineTracker, private_tmp: Path) -> None:
    image = _derived_image(engine, tmp_path, privileged_build_image.image,
                           "RUN rm /usr/local/bin/atomic-reactor", engine_cleanup)
    results = build_image_in_privileged_container(
        image, path_source(_context(tmp_path / "src", base_image)), unique())
    assert results.is_failed() and results.return_code == 127
    with pytest.raises(InputError, match=f"build image {image} has no atomic-reactor "
                                         r"\(exit 127\)"):
        results.raise_for_status()
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_build_json_the_container_cannot_read(
        hostdocker_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        engine: docker.APIClient, engine_cleanup: EngineTracker, private_tmp: Path) -> None:
    # the build container runs as nobody: the shared directory (0700, root) is closed to it
    image = _derived_image(engine, tmp_path, hostdocker_build_image.image, "USER nobody",
                           engine_cleanup)
    results = build_image_using_hosts_docker(
        image, path_source(_context(tmp_path / "src", base_image)), unique())
    assert results.is_failed() and results.return_code == 2
    with pytest.raises(InputError) as info:
        results.raise_for_status()
    message = str(info.value)
    assert "the build container exited with 2 and wrote no results" in message
    assert "cannot read build json /run/share/build.json" in message
    assert info.value.exit_code == 2
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_killed_build_container(
        hostdocker_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, private_tmp: Path) -> None:
    context = _context(tmp_path / "src", base_image, "RUN sleep 300")
    outcome: dict[str, Any] = {}

    def build() -> None:
        try:
            outcome["results"] = build_image_using_hosts_docker(
                hostdocker_build_image.image, path_source(context), unique(),
                parent_registry=registry.address)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=build)
    worker.start()
    try:
        container = _wait_for(lambda: [c for c in _build_containers(engine)
                                       if c["State"] == "running"], "the build container")
        # the RUN step is running in the host's engine: kill the build container mid-build
        _wait_for(lambda: any("sleep 300" in str(c.get("Command"))
                              for c in engine.containers()), "the RUN step")
        engine.kill(container[0]["Id"])
    finally:
        worker.join(timeout=_DEADLINE)
    assert "error" not in outcome, outcome.get("error")
    results: BuildResults = outcome["results"]
    assert results.is_failed() and results.return_code == 137
    with pytest.raises(EngineError, match=r"the build container was killed by SIGKILL "
                                          r"\(exit 137\) and wrote no results"):
        results.raise_for_status()
    assert results.exit_code == 6
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_hostdocker_without_engine_socket(
        tmp_path: Path, base_image: BaseImage, engine: docker.APIClient, private_tmp: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.helpers import run_cli

    missing = tmp_path / "no-engine" / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
    with pytest.raises(EngineUnavailable, match=f"{missing} does not exist"):
        build_image_using_hosts_docker("any-build-image:1",
                                       path_source(_context(tmp_path / "src", base_image)),
                                       unique())
    done = run_cli(["build", "path", "--uri", str(tmp_path / "src"), "--image", unique(),
                    "--method", "hostdocker", "--build-image", "any-build-image:1"],
                   env={"DOCKER_HOST": f"unix://{missing}", "TMPDIR": str(private_tmp)})
    assert done.returncode == 6, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("atomic-reactor: error: ")
    assert str(missing) in done.stderr and "Traceback" not in done.stderr
    assert _leftovers(private_tmp) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cancelled_build_removes_the_build_container(
        signum: int, hostdocker_build_image: BuildImageInfo, tmp_path: Path,
        base_image: BaseImage, registry: Registry, engine: docker.APIClient) -> None:
    context = _context(tmp_path / "src", base_image, "RUN sleep 300")
    metadata = tmp_path / "metadata.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "atomic_reactor", "build", "path", "--uri", str(context),
         "--image", unique(), "--method", "hostdocker",
         "--build-image", hostdocker_build_image.image, "--metadata-file", str(metadata),
         "--source-registry", registry.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp)})
    try:
        _wait_for(lambda: any("sleep 300" in str(c.get("Command"))
                              for c in engine.containers()), "the RUN step")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=_DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert stderr.strip().splitlines()[-1] == f"atomic-reactor: error: build cancelled by {name}"
    assert "Traceback" not in stderr
    # the build inside was cancelled too, ran its exit plugins and wrote its results
    data = json.loads(metadata.read_text())
    assert data["error"]["type"] == "BuildCancelled"
    assert _build_containers(engine) == []
    assert _leftovers(tmp) == []


def test_create_build_image_from_a_tarball(
        debian_base: str, tmp_path: Path, engine: docker.APIClient,
        engine_cleanup: EngineTracker) -> None:
    import tarfile

    from tests.integration.helpers import run_cli

    # an sdist-like tarball of this checkout: the project at the top of one directory
    tarball = tmp_path / "atomic-reactor-1.6.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in ("pyproject.toml", "README.md", "src"):
            tar.add(REPO_ROOT / name, arcname=f"atomic-reactor-1.6.0/{name}",
                    filter=lambda info: None if "__pycache__" in info.name
                    or ".egg-info" in info.name else info)
    image = f"{unique('build-image')}:1"
    engine_cleanup.track_image(image)
    done = run_cli(["create-build-image", str(REPO_ROOT / "images/dockerhost-builder"), image,
                    "--reactor-tarball-path", str(tarball), "--use-cache",
                    "--base-image", "atomic-reactor-test/debian:bookworm-minbase"],
                   timeout=900)
    assert done.returncode == 0, done.stderr
    assert f"built {image} sha256:" in done.stdout
    labels = engine.inspect_image(image)["Config"]["Labels"]
    assert labels["io.atomic-reactor.build-image.digest"].startswith("sha256:")
    container = engine.create_container(image, command=["atomic-reactor", "--version"])
    try:
        engine.start(container)
        assert engine.wait(container)["StatusCode"] == 0
        assert b"atomic-reactor 1.6.0" in engine.logs(container)
    finally:
        engine.remove_container(container, force=True)


def test_create_build_image_bad_input(tmp_path: Path) -> None:
    from tests.integration.helpers import run_cli

    done = run_cli(["create-build-image", str(tmp_path / "nothing"), "x:1"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        f"atomic-reactor: error: {tmp_path / 'nothing'} has no Dockerfile"
    done = run_cli(["create-build-image", str(REPO_ROOT / "images/dockerhost-builder"), "x:1",
                    "--reactor-tarball-path", str(tmp_path / "missing.tar.gz")])
    assert done.returncode == 2
    assert "missing.tar.gz does not exist" in done.stderr
    done = run_cli(["create-build-image", str(REPO_ROOT / "images/dockerhost-builder"), "x:1",
                    "--reactor-local-path", str(tmp_path)])
    assert done.returncode == 2
    assert "is not an atomic-reactor checkout" in done.stderr


@pytest.mark.parametrize("method", ["hostdocker", "privileged"])
def test_build_container_gets_credentials_and_masks_secrets(
        method: str, hostdocker_build_image: BuildImageInfo,
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, auth_registry: Registry, docker_config: Path, private_tmp: Path,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the host would use reach the container; its output masks them."""
    from atomic_reactor import _secrets

    build_image = hostdocker_build_image if method == "hostdocker" else privileged_build_image
    assert auth_registry.password is not None
    _secrets.register_secret(auth_registry.password)
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    caplog.set_level(logging.DEBUG, logger="atomic_reactor")
    context = _context(tmp_path / "src", base_image,
                       f"RUN echo leaked={auth_registry.password}")
    name = unique()
    results = BUILDERS[method](build_image.image, path_source(context), f"{name}:1",
                               parent_registry=registry.address,
                               target_registries=[auth_registry.address])
    results.raise_for_status()
    pushed = results.digests[auth_registry.address][f"{auth_registry.address}/{name}:1"]
    assert pushed.startswith("sha256:")
    assert auth_registry.password not in results.to_json()
    assert any("leaked=***" in r.getMessage() for r in caplog.records)
    assert not any(auth_registry.password in r.getMessage() for r in caplog.records)
    assert _leftovers(private_tmp) == []
