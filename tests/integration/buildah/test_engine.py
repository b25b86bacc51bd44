"""The buildah backend against real buildah storage and real registries."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_reactor._engine.base import ContainerSpec, RegistryAuth
from atomic_reactor._engine.buildah import BuildahEngine
from atomic_reactor._engine.types import BuildOptions, BuildSecret, Platform, TransferOptions
from atomic_reactor.errors import (
    AuthenticationError,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullError,
    PushError,
)
from tests.integration.helpers import unique, write_context
from tests.support.buildah_env import BuildahTracker, image_names
from tests.support.env import BASE_IMAGE, BaseImage, Registry, start_registry

MODERN = """\
ARG BASE={base}
FROM --platform=$BUILDPLATFORM $BASE AS builder
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN --mount=type=cache,target=/cache echo "built on $BUILDPLATFORM for $TARGETPLATFORM" > /plat
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secretlen
RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp /mnt/data.txt /copied
FROM $BASE
COPY --from=builder /plat /copied /secretlen /out/
COPY --chmod=0750 tool.sh /usr/local/bin/tool
RUN ls /ctx 2>/dev/null; test ! -e /ignored.txt
COPY . /ctx
"""


@pytest.fixture
def buildah_engine() -> Iterator[BuildahEngine]:
    engine = BuildahEngine()
    yield engine
    engine.close()


def _messages(events: object) -> str:
    return "".join(getattr(event, "message", "") for event in events)  # type: ignore[attr-defined]


def _build(engine: BuildahEngine, context: Path, tag: str, **options: object) -> str:
    events = list(engine.build(str(context), tag, BuildOptions(**options)))  # type: ignore[arg-type]
    assert not [e for e in events if e.error], _messages(events)
    assert events[-1].image_id
    return events[-1].image_id


def test_modern_dockerfile_builds(buildah_engine: BuildahEngine, base_image: BaseImage,
                                  tmp_path: Path) -> None:
    secret_value = "s3cr3t-" + unique("v")
    secret = tmp_path / "token"
    secret.write_text(secret_value)
    context = write_context(tmp_path / "ctx", MODERN.format(base=BASE_IMAGE),
                            {"data.txt": "bound\n", "tool.sh": "#!/bin/sh\necho tool\n",
                             "ignored.txt": "no\n", ".dockerignore": "ignored.txt\n"})
    tag = f"localhost/ar-buildah-{unique()}:1"
    image_id = _build(buildah_engine, context, tag, labels={"vendor": "Example"},
                      secrets=(BuildSecret("token", src=str(secret)),))
    info = buildah_engine.image_info(tag)
    assert info.id == image_id
    assert tag.removeprefix("localhost/") in info.names
    assert info.labels["vendor"] == "Example"
    assert info.architecture == "amd64" and info.os == "linux"
    assert len(info.layers) >= 2
    inspect = buildah_engine.inspect_image(tag)
    assert inspect["Id"] == image_id and inspect["Config"]["Labels"]["vendor"] == "Example"
    assert inspect["RootFS"]["Layers"] == list(info.layers)

    # what the image holds, read through a container of it
    container = buildah_engine.create_container(ContainerSpec(
        image=tag, command=["sh", "-c", "cat /out/plat /out/copied /out/secretlen; stat -c %a "
                            "/usr/local/bin/tool; ls /ctx"]))
    try:
        buildah_engine.start_container(container)
        assert buildah_engine.wait_container(container, timeout=60) == 0
        output = "".join(buildah_engine.container_logs(container, follow=False))
    finally:
        buildah_engine.remove_container(container, force=True)
    assert "for linux/amd64" in output and "bound" in output and "750" in output
    assert "ignored.txt" not in output and "data.txt" in output  # .dockerignore honoured
    assert f"{len(secret_value)}\n" in output  # the secret was mounted

    # the secret's value is nowhere in the image (layers, config, history)
    archive = b"".join(buildah_engine.save_image(tag))
    assert secret_value.encode() not in archive
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None and member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(handle.read())) as layer:
                    for entry in layer.getmembers():
                        data = layer.extractfile(entry) if entry.isfile() else None
                        if data is not None:
                            assert secret_value.encode() not in data.read(), entry.name


def test_build_failure_is_an_error_event(buildah_engine: BuildahEngine, base_image: BaseImage,
                                         tmp_path: Path) -> None:
    context = write_context(tmp_path, f"FROM {BASE_IMAGE}\nRUN echo before && exit 7\n")
    before = BuildahTracker(exclusive=False).state().container_ids
    events = list(buildah_engine.build(str(context), f"ar-buildah-{unique()}:1",
                                       BuildOptions(use_cache=False)))
    assert "before\n" in [event.message for event in events]
    assert events[-1].error is not None and "exit status 7" in events[-1].error
    assert not any(event.image_id for event in events)
    assert BuildahTracker(exclusive=False).state().container_ids == before


@pytest.mark.parametrize("use_cache", [True, False])
def test_only_from_leaves_no_working_container(buildah_engine: BuildahEngine,
                                               base_image: BaseImage, tmp_path: Path,
                                               use_cache: bool) -> None:
    # buildah 1.28 keeps the working container of a stage with nothing after FROM
    context = write_context(tmp_path, f"FROM {BASE_IMAGE}\n")
    before = BuildahTracker(exclusive=False).state().container_ids
    image_id = _build(buildah_engine, context, f"ar-buildah-{unique()}:1", use_cache=use_cache)
    assert image_id == f"sha256:{base_image.image_id.removeprefix('sha256:')}"
    assert BuildahTracker(exclusive=False).state().container_ids == before


@pytest.mark.parametrize("dockerfile", [
    # a FROM-only stage that a later stage copies from: buildah keeps its container
    f"FROM {BASE_IMAGE} AS one\nFROM {BASE_IMAGE}\nCOPY --from=one /bin/true /t\n",
    # no FROM-only stage: buildah removes its containers itself (no listing is asked)
    f"FROM {BASE_IMAGE}\nRUN echo one > /one\n",
])
def test_a_multi_step_build_leaves_no_working_container(buildah_engine: BuildahEngine,
                                                        base_image: BaseImage,
                                                        tmp_path: Path,
                                                        dockerfile: str) -> None:
    del base_image
    context = write_context(tmp_path, dockerfile)
    before = BuildahTracker(exclusive=False).state().container_ids
    image_id = _build(buildah_engine, context, f"ar-buildah-{unique()}:1", use_cache=True)
    assert image_id.startswith("sha256:")
    assert BuildahTracker(exclusive=False).state().container_ids == before


def test_a_slow_reader_gets_all_of_a_long_run_output(buildah_engine: BuildahEngine,
                                                     base_image: BaseImage,
                                                     tmp_path: Path) -> None:
    # buildah 1.28 (chroot) dropped the tail of a RUN step's output when its writes
    # blocked on a full pipe: a reader slower than the step lost the last lines
    marker = unique("slow")
    lines = 30_000
    context = write_context(tmp_path, f"FROM {BASE_IMAGE}\n"
                                      f"RUN i=0; while [ $i -lt {lines} ]; do "
                                      f"echo \"{marker} $i {'x' * 60}\"; i=$((i+1)); done\n")
    seen: list[str] = []
    for event in buildah_engine.build(str(context), f"ar-buildah-{unique()}:1",
                                      BuildOptions(use_cache=False)):
        assert not event.error, event.error
        if event.message.startswith(marker) and not (seen and seen[-1].startswith(marker)):
            time.sleep(3)  # the step goes on writing (and ends) while nobody reads
        seen.append(event.message)
    text = "".join(seen)
    numbers = [int(line.split()[1]) for line in text.splitlines() if line.startswith(marker)]
    assert numbers == list(range(lines))
    assert all(line.endswith("x" * 60) for line in text.splitlines() if line.startswith(marker))


def test_missing_target_and_base(buildah_engine: BuildahEngine, base_image: BaseImage,
                                 tmp_path: Path) -> None:
    context = write_context(tmp_path, f"FROM {BASE_IMAGE} AS one\nRUN true\n")
    events = list(buildah_engine.build(str(context), f"ar-buildah-{unique()}:1",
                                       BuildOptions(target="nosuch")))
    assert events[-1].error is not None and "nosuch" in events[-1].error


def test_cancel_ends_build_and_removes_working_containers(
        buildah_engine: BuildahEngine, base_image: BaseImage, tmp_path: Path) -> None:
    marker = unique("sleep-marker")
    context = write_context(tmp_path, f"FROM {BASE_IMAGE}\n"
                                      f"RUN echo started-{marker} && sleep 300 # {marker}\n")
    before = BuildahTracker(exclusive=False).state().container_ids
    events = buildah_engine.build(str(context), f"ar-buildah-{unique()}:1",
                                  BuildOptions(use_cache=False))
    for event in events:
        if event.message.strip() == f"started-{marker}":
            break
    started = time.monotonic()
    events.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 12
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True,
                        check=False).stdout
    assert marker not in ps
    assert BuildahTracker(exclusive=False).state().container_ids == before


def test_concurrent_builds_do_not_see_each_other(
        buildah_engine: BuildahEngine, base_image: BaseImage, tmp_path: Path) -> None:
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def build(index: int) -> None:
        context = write_context(tmp_path / str(index),
                                f"FROM {BASE_IMAGE}\nRUN echo {index} > /which && sleep 1\n")
        try:
            tag = f"ar-buildah-{unique()}:{index}"
            results[tag] = _build(buildah_engine, context, tag, use_cache=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results.values())) == 2
    for tag, image_id in results.items():
        assert buildah_engine.image_info(tag).id == image_id


def _manifest_digest(registry: Registry, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    if registry.basic_auth:
        import base64
        token = base64.b64encode(":".join(registry.basic_auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def _manifest_size(registry: Registry, repository: str, tag: str) -> int:
    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    if registry.basic_auth:
        import base64
        token = base64.b64encode(":".join(registry.basic_auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return len(response.read())


def test_pull_reports_the_digest_the_registry_serves(buildah_engine: BuildahEngine,
                                                     base_image: BaseImage) -> None:
    # read over plain HTTP beside the pull (a loopback registry, no credentials)
    events = list(buildah_engine.pull(base_image.pushed, None, TransferOptions()))
    repository, _, tag = base_image.repo.rpartition(":")
    assert events[-1].digest == _manifest_digest(base_image.registry, repository, tag)


def test_push_pull_with_credentials(buildah_engine: BuildahEngine, base_image: BaseImage,
                                    auth_registry: Registry, tmp_path: Path) -> None:
    assert auth_registry.username and auth_registry.password
    repository = f"ar-buildah/{unique()}"
    reference = f"{auth_registry.address}/{repository}:1"
    buildah_engine.tag(BASE_IMAGE, reference)
    with pytest.raises(AuthenticationError) as refused:
        list(buildah_engine.push(reference, None, TransferOptions(insecure=True)))
    assert refused.value.registry == auth_registry.address
    auth = RegistryAuth(auth_registry.username, auth_registry.password, auth_registry.address)
    events = list(buildah_engine.push(reference, auth, TransferOptions(insecure=True)))
    digest = events[-1].digest
    assert digest == _manifest_digest(auth_registry, repository, "1")
    # the size is read with the push's credentials (the registry client's path)
    assert events[-1].size == _manifest_size(auth_registry, repository, "1")
    assert any(event.status == "Pushed" for event in events)
    assert f"{auth_registry.address}/{repository}@{digest}" in \
        buildah_engine.image_info(reference).digests
    buildah_engine.remove_image(reference)
    assert not buildah_engine.image_exists(reference)
    list(buildah_engine.pull(reference, auth, TransferOptions(insecure=True)))
    assert buildah_engine.image_info(reference).id == base_image.image_id
    with pytest.raises(PullError):
        list(buildah_engine.pull(f"{auth_registry.address}/{repository}:nosuch", auth,
                                 TransferOptions(insecure=True)))


def test_tls_verify_off_only_when_insecure(buildah_engine: BuildahEngine,
                                           base_image: BaseImage, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")  # no registry marked insecure
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    running = start_registry(tmp_path / "plain")
    try:
        reference = f"{running.registry.address}/ar-buildah/{unique()}:1"
        buildah_engine.tag(BASE_IMAGE, reference)
        with pytest.raises(PushError, match="HTTP response to HTTPS client"):
            list(buildah_engine.push(reference, None, TransferOptions()))
        events = list(buildah_engine.push(reference, None, TransferOptions(insecure=True)))
        assert events[-1].digest
    finally:
        running.stop()


@pytest.mark.parametrize("archive_format", ["docker-archive", "oci-archive"])
def test_save_and_load(buildah_engine: BuildahEngine, base_image: BaseImage,
                       archive_format: str) -> None:
    name = f"ar-buildah-{unique()}:1"
    buildah_engine.tag(BASE_IMAGE, name)
    data = b"".join(buildah_engine.save_image(name, archive_format))  # type: ignore[arg-type]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert ("manifest.json" in names) == (archive_format == "docker-archive")
    buildah_engine.remove_image(name)
    loaded = buildah_engine.load_image(iter([data[:1000], data[1000:]]))
    if archive_format == "docker-archive":
        assert loaded == [name]
        assert buildah_engine.image_info(name).id == base_image.image_id
        assert not [n for n in image_names() if n.startswith("docker.io/ar-buildah-")]
    else:
        assert loaded


def test_containers(buildah_engine: BuildahEngine, base_image: BaseImage) -> None:
    spec = ContainerSpec(image=BASE_IMAGE, command=["sh", "-c", "echo out; echo err >&2; "
                                                    "echo $GREETING; exit 3"],
                         environment={"GREETING": "hi"}, user="0")
    container = buildah_engine.create_container(spec)
    try:
        assert buildah_engine.container_state(container).status == "created"
        buildah_engine.start_container(container)
        assert buildah_engine.wait_container(container, timeout=60) == 3
        state = buildah_engine.container_state(container)
        assert (state.status, state.exit_code) == ("exited", 3)
        assert state.started_at and state.finished_at
        assert list(buildah_engine.container_logs(container, stderr=False, follow=False)) == \
            ["out\n", "hi\n"]
        assert sorted(buildah_engine.container_logs(container)) == ["err\n", "hi\n", "out\n"]
        assert buildah_engine.inspect_container(container)["State"]["ExitCode"] == 3
        committed = buildah_engine.commit_container(
            container, f"ar-buildah-{unique()}", "1", changes=['CMD ["/bin/true"]'])
        assert buildah_engine.image_info(committed).cmd == ("/bin/true",)
        with tarfile.open(fileobj=io.BytesIO(b"".join(
                buildah_engine.export_container(container)))) as tar:
            assert "./bin/busybox" in tar.getnames()
    finally:
        buildah_engine.remove_container(container, force=True)
    with pytest.raises(EngineError):
        buildah_engine.container_state(container)


def test_missing_executable_and_stop(buildah_engine: BuildahEngine,
                                     base_image: BaseImage) -> None:
    missing = buildah_engine.create_container(ContainerSpec(image=BASE_IMAGE,
                                                            entrypoint=["rpm-nosuch"]))
    try:
        with pytest.raises(EngineError, match="executable file not found"):
            buildah_engine.start_container(missing)
    finally:
        buildah_engine.remove_container(missing, force=True)
    sleeper = buildah_engine.create_container(ContainerSpec(image=BASE_IMAGE,
                                                            command=["sleep", "300"]))
    try:
        buildah_engine.start_container(sleeper)
        assert buildah_engine.container_state(sleeper).running
        with pytest.raises(EngineError, match="timed out"):
            buildah_engine.wait_container(sleeper, timeout=0.5)
        started = time.monotonic()
        buildah_engine.stop_container(sleeper, timeout=2)
        assert time.monotonic() - started < 10
        assert buildah_engine.container_state(sleeper).status == "exited"
    finally:
        buildah_engine.remove_container(sleeper, force=True)


def test_errors_are_the_projects_own(buildah_engine: BuildahEngine, base_image: BaseImage
                                     ) -> None:
    with pytest.raises(ImageNotFound):
        buildah_engine.image_info(f"ar-buildah-{unique()}:nosuch")
    assert not buildah_engine.image_exists(f"ar-buildah-{unique()}:nosuch")
    with pytest.raises(ImageNotFound):
        buildah_engine.remove_image(f"ar-buildah-{unique()}:nosuch")
    assert buildah_engine.version()["Version"]
    assert buildah_engine.info()["Driver"]
    assert buildah_engine.name == "buildah" and "overlay" in buildah_engine.address


def test_buildah_not_installed(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        with pytest.raises(EngineUnavailable, match="buildah not installed"):
            BuildahEngine()


def test_storage_is_configurable(tmp_path: Path, base_image: BaseImage) -> None:
    root, runroot = tmp_path / "root", tmp_path / "runroot"
    engine = BuildahEngine(root=str(root), runroot=str(runroot), storage_driver="vfs")
    assert str(root) in engine.address and "vfs" in engine.address
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY f /f\n", {"f": "x\n"})
    image_id = _build(engine, context, "ar-buildah-own-storage:1")
    assert engine.image_info("ar-buildah-own-storage:1").id == image_id
    assert not BuildahEngine().image_exists("ar-buildah-own-storage:1")
    assert os.path.isdir(root / "vfs")
    # a private storage of this test only: empty it before tmp_path goes
    subprocess.run(["buildah", "--root", str(root), "--runroot", str(runroot),
                    "--storage-driver", "vfs", "rmi", "--all", "--force"],
                   capture_output=True, check=False)


def test_platform_option(buildah_engine: BuildahEngine, base_image: BaseImage,
                         tmp_path: Path) -> None:
    context = write_context(tmp_path, "FROM scratch\nCOPY f /f\n", {"f": "x\n"})
    tag = f"ar-buildah-{unique()}:arm64"
    _build(buildah_engine, context, tag, platform=Platform.parse("linux/arm64"), timestamp=0)
    info = buildah_engine.image_info(tag)
    assert info.architecture == "arm64"
    assert info.created is not None and info.created.year == 1970
