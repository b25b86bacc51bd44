"""The engine seam without an engine: the backend loader, the Docker backend's
translation of Docker's JSON into the typed values, and what it refuses."""

from __future__ import annotations

import inspect
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atomic_reactor import core
from atomic_reactor._engine.base import (
    BuildOptions,
    BuildSecret,
    ContainerEngine,
    ContainerSpec,
    EngineCapabilities,
    EngineEvent,
    Platform,
)
from atomic_reactor._engine.docker import (
    DockerEngine,
    _intermediates,
    build_params,
    container_config,
    container_state_from_inspect,
    image_info_from_inspect,
    image_info_from_list_entry,
)
from atomic_reactor._engine.registry import engine_names, load_engine, load_engine_class
from atomic_reactor.errors import ArchiveError, EngineConfigError, InputError
from tests.support.fake_engine import FakeEngine
from tests.support.imports import loaded_after

NO_ENGINE = "unix:///nonexistent.sock"

#: ``docker inspect`` of an image built by dockerd 20.10 (trimmed of GraphDriver)
IMAGE_INSPECT = {
    "Id": "sha256:f78bed5db3f48b49eef0c11b16d5f1e9f39f79def28626128b74935a591baa17",
    "RepoTags": ["atomic-reactor-test/debian:bookworm-minbase", "r.example/x:1"],
    "RepoDigests": ["r.example/x@sha256:" + "a" * 64],
    "Parent": "sha256:" + "b" * 64,
    "Created": "2026-12-01T21:56:22.840008854Z",
    "Config": {
        "User": "1001", "Env": ["PATH=/usr/bin", "A=b=c"], "Cmd": ["/bin/bash"],
        "WorkingDir": "/src", "Entrypoint": None, "Labels": {"name": "x", "version": "1"},
    },
    "Architecture": "arm",
    "Variant": "v7",
    "Os": "linux",
    "Size": 116668719,
    "RootFS": {"Type": "layers", "Layers": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
}


def test_docker_is_registered_and_an_unknown_engine_is_bad_input() -> None:
    assert "docker" in engine_names()
    with pytest.raises(EngineConfigError) as info:
        load_engine("nosuch")
    assert isinstance(info.value, InputError) and info.value.exit_code == 2
    assert "unknown engine 'nosuch'" in str(info.value) and "docker" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(EngineConfigError):
        core.DockerTasker(engine="nosuch")


def test_tasker_selects_the_engine_by_name_without_contacting_it() -> None:
    tasker = core.DockerTasker(base_url=NO_ENGINE, engine="docker", timeout=7)
    assert tasker.engine_name == "docker"
    assert isinstance(tasker.engine, DockerEngine) and isinstance(tasker.engine, ContainerEngine)
    assert tasker.engine.address == NO_ENGINE and tasker.engine.timeout == 7
    engine = DockerEngine(base_url=NO_ENGINE)
    assert core.DockerTasker(engine=engine).engine is engine


def test_docker_refuses_build_secrets_in_one_line_naming_the_engine(tmp_path: Path) -> None:
    engine = DockerEngine(base_url=NO_ENGINE)
    options = BuildOptions(secrets=(BuildSecret("token", src="/nonexistent"),))
    with pytest.raises(EngineConfigError) as info:
        engine.build(str(tmp_path), "x:1", options)
    assert info.value.exit_code == 2
    assert "docker engine cannot mount build secrets" in str(info.value)
    assert "--engine buildah" in str(info.value)
    with pytest.raises(EngineConfigError, match="unknown archive format"):
        engine.save_image("x:1", "tar")  # type: ignore[arg-type]


def test_build_options_become_the_build_query() -> None:
    options = BuildOptions(dockerfile="sub/Containerfile", use_cache=False,
                           remove_intermediate=False, buildargs={"A": "1"},
                           labels={"l": "v"}, target="final", pull=True,
                           platform=Platform.parse("linux/arm64"))
    assert build_params(options, {"http_proxy": "p", "A": "proxy"}) == {
        "q": False, "dockerfile": "sub/Containerfile", "nocache": True, "rm": False,
        "forcerm": False, "buildargs": {"http_proxy": "p", "A": "1"}, "labels": {"l": "v"},
        "target": "final", "pull": True, "platform": "linux/arm64",
    }
    plain = build_params(BuildOptions())
    assert plain["labels"] is None and plain["platform"] is None and plain["target"] is None
    assert plain["nocache"] is False and plain["pull"] is False and plain["buildargs"] is None


def test_a_container_spec_becomes_the_create_body_the_sdk_made() -> None:
    from docker.types import ContainerConfig, HostConfig

    spec = ContainerSpec(image="app:1", command="sh -c 'echo hi'", environment={"A": "b"},
                         binds={"/src": ("/in", "ro")}, labels={"l": "v"},
                         privileged=True, cap_add=("SYS_ADMIN",), security_opt=("x=y",),
                         user="1001", working_dir="/w", entrypoint=["/bin/env"])
    host = HostConfig("1.41", binds={"/src": {"bind": "/in", "mode": "ro"}},
                      privileged=True, cap_add=["SYS_ADMIN"], security_opt=["x=y"])
    sdk = ContainerConfig("1.41", "app:1", "sh -c 'echo hi'", environment={"A": "b"},
                          labels={"l": "v"}, user="1001", working_dir="/w",
                          entrypoint=["/bin/env"], volumes=["/in"], host_config=host)
    ours = container_config(spec)
    assert ours == {key: value for key, value in sdk.items() if value is not None}
    assert container_config(spec, {"http_proxy": "p"})["Env"] == ["http_proxy=p", "A=b"]


def test_image_info_from_docker_inspect() -> None:
    info = image_info_from_inspect(IMAGE_INSPECT)
    assert info.id == IMAGE_INSPECT["Id"]
    assert info.names == ("atomic-reactor-test/debian:bookworm-minbase", "r.example/x:1")
    assert info.digest_for("r.example/x") == "sha256:" + "a" * 64
    assert info.labels == {"name": "x", "version": "1"}
    assert info.env == ("PATH=/usr/bin", "A=b=c")
    assert info.platform == Platform("linux", "arm", "v7")
    assert info.created == datetime(2026, 12, 1, 21, 56, 22, 840008, tzinfo=UTC)
    assert info.layers == ("sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert (info.size, info.user, info.workdir) == (116668719, "1001", "/src")
    assert info.entrypoint is None and info.cmd == ("/bin/bash",)
    bare = image_info_from_inspect({"Id": "sha256:x", "RepoTags": None, "Config": None,
                                    "RepoDigests": ["<none>@<none>"]})
    assert bare.names == () and bare.digests == () and bare.labels == {} and bare.env == ()


def test_image_info_from_a_docker_images_entry() -> None:
    info = image_info_from_list_entry({
        "Id": "sha256:c", "RepoTags": ["<none>:<none>"], "RepoDigests": None,
        "Created": 1764626182, "Size": 5, "Labels": None})
    assert info.names == () and info.size == 5 and info.created is not None
    assert int(info.created.timestamp()) == 1764626182


def test_container_state_from_docker_inspect() -> None:
    state = container_state_from_inspect({
        "Id": "c1", "Image": "sha256:i",
        "State": {"Status": "exited", "ExitCode": 3, "OOMKilled": True, "Error": "",
                  "StartedAt": "2026-12-01T21:56:22.1Z", "FinishedAt": "2026-12-01T21:56:23Z"}})
    assert (state.id, state.image, state.status, state.exit_code) == ("c1", "sha256:i",
                                                                      "exited", 3)
    assert state.oom_killed and not state.running
    assert state.started_at is not None and state.finished_at is not None
    running = container_state_from_inspect({
        "Id": "c2", "State": {"Status": "running", "ExitCode": 0,
                              "FinishedAt": "0001-01-01T00:00:00Z"}})
    assert running.running and running.exit_code is None and running.finished_at is None
    odd = container_state_from_inspect({"Id": "c3", "State": {"Status": "weird"}})
    assert odd.status == "unknown"


def test_the_docker_sdk_is_imported_only_by_the_docker_backend() -> None:
    assert loaded_after(
        ["atomic_reactor.api", "atomic_reactor.core", "atomic_reactor.inner",
         "atomic_reactor.cli.main", "atomic_reactor._engine.registry"],
        ["docker", "requests"],
        then="atomic_reactor._engine.registry.engine_names()") == []


# -- every backend implements the whole protocol --------------------------------------------


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(ContainerEngine).items()
            if callable(member) and not name.startswith("_")}


@pytest.mark.parametrize("engine", [*engine_names(), "fake"])
def test_backend_implements_every_method_of_the_protocol(engine: str) -> None:
    backend: type = FakeEngine if engine == "fake" else load_engine_class(engine)
    for name, wanted in _protocol_methods().items():
        method = getattr(backend, name, None)
        assert callable(method), f"{backend.__name__} lacks {name}"
        have = inspect.signature(method)
        wanted_names = [p for p in wanted.parameters if p != "self"]
        have_names = [p for p in have.parameters if p != "self"]
        assert have_names[:len(wanted_names)] == wanted_names, name
    assert isinstance(getattr(backend, "name", None), str)
    assert isinstance(getattr(backend, "capabilities", None), EngineCapabilities)


def test_docker_marks_the_step_images_a_build_made() -> None:
    """The legacy builder's output (dockerd 20.10): FROM and cached steps made no image."""
    lines = [
        "Step 1/4 : FROM busybox:latest\n", " ---> 7d73c9f15b80\n",
        "Step 2/4 : RUN echo hi > /x\n", " ---> Running in 1234567890ab\n",
        "Removing intermediate container 1234567890ab\n", " ---> aaaaaaaaaaaa\n",
        "Step 3/4 : LABEL a=b\n", " ---> Using cache\n", " ---> bbbbbbbbbbbb\n",
        "Step 4/4 : ENV X=1\n", " ---> Running in 2234567890ab\n",
        "Removing intermediate container 2234567890ab\n", " ---> cccccccccccc\n",
        "Successfully built cccccccccccc\n",
    ]
    events = list(_intermediates(iter([EngineEvent(message=line) for line in lines])))
    assert [e.message for e in events] == lines
    assert [e.intermediate_image for e in events if e.intermediate_image] == [
        "aaaaaaaaaaaa", "cccccccccccc"]


def test_tasker_build_reports_the_step_images_but_not_the_final_one(tmp_path: Path) -> None:
    engine = FakeEngine()
    final = "sha256:" + "c" * 64
    engine.build_script = lambda context, tag, options: [
        EngineEvent(message="Step 1/2 : RUN x\n", intermediate_image="aaaaaaaaaaaa"),
        EngineEvent(message="Step 2/2 : ENV X=1\n", intermediate_image="cccccccccccc"),
        EngineEvent(image_id=final)]
    tasker = core.DockerTasker(engine=engine)
    built = tasker.build_image(str(tmp_path), "out:1", BuildOptions(labels={"a": "b"}),
                               target="final", use_cache=False)
    assert built.image_id == final and built.intermediate_ids == ("aaaaaaaaaaaa",)
    options = engine.calls[0][3]
    assert options == BuildOptions(use_cache=False, labels={"a": "b"}, target="final")
    assert tasker.image_info("out:1").labels == {"a": "b"}


def test_tasker_typed_image_and_container_calls_over_the_fake_engine() -> None:
    engine = FakeEngine()
    base = engine.add_image("base:1", labels={"name": "base"}, env={"PATH": "/bin"},
                            user="1001")
    tasker = core.DockerTasker(engine=engine)
    assert tasker.engine_name == "fake"
    assert tasker.image_info("base:1") == base and tasker.image_info(base.id) == base
    assert tasker.find_image("nosuch:1") is None
    assert [i.id for i in tasker.list_images("base")] == [base.id]
    # the 1.6 dicts agree with the typed values
    assert tasker.inspect_image("base:1")["Config"]["User"] == "1001"
    entry = tasker.get_image_info_by_image_id(base.id[7:19])
    assert entry is not None and entry["RepoTags"] == ["base:1"]
    assert tasker.get_image_info_by_image_name("base:1")[0]["Id"] == base.id
    engine.container_script = lambda spec: (3, ["out\n"])
    container = tasker.run("base:1", ["true"])
    assert tasker.wait_container(container, timeout=5) == 3
    state = tasker.container_state(container)
    assert (state.status, state.exit_code, state.running) == ("exited", 3, False)
    assert list(tasker.logs(container, stream=False)) == ["out\n"]
    tasker.remove_container(container)
    loaded = tasker.load_image(tasker.save_image_stream("base:1"))
    assert loaded == ["base:1"]
    tasker.close()
    assert engine.closed == 1


def test_engine_host_is_typed() -> None:
    tasker = core.DockerTasker(engine=FakeEngine(architecture="arm64", host="builder-7"))
    assert tasker.engine_host() == core.EngineHost(
        name="builder-7", platform=Platform("linux", "arm64"), version="0-fake")


def test_backends_conform_to_the_protocol_for_mypy_too() -> None:
    from atomic_reactor._engine.buildah import BuildahEngine

    # mypy checks these assignments structurally: a backend that drifts from the
    # protocol (a missing method, a different signature) fails the type check
    backends: list[type[ContainerEngine]] = [DockerEngine, BuildahEngine, FakeEngine]
    assert all(isinstance(b.name, str) for b in backends)


def test_docker_save_becomes_an_oci_archive(tmp_path: Path) -> None:
    """The Docker backend's oci-archive: a docker save written out as an OCI layout."""
    from atomic_reactor._engine.docker import _oci_archive
    from atomic_reactor._image.layout import ImageArchive
    from atomic_reactor._image.tarstream import safe_extract

    engine = FakeEngine()
    info = engine.add_image("app:1", labels={"a": "b"}, layers=("sha256:x", "sha256:y"))
    saved = b"".join(engine.save_image("app:1"))
    docker_dir, oci_dir = tmp_path / "docker", tmp_path / "oci"
    safe_extract(iter([saved]), str(docker_dir))
    original = ImageArchive.open(str(docker_dir))
    safe_extract(_oci_archive("app:1", iter([saved])), str(oci_dir))
    assert (oci_dir / "oci-layout").is_file()
    converted = ImageArchive.open(str(oci_dir))
    assert converted.layout == "oci"
    assert converted.config_bytes == original.config_bytes
    assert converted.diff_ids == original.diff_ids and len(converted.diff_ids) == 2
    assert converted.config["config"]["Labels"] == dict(info.labels)
    index = json.loads((oci_dir / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "app:1"}
    # a layer file that is not the layer its config names is refused
    bad = io.BytesIO()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
                         "architecture": "amd64", "os": "linux"}).encode()
    files = {"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["bad:1"],
                                           "Layers": ["0/layer.tar"]}]).encode(),
             "c.json": config, "0/layer.tar": b"not the layer"}
    with tarfile.open(fileobj=bad, mode="w") as tar:
        for name, payload in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    with pytest.raises(ArchiveError, match="is not the layer"):
        b"".join(_oci_archive("bad:1", iter([bad.getvalue()])))


@pytest.mark.parametrize("names_pulls", [False, True])
def test_a_pull_the_engine_names_needs_no_look_up(names_pulls: bool) -> None:
    engine = FakeEngine(names_pulls=names_pulls)
    engine.registry["reg:5000/ns/base:1"] = engine.make_image()
    tasker = core.DockerTasker(engine=engine)
    pulled = tasker.pull("reg:5000/ns/base:1")
    info = engine.images[pulled.image_id]
    assert pulled.image_id == info.id
    looked_up = [call for call in engine.calls if call[0] == "image_info"]
    if names_pulls:  # the engine said which image, and the digest for the repository
        assert looked_up == []
        assert pulled.digest == info.digest_for("reg:5000/ns/base")
    else:
        assert looked_up == [("image_info", "reg:5000/ns/base:1")]
        assert pulled.digest is None


@pytest.mark.parametrize(("reference", "split"), [
    ("busybox", ("busybox", None)), ("busybox:1", ("busybox", "1")),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", None)),
    ("127.0.0.1:5000/app:2", ("127.0.0.1:5000/app", "2")),
    ("r.example/app@sha256:" + "a" * 64, ("r.example/app", "sha256:" + "a" * 64)),
])
def test_a_pull_reference_is_split_as_dockerd_takes_it(
        reference: str, split: tuple[str, str | None]) -> None:
    from atomic_reactor._engine.docker.engine import split_reference

    assert split_reference(reference) == split


def test_docker_addresses_and_options_the_transport_cannot_take_are_bad_input() -> None:
    with pytest.raises(EngineConfigError, match="takes no option nosuch"):
        DockerEngine(base_url=NO_ENGINE, nosuch=1)
    engine = DockerEngine(base_url="ssh://user@builder")
    with pytest.raises(EngineConfigError, match=r"ssh://user@builder: ssh:// addresses"):
        engine.version()


def test_a_backend_without_read_image_is_read_by_its_save() -> None:
    """``read_image`` came after the first third-party backends: the tasker reads an
    engine that lacks it by its ``save_image``; one that has it by ``read_image``."""
    from tests.support.fake_engine import FakeEngine, fake_tasker

    class Older(FakeEngine):
        read_image = None  # type: ignore[assignment]

    for engine in (Older(), FakeEngine()):
        engine.add_image("unit/old:1")
        assert b"".join(fake_tasker(engine).read_image_stream("unit/old:1"))
        assert engine.calls[-1] == ("save_image", "unit/old:1", "docker-archive")
