"""DockerTasker against the real engine and real registries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import (
    AuthenticationError,
    BuildFailed,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullError,
    PushError,
)
from atomic_reactor.util import ImageName
from tests.integration.helpers import git_repo, run_failed, step_line, unique, write_context
from tests.support.env import BaseImage, Registry


def test_engine_info_and_version(tasker: DockerTasker, engine_name: str) -> None:
    version = tasker.get_version()
    assert version["Version"]
    info = tasker.get_info()
    assert info["Images"] >= 1 and "Containers" in info  # at least the base image
    assert tasker.engine_name == engine_name
    if engine_name == "docker":  # the daemon's API version and SDK client: docker's own
        assert version["ApiVersion"]
        assert tasker.d is not None
    else:
        assert tasker.d is None


def test_build_from_path_streams_logs_and_tags(tasker: DockerTasker, base_image: BaseImage,
                                               tmp_path: Path, engine_name: str) -> None:
    context = write_context(tmp_path, f"""
        FROM {base_image.local}
        RUN echo built-by-test > /marker
        """)
    name = ImageName.parse(unique())
    lines = list(tasker.build_image_from_path(str(context), name, stream=True))
    step = step_line(engine_name, 2, 2, "RUN echo built-by-test > /marker")
    assert any(step in line for line in lines), lines
    assert tasker.last_logs == lines
    assert tasker.image_exists(name)
    inspect = tasker.inspect_image(name)
    info = tasker.get_image_info_by_image_id(inspect["Id"])
    assert info is not None and str(name.with_default_tag()) in info["RepoTags"]
    assert [e["Id"] for e in tasker.get_image_info_by_image_name(name)] == [inspect["Id"]]
    tasker.remove_image(name)
    assert not tasker.image_exists(name)


def test_failing_run_raises_build_failed_with_engine_message(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path, engine_name: str) -> None:
    context = write_context(tmp_path, f"""
        FROM {base_image.local}
        RUN echo about-to-fail && exit 7
        """)
    with pytest.raises(BuildFailed) as info:
        tasker.build_image_from_path(str(context), unique())
    assert run_failed(engine_name, 7) in str(info.value)
    assert any("about-to-fail" in line for line in tasker.last_logs)


def test_build_from_git_copies_dockerfile(tasker: DockerTasker, base_image: BaseImage,
                                          tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", f"FROM {base_image.local}\nLABEL from=git\n")
    copy = tmp_path / "copied-Dockerfile"
    name = unique()
    output = tasker.build_image_from_git(str(repo), name, git_commit="main",
                                         copy_dockerfile_to=str(copy))
    assert isinstance(output, str) and "Successfully tagged" in output
    assert copy.read_text().startswith(f"FROM {base_image.local}")
    assert tasker.inspect_image(name)["Config"]["Labels"] == {"from": "git"}


def test_pull_tag_push_round_trip_records_digest(tasker: DockerTasker, base_image: BaseImage,
                                                 registry: Registry) -> None:
    pulled = tasker.pull(base_image.pushed)
    assert pulled.image_id == tasker.inspect_image(base_image.local)["Id"]
    assert tasker.pull_image(base_image.pushed) == base_image.pushed

    repo = unique()
    target = ImageName.parse(f"{registry.address}/{repo}:v1")
    assert tasker.tag_image(base_image.local, target) == str(target)
    result = tasker.push(target)
    assert result.digest and result.digest.startswith("sha256:")
    assert result.attempts == 1
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(repo, "v1") == result.digest
    logs = tasker.push_image(target)
    assert result.digest in logs


def test_push_to_auth_registry_with_config_and_secret(
        tasker: DockerTasker, base_image: BaseImage, auth_registry: Registry,
        docker_config: Path, tmp_path: Path) -> None:
    target = f"{auth_registry.address}/{unique()}:1"
    tasker.tag_image(base_image.local, target)
    assert tasker.push(target).digest  # credentials from $DOCKER_CONFIG

    # the same through a secret directory (.dockercfg format), via tag_and_push_image
    secret = tmp_path / "secret"
    secret.mkdir()
    assert auth_registry.password is not None
    token = base64.b64encode(f"tester:{auth_registry.password}".encode()).decode()
    (secret / ".dockercfg").write_text(json.dumps({auth_registry.address: {"auth": token}}))
    second = f"{auth_registry.address}/{unique()}:2"
    assert tasker.tag_and_push_image(base_image.local, second, dockercfg=str(secret)) == second


def test_a_build_pulls_its_base_with_the_docker_config_credentials(
        tasker: DockerTasker, base_image: BaseImage, auth_registry: Registry,
        docker_config: Path, tmp_path: Path) -> None:
    """The base image of a build is on a registry that wants credentials and is not
    local: the engine pulls it with those of $DOCKER_CONFIG (X-Registry-Config)."""
    base = f"{auth_registry.address}/{unique()}-base:1"
    tasker.tag_image(base_image.local, base)
    assert tasker.push(base).digest
    tasker.remove_image(base)
    assert not tasker.image_exists(base)
    context = write_context(tmp_path / "ctx", f"FROM {base}\nRUN echo hi > /hi\n")
    built = tasker.build_image(str(context), f"{unique()}:1", pull=True)
    assert tasker.image_info(built.image_id).id == built.image_id


def test_wrong_credentials_fail_without_leaking(
        tasker: DockerTasker, base_image: BaseImage, auth_registry: Registry,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    token = base64.b64encode(b"tester:definitely-wrong-password").decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.address:
                                                              {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    target = f"{auth_registry.address}/{unique()}:1"
    tasker.tag_image(base_image.local, target)
    with pytest.raises(AuthenticationError) as info:
        tasker.push(target)
    assert "definitely-wrong-password" not in str(info.value)
    assert info.value.exit_code == 4


def test_push_to_unreachable_registry_fails_fast(tasker: DockerTasker, base_image: BaseImage
                                                  ) -> None:
    from tests.support.env import find_free_port

    target = f"127.0.0.1:{find_free_port()}/{unique()}:1"
    tasker.tag_image(base_image.local, target)
    with pytest.raises(PushError) as info:
        tasker.push(target)
    assert "connection refused" in str(info.value).lower()


def test_pull_missing_image_is_pull_error(tasker: DockerTasker, registry: Registry) -> None:
    with pytest.raises(PullError) as info:
        tasker.pull(f"{registry.address}/{unique()}:nope")
    assert "not found" in str(info.value).lower() or "unknown" in str(info.value).lower()


def test_containers_run_wait_logs_commit(tasker: DockerTasker, base_image: BaseImage) -> None:
    container = tasker.run(base_image.local, command=["sh", "-c", "echo out; echo err >&2; "
                                                                  "echo x > /made; exit 3"])
    try:
        assert tasker.wait(container) == 3
        lines = tasker.logs(container, stream=False)
        assert isinstance(lines, list)
        assert "out\n" in lines and "err\n" in lines
        name = unique()
        image_id = tasker.commit_container(container, ImageName.parse(f"{name}:c"),
                                           message="committed")
        assert tasker.inspect_image(f"{name}:c")["Id"] == image_id
    finally:
        tasker.remove_container(container, force=True)
    # the container is gone: the engine's "no such container", as the project's own error
    with pytest.raises(EngineError, match=r"removing container \w+\b.*"
                                          r"([Nn]o such container|container not known)"):
        tasker.remove_container(container)


def test_run_honours_the_sdk_keywords_of_1_6(tasker: DockerTasker, base_image: BaseImage
                                             ) -> None:
    """``create_kwargs``/``start_kwargs`` in the Docker SDK's words (the 1.6 ``run``)
    still shape the container, and its logs are read as they come."""
    command = "sh -c 'hostname; touch /x 2>/dev/null || echo ro'"
    container = tasker.run(base_image.local, command=command,
                           create_kwargs={"hostname": "ar-kwargs", "tty": False},
                           start_kwargs={"read_only": True})
    try:
        assert tasker.wait(container) == 0
        inspect = tasker.inspect_container(container)
        assert inspect["Config"]["Hostname"] == "ar-kwargs"
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        assert list(tasker.logs(container, stream=True)) == ["ar-kwargs\n", "ro\n"]
    finally:
        tasker.remove_container(container, force=True)


def test_missing_image_is_image_not_found(tasker: DockerTasker) -> None:
    with pytest.raises(ImageNotFound):
        tasker.inspect_image(f"{unique()}:missing")
    assert tasker.get_image_info_by_image_id("0" * 64) is None


def test_engine_not_running_names_the_socket(tmp_path: Path) -> None:
    socket = tmp_path / "no-engine.sock"
    tasker = DockerTasker(base_url=f"unix://{socket}")
    with pytest.raises(EngineUnavailable) as info:
        tasker.get_version()
    message = str(info.value)
    assert str(socket) in message
    assert "\n" not in message


def test_save_as_oci_archive(tasker: DockerTasker, base_image: BaseImage, tmp_path: Path
                             ) -> None:
    """dockerd saves only docker-archive; the backend writes the same image as an OCI
    layout, which skopeo (another implementation) reads back."""
    import shutil
    import subprocess

    from atomic_reactor._image.layout import ImageArchive
    from atomic_reactor._image.tarstream import safe_extract

    path = tmp_path / "image.oci.tar"
    with open(path, "wb") as out:
        for chunk in tasker.save_image_stream(base_image.local, "oci-archive"):
            out.write(chunk)
    info = tasker.image_info(base_image.local)
    with open(path, "rb") as handle:
        safe_extract(handle, str(tmp_path / "layout"))
    archive = ImageArchive.open(str(tmp_path / "layout"))
    assert archive.layout == "oci" and tuple(archive.diff_ids) == info.layers
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    done = subprocess.run([skopeo, "inspect", f"oci-archive:{path}"], capture_output=True,
                          text=True, check=True)
    inspected = json.loads(done.stdout)
    assert inspected["Digest"].startswith("sha256:")
    assert inspected["Architecture"] == info.architecture
    assert len(inspected["Layers"]) == len(info.layers)  # blobs: gzip'd or not, per engine
    done = subprocess.run([skopeo, "inspect", "--config", f"oci-archive:{path}"],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["rootfs"]["diff_ids"] == list(info.layers)
