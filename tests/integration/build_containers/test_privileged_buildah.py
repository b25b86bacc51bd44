"""``--method privileged --engine buildah``, for real: buildah in the build container.

The build container is made from the privileged build image (``conftest.py``), run by
the host's docker engine with no socket and no nested daemon; buildah inside pulls the
base from the test registry (through the loopback relay), builds, and the image is
pushed to the registry. Checked: the results and metadata read back, the digest the
registry serves, and that nothing is left in the host's docker (containers, images,
the container's storage volumes) or buildah storage.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from atomic_reactor._buildcontainer import run as _container_build
from atomic_reactor._buildcontainer.run import CONTAINER_LABEL
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_in_privileged_container
from atomic_reactor.errors import EngineError
from tests.integration.build_containers.conftest import BuildImageInfo
from tests.integration.helpers import path_source, run_cli, unique, write_context
from tests.support.buildah_env import buildah, buildah_available, buildah_lock
from tests.support.env import BaseImage, EngineTracker, Registry

pytestmark = pytest.mark.skipif(not buildah_available(), reason="buildah is not installed")


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "atomic-reactor-locks")


def _build_containers(engine: docker.APIClient) -> list[dict[str, Any]]:
    return list(engine.containers(all=True, filters={"label": CONTAINER_LABEL}) or [])


def _buildah_state() -> tuple[set[str], set[str]]:
    """The ids of the images and containers in the host's buildah storage."""
    images = json.loads(buildah("images", "--all", "--json", "--no-trunc") or "null") or []
    containers = json.loads(buildah("containers", "--all", "--json") or "null") or []
    return {str(i["id"]) for i in images}, {str(c["id"]) for c in containers}


@dataclass
class _Watch:
    """The build container of one image as it runs: its mounts (volumes, binds)."""

    image: str
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    environment: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, engine: docker.APIClient) -> None:
        while not self.stop.is_set():
            for entry in engine.containers(all=True, filters={
                    "label": f"io.atomic-reactor.image={self.image}"}) or []:
                try:
                    info = engine.inspect_container(entry["Id"])
                except docker.errors.NotFound:
                    continue
                for mount in info.get("Mounts") or []:
                    self.mounts[mount["Destination"]] = mount
                self.environment = list(info["Config"].get("Env") or [])
            self.stop.wait(0.1)


@pytest.fixture
def host_storage(engine: docker.APIClient) -> Iterator[None]:
    """Hold the host's buildah storage still (its lock) and check that a test leaves
    it as it was."""
    with buildah_lock():
        before = _buildah_state()
        yield
        assert _buildah_state() == before


def _watching(engine: docker.APIClient, image: str) -> tuple[_Watch, threading.Thread]:
    watch = _Watch(image)
    thread = threading.Thread(target=watch.run, args=(engine,), daemon=True)
    thread.start()
    return watch, thread


def _check_storage_volume(engine: docker.APIClient, watch: _Watch) -> None:
    """buildah kept its storage on the container's own volume, which went with it."""
    storage = watch.mounts.get("/var/lib/containers")
    assert storage is not None and storage["Type"] == "volume", watch.mounts
    assert "/var/run/docker.sock" not in watch.mounts  # no socket of the host's
    for mount in watch.mounts.values():
        if mount["Type"] == "volume":
            with pytest.raises(docker.errors.NotFound):
                engine.inspect_volume(mount["Name"])
    assert "ATOMIC_REACTOR_ENGINE=buildah" in watch.environment


def _context(directory: Path, base_image: BaseImage, extra: str = "") -> Path:
    return write_context(directory, f"""
        FROM {base_image.repo}
        RUN echo hello > /hello && cat /hello
        LABEL example=privileged-buildah
        {extra}
        """, files={"data.txt": "some data\n"})


def test_privileged_buildah_builds_and_pushes(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, private_tmp: Path,
        host_storage: None, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    context = _context(tmp_path / "src", base_image)
    name = unique("privileged-buildah")
    monkeypatch.setattr(_container_build, "_PRIVILEGED_REFUSED", set())
    caplog.set_level(logging.INFO, logger="atomic_reactor")
    watch, thread = _watching(engine, f"{name}:1")
    try:
        results = build_image_in_privileged_container(
            privileged_build_image.image, path_source(context), f"{name}:1",
            parent_registry=registry.address, target_registries=[registry.address],
            engine="buildah")
    finally:
        watch.stop.set()
        thread.join()
    assert results.error is None, results.error
    results.raise_for_status()
    assert results.return_code == 0 and results.container_id
    assert results.engine == "buildah"
    assert results.image == f"{name}:1"
    assert results.image_id and results.image_id.startswith("sha256:")
    assert results.built_img_inspect is not None
    assert results.built_img_inspect["Config"]["Labels"]["example"] == "privileged-buildah"
    # the digest the registry serves, and the image behind it is the one built
    reference = f"{registry.address}/{name}:1"
    digest = results.digests[registry.address][reference]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name, "1") == digest
        manifest, _ = client.get_manifest(name, digest)
        config = json.loads(client.get_blob(name, manifest["config"]["digest"]))
    assert manifest["config"]["digest"] == results.image_id
    assert config["config"]["Labels"]["example"] == "privileged-buildah"
    assert len(manifest["layers"]) == 2  # the base's and the RUN step's
    # the base came from the registry, pulled by buildah in the container
    base_repo, _, base_tag = base_image.repo.partition(":")
    with RegistryClient(registry.address) as client:
        base_digest = client.get_manifest_digest(base_repo, base_tag or "latest")
    assert results.base_plugins_output["pull_base_image"][0]["digest"] == base_digest
    assert results.plugins_errors == {}
    # buildah's output streamed live as build output, and is in the log file
    output = [r.getMessage() for r in caplog.records if r.name == "atomic_reactor.build.output"]
    assert any("STEP 2/3: RUN echo hello > /hello" in line for line in output), output[-20:]
    assert any(line.strip() == "hello" for line in output)
    assert results.log_file and "STEP 2/3: RUN" in Path(results.log_file).read_text()
    assert any("engine buildah" in r.getMessage() for r in caplog.records)
    # nothing left behind: not in the host's docker (the image lived only in the build
    # container's buildah storage), nor in the host's buildah storage (host_storage)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.inspect_image(f"{name}:1")
    _check_storage_volume(engine, watch)
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_cli_build_json_privileged_buildah_with_a_secret(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, host_storage: None) -> None:
    """The CLI with a build json naming the engine; a ``--secret`` file of the host
    reaches ``RUN --mount=type=secret`` inside and is printed nowhere."""
    secret = "never-" + unique("shown")
    (tmp_path / "token").write_text(secret)
    context = _context(tmp_path / "src", base_image,
                       "RUN --mount=type=secret,id=tok echo secret-bytes-$(wc -c < "
                       "/run/secrets/tok)")
    name = unique("privileged-buildah")
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "method": "privileged", "build_image": privileged_build_image.image,
        "engine": "buildah", "source": path_source(context), "image": f"{name}:1",
        "parent_registry": registry.address, "target_registries": [registry.address],
        "secrets": [{"id": "tok", "src": str(tmp_path / "token")}],
    }))
    metadata = tmp_path / "metadata.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    watch, thread = _watching(engine, f"{name}:1")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "atomic_reactor", "build", "json", str(build_json),
             "--metadata-file", str(metadata)],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "TMPDIR": str(tmp)})
    finally:
        watch.stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert f"secret-bytes-{len(secret)}" in done.stderr
    assert f"pushed {registry.address}/{name}:1@sha256:" in done.stdout
    data = json.loads(metadata.read_text())
    assert data["failed"] is False and data["container_id"] and data["engine"] == "buildah"
    digest = data["digests"][registry.address][f"{registry.address}/{name}:1"]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name, "1") == digest
    for text in (done.stdout, done.stderr, metadata.read_text()):
        assert secret not in text
    with pytest.raises(docker.errors.ImageNotFound):
        engine.inspect_image(f"{name}:1")
    _check_storage_volume(engine, watch)
    assert _build_containers(engine) == []
    assert _leftovers(tmp) == []


def test_cli_keeps_the_build_container_and_pushes_the_buildroot(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, private_tmp: Path,
        host_storage: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--keep-build-container`` and ``--push-buildroot-to`` with ``--engine buildah``:
    the build container stays (stopped, with the storage volume buildah built in), its
    root file system is committed and pushed (not its storage volume), and neither the
    committed build root nor the built image is left in the host's docker."""
    context = _context(tmp_path / "src", base_image)
    name = unique("privileged-buildah")
    repository = f"{registry.address}/{unique('buildroot')}"
    metadata = tmp_path / "metadata.json"
    watch, thread = _watching(engine, f"{name}:1")
    try:
        done = run_cli(["build", "path", "--uri", str(context), "--image", f"{name}:1",
                        "--method", "privileged", "--build-image",
                        privileged_build_image.image, "--engine", "buildah",
                        "--source-registry", registry.address,
                        "--target-registries", registry.address,
                        "--push-buildroot-to", repository, "--keep-build-container",
                        "--metadata-file", str(metadata)], env={"TMPDIR": str(private_tmp)})
    finally:
        watch.stop.set()
        thread.join()
    data = json.loads(metadata.read_text()) if metadata.exists() else {}
    container_id = data.get("container_id")
    try:
        assert done.returncode == 0, done.stderr
        assert data["engine"] == "buildah" and container_id
        # kept: stopped, exit 0, with its buildah storage volume
        kept = engine.inspect_container(container_id)
        assert kept["State"]["Running"] is False and kept["State"]["ExitCode"] == 0
        storage = [m for m in kept["Mounts"] if m["Destination"] == "/var/lib/containers"]
        assert [m["Type"] for m in storage] == ["volume"], kept["Mounts"]
        engine.inspect_volume(storage[0]["Name"])  # still there
        assert f"kept the build container {container_id[:12]}" in done.stderr
        # the image built inside was pushed
        digest = data["digests"][registry.address][f"{registry.address}/{name}:1"]
        with RegistryClient(registry.address) as client:
            assert client.get_manifest_digest(name, "1") == digest
        # the build root: that container's file system, in the registry
        buildroot = data["buildroot"]
        assert "error" not in buildroot, buildroot
        assert buildroot["image"].startswith(f"{repository}:")
        repo = repository.split("/", 1)[1]
        tag = buildroot["image"].rsplit(":", 1)[1]
        with RegistryClient(registry.address) as client:
            assert client.get_manifest_digest(repo, tag) == buildroot["digest"]
            manifest, _ = client.get_manifest(repo, buildroot["digest"])
            config = json.loads(client.get_blob(repo, manifest["config"]["digest"]))
        assert "ATOMIC_REACTOR_ENGINE=buildah" in config["config"]["Env"]
        assert manifest["config"]["digest"] == buildroot["image_id"]
        # not left in the host's docker: the committed build root, the built image
        assert not engine.images(name=repository)
        with pytest.raises(docker.errors.ImageNotFound):
            engine.inspect_image(buildroot["image_id"])
        with pytest.raises(docker.errors.ImageNotFound):
            engine.inspect_image(f"{name}:1")
    finally:
        if container_id:
            engine.remove_container(container_id, force=True, v=True)
    _check_storage_volume(engine, watch)  # gone with the container
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_hostdocker_with_buildah_is_refused(tmp_path: Path, base_image: BaseImage,
                                            engine: docker.APIClient, private_tmp: Path,
                                            host_storage: None) -> None:
    context = _context(tmp_path / "src", base_image)
    done = run_cli(["build", "path", "--uri", str(context), "--image", unique(),
                    "--method", "hostdocker", "--build-image", "any-build-image:1",
                    "--engine", "buildah"], env={"TMPDIR": str(private_tmp)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("atomic-reactor: error: --method hostdocker --engine buildah "
                               "is not supported")
    assert "--method privileged" in lines[0]
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_build_image_without_buildah(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        engine: docker.APIClient, engine_cleanup: EngineTracker, private_tmp: Path,
        host_storage: None) -> None:
    tag = f"{unique('no-buildah-build-image')}:1"
    write_context(tmp_path / "derived",
                  f"FROM {privileged_build_image.image}\nRUN rm /usr/bin/buildah\n")
    for _ in engine.build(path=str(tmp_path / "derived"), tag=tag, rm=True, forcerm=True,
                          decode=True, pull=False):
        pass
    engine_cleanup.track_image(tag)
    results = build_image_in_privileged_container(
        tag, path_source(_context(tmp_path / "src", base_image)), unique(), engine="buildah")
    assert results.is_failed() and results.return_code == 6
    with pytest.raises(EngineError, match="buildah is not installed in this build image"):
        results.raise_for_status()
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_cancelled_privileged_buildah_build(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, host_storage: None) -> None:
    """SIGTERM to the CLI (``--engine buildah`` flag) mid-RUN: buildah in the container
    ends, the build inside runs its exit plugins and writes results, nothing stays."""
    marker = unique("started")
    # the echoed line, not the command buildah shows first, has the marker whole
    half = len(marker) // 2
    context = _context(tmp_path / "src", base_image,
                       f"RUN echo {marker[:half]}''{marker[half:]} && sleep 300")
    name = unique("privileged-buildah")
    metadata = tmp_path / "metadata.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    watch, thread = _watching(engine, f"{name}:1")
    process = subprocess.Popen(
        [sys.executable, "-m", "atomic_reactor", "build", "path", "--uri", str(context),
         "--image", f"{name}:1", "--method", "privileged", "--engine", "buildah",
         "--build-image", privileged_build_image.image, "--metadata-file", str(metadata),
         "--source-registry", registry.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp)})
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if marker in line:  # the RUN step runs, in buildah in the container
                break
        assert lines and marker in lines[-1], "".join(lines)
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        watch.stop.set()
        thread.join()
    stderr = "".join(lines) + rest
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == "atomic-reactor: error: build cancelled by SIGTERM"
    assert "Traceback" not in stderr
    # the build inside was cancelled too, ran its exit plugins and wrote its results
    data = json.loads(metadata.read_text())
    assert data["error"]["type"] == "BuildCancelled", data["error"]
    assert data["engine"] == "buildah"
    _check_storage_volume(engine, watch)
    assert _build_containers(engine) == []
    assert _leftovers(tmp) == []


def test_privileged_buildah_gets_credentials_and_masks_secrets(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, auth_registry: Registry, docker_config: Path, private_tmp: Path,
        engine: docker.APIClient, host_storage: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's credentials for a registry needing auth reach buildah's push inside;
    the build's output masks them."""
    from atomic_reactor import _secrets

    assert auth_registry.password is not None
    _secrets.register_secret(auth_registry.password)
    caplog.set_level(logging.INFO, logger="atomic_reactor")
    context = _context(tmp_path / "src", base_image, f"RUN echo leaked={auth_registry.password}")
    name = unique("privileged-buildah")
    results = build_image_in_privileged_container(
        privileged_build_image.image, path_source(context), f"{name}:1",
        parent_registry=registry.address, target_registries=[auth_registry.address],
        engine="buildah", push_method="engine")
    results.raise_for_status()
    assert results.engine == "buildah"
    digest = results.digests[auth_registry.address][f"{auth_registry.address}/{name}:1"]
    with RegistryClient(auth_registry.address) as client:  # credentials from DOCKER_CONFIG
        assert client.get_manifest_digest(name, "1") == digest
    assert auth_registry.password not in results.to_json()
    assert any("leaked=***" in r.getMessage() for r in caplog.records)
    assert not any(auth_registry.password in r.getMessage() for r in caplog.records)
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []


def test_storage_driver_from_the_build_image(
        privileged_build_image: BuildImageInfo, tmp_path: Path, base_image: BaseImage,
        registry: Registry, engine: docker.APIClient, engine_cleanup: EngineTracker,
        private_tmp: Path, host_storage: None) -> None:
    """``ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER=vfs`` in a build image's environment: buildah
    in the container keeps its storage with vfs (seen in the kept container's volume)."""
    tag = f"{unique('vfs-build-image')}:1"
    write_context(tmp_path / "derived", f"FROM {privileged_build_image.image}\n"
                                        "ENV ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER=vfs\n")
    for _ in engine.build(path=str(tmp_path / "derived"), tag=tag, rm=True, forcerm=True,
                          decode=True, pull=False):
        pass
    engine_cleanup.track_image(tag)
    name = unique("privileged-buildah")
    results = build_image_in_privileged_container(
        tag, path_source(_context(tmp_path / "src", base_image)), f"{name}:1",
        parent_registry=registry.address, target_registries=[registry.address],
        engine="buildah", keep_build_container=True)
    assert results.container_id is not None
    mounts: dict[str, dict[str, Any]] = {}
    try:
        results.raise_for_status()
        mounts = {m["Destination"]: m
                  for m in engine.inspect_container(results.container_id)["Mounts"]}
        storage = Path(mounts["/var/lib/containers"]["Source"], "storage")
        assert (storage / "vfs").is_dir() and not (storage / "overlay").exists()
        with RegistryClient(registry.address) as client:
            assert client.get_manifest_digest(name, "1") == \
                results.digests[registry.address][f"{registry.address}/{name}:1"]
    finally:
        engine.remove_container(results.container_id, force=True, v=True)
    with pytest.raises(docker.errors.NotFound):
        engine.inspect_volume(mounts["/var/lib/containers"]["Name"])
    assert _build_containers(engine) == []


def test_privileged_buildah_builds_two_platforms(
        privileged_build_image: BuildImageInfo, tmp_path: Path, registry: Registry,
        engine: docker.APIClient, private_tmp: Path, host_storage: None) -> None:
    """``platforms`` through the build container: buildah inside builds both (arm64
    under the host's QEMU emulation) and the manifest list is pushed."""
    from tests.support.multiarch import (
        AMD64,
        ARM64,
        emulation_available,
        push_multiarch_base,
        read_image_file,
    )

    if not emulation_available(ARM64):
        pytest.fail("arm64 binaries cannot run here (binfmt_misc/QEMU: scripts/ensure-env.sh)",
                    pytrace=False)
    base = push_multiarch_base(registry, unique("multiarch-base"))
    context = write_context(tmp_path / "src", f"FROM {base.repository}:{base.tag}\n"
                                              "RUN uname -m > /arch\n")
    repo = unique("privileged-buildah-multiarch")
    results = build_image_in_privileged_container(
        privileged_build_image.image, path_source(context), f"{repo}:1",
        parent_registry=registry.address, target_registries=[registry.address],
        engine="buildah", platforms=["linux/amd64", "linux/arm64"])
    results.raise_for_status()
    assert [p.architecture for p in results.platforms] == ["amd64", "arm64"]
    [pushed_list] = results.manifest_lists
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(repo, "1") == pushed_list.digest
        for platform, machine in ((AMD64, "x86_64"), (ARM64, "aarch64")):
            arch, content = read_image_file(client, repo, "1", platform, "/arch")
            assert arch == platform.architecture
            assert content.decode().strip() == machine
    assert _build_containers(engine) == []
    assert _leftovers(private_tmp) == []
