"""atomic-reactor with --engine buildah: real builds, flags, secrets, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.helpers import Outcome, unique, write_context
from tests.support.buildah_env import BuildahTracker, buildah, image_names
from tests.support.env import BaseImage, Registry

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _docker_images(name: str) -> list[str] | None:
    """Ids of the docker engine's images of repository ``name`` (None: no docker)."""
    try:
        import docker
    except ImportError:  # pragma: no cover
        return None
    try:
        client = docker.from_env(timeout=10)
        try:
            return [str(image["Id"]) for image in client.api.images(name=name)]
        finally:
            client.close()
    except Exception:  # no docker here: nothing to compare
        return None


def _build_args(base_image: BaseImage, context: Path, image: str, *extra: str) -> list[str]:
    registry = base_image.registry.address
    return ["build", "path", "--uri", str(context), "--image", image,
            "--source-registry", registry, "--source-registry-insecure", *extra]


def _dockerfile(base_image: BaseImage, body: str) -> str:
    return f"FROM {base_image.pushed}\n{body}"


def test_build_and_push_without_docker(cli: Callable[..., Outcome], base_image: BaseImage,
                                       registry: Registry, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", _dockerfile(
        base_image, "ARG GREETING\nRUN echo \"$GREETING\" > /greeting\n"
                    "COPY . /ctx\nRUN test ! -e /ctx/skipped.txt\n"),
        {"kept.txt": "k\n", "skipped.txt": "s\n", ".dockerignore": "skipped.txt\n"})
    image = f"{registry.address}/ar-buildah/{unique()}:1"
    metadata = tmp_path / "results.json"
    outcome = cli(*_build_args(base_image, context, image, "--engine", "buildah",
                               "--target-registries", registry.address,
                               "--target-registries-insecure", "--build-arg", "GREETING=hello",
                               "--label", "vendor=Example", "--no-cache",
                               "--metadata-file", str(metadata)), env=NO_DOCKER)
    assert outcome.code == 0, outcome.stderr
    results = json.loads(metadata.read_text())
    assert results["engine"] == "buildah"
    assert results["digests"][registry.address][image].startswith("sha256:")
    assert results["built_img_inspect"]["Config"]["Labels"]["vendor"] == "Example"
    assert "level=debug" not in outcome.stderr
    assert outcome.new_containers == []


def test_api_build_does_not_import_docker(base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", _dockerfile(base_image, "RUN echo hi > /hi\n"))
    image = f"ar-buildah-{unique()}:1"
    script = f"""
import sys
from atomic_reactor.api import build_image_here
results = build_image_here({{"provider": "path", "uri": "file://{context}"}}, {image!r},
                           parent_registry={base_image.registry.address!r},
                           parent_registry_insecure=True, engine="buildah")
results.raise_for_status()
assert results.engine == "buildah", results.engine
assert "docker" not in sys.modules, sorted(m for m in sys.modules if m.startswith("docker"))
print(results.image_id)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, **NO_DOCKER}, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("sha256:")


def _saved_image(name: str, directory: Path) -> bytes:
    path = directory / "saved.tar"
    buildah("push", "-q", f"localhost/{name}", f"docker-archive:{path}")
    data = path.read_bytes()
    path.unlink()
    return data


def _layer_contents(archive: bytes, directory: Path) -> bytes:
    """Every regular file of the archive and of the layers in it, concatenated."""
    import io

    path = directory / "archive.tar"
    path.write_bytes(archive)
    parts: list[bytes] = []
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = handle.read()
            parts.append(data)
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer.getmembers():
                        inner = layer.extractfile(entry) if entry.isfile() else None
                        if inner is not None:
                            parts.append(inner.read())
    path.unlink()
    return b"".join(parts)


def test_secrets_are_nowhere(cli: Callable[..., Outcome], base_image: BaseImage,
                             tmp_path: Path) -> None:
    file_value = "file-" + unique("secret")
    env_value = "env-" + unique("secret")
    secret_file = tmp_path / "token"
    secret_file.write_text(file_value + "\n")
    context = write_context(tmp_path / "ctx", _dockerfile(
        base_image,
        "RUN --mount=type=secret,id=tok cat /run/secrets/tok; wc -c < /run/secrets/tok > /a\n"
        "RUN --mount=type=secret,id=npm cat /run/secrets/npm; wc -c < /run/secrets/npm > /b\n"
        "RUN cat /a /b\n"))
    image = f"ar-buildah-{unique()}:1"
    metadata = tmp_path / "results.json"
    log_file = tmp_path / "build.log"
    stored = tmp_path / "stored.json"
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": f"file://{context}"}, "image": image,
        "parent_registry": base_image.registry.address, "parent_registry_insecure": True,
        "engine": "buildah",
        "secrets": [{"id": "tok", "src": str(secret_file)}, {"id": "npm", "env": "NPM_TOKEN"}],
        "exit_plugins": [{"name": "store_metadata", "args": {"path": str(stored)}}]}))
    outcome = cli("build", "json", str(build_json), "--metadata-file", str(metadata),
                  "--log-file", str(log_file), env={**NO_DOCKER, "NPM_TOKEN": env_value})
    assert outcome.code == 0, outcome.stderr
    # the build saw them (cat printed them, masked), their lengths are in the image
    log = log_file.read_text()
    assert f"{len(file_value) + 1}\n" in log and f"{len(env_value)}\n" in log
    assert "***" in log
    outputs = [outcome.stdout, outcome.stderr, log, metadata.read_text(), stored.read_text(),
               build_json.read_text()]
    image_bytes = _layer_contents(_saved_image(image, tmp_path), tmp_path)
    for value in (file_value, env_value):
        assert all(value not in text for text in outputs)
        assert value.encode() not in image_bytes
    assert json.loads(stored.read_text())["engine"] == "buildah"


def test_docker_engine_refuses_secrets(cli: Callable[..., Outcome], base_image: BaseImage,
                                       tmp_path: Path) -> None:
    if _docker_images("none") is None:
        pytest.skip("no docker engine answers")
    secret_file = tmp_path / "token"
    secret_file.write_text("value-" + unique() + "\n")
    context = write_context(tmp_path / "ctx", _dockerfile(base_image, "RUN true\n"))
    outcome = cli(*_build_args(base_image, context, f"ar-buildah-{unique()}:1",
                               "--engine", "docker", "--dont-pull-base-image",
                               "--secret", f"id=tok,src={secret_file}"))
    assert outcome.code == 2, outcome.stderr
    assert outcome.last_line().startswith("atomic-reactor: error: ")
    assert "docker engine" in outcome.last_line()
    assert len(outcome.stderr.strip().splitlines()) <= 3


def test_auto_says_which_engine(cli: Callable[..., Outcome], base_image: BaseImage,
                                tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY f /f\n", {"f": "x\n"})
    outcome = cli(*_build_args(base_image, context, f"ar-buildah-{unique()}:1",
                               "--engine", "auto", "--dont-pull-base-image"), env=NO_DOCKER)
    assert outcome.code == 0, outcome.stderr
    assert "engine: buildah (auto: no docker engine answers" in outcome.stderr


BAD_INPUT = [
    pytest.param(["--engine", "podman"], {}, "unknown engine 'podman'", id="unknown-engine"),
    pytest.param(["--engine", "buildah"], {"PATH": "/nonexistent-bin"}, "buildah not installed",
                 id="buildah-missing"),
    pytest.param(["--engine", "buildah", "--secret", "id=tok,src=/nonexistent/token"], {},
                 "cannot read /nonexistent/token", id="secret-file-missing"),
    pytest.param(["--engine", "buildah", "--secret", "id=tok,env=AR_TEST_UNSET_VARIABLE"], {},
                 "AR_TEST_UNSET_VARIABLE is not set", id="secret-env-missing"),
    pytest.param(["--engine", "buildah", "--target", "nosuch"], {},
                 "--target nosuch: the Dockerfile has no stage", id="target-missing"),
    pytest.param(["--engine", "buildah", "--build-arg", "NOEQUALS"], {},
                 "--build-arg 'NOEQUALS' is not of the form KEY=VALUE", id="malformed-build-arg"),
    pytest.param(["--engine", "buildah", "--method", "hostdocker", "--build-image", "x"], {},
                 "--method hostdocker --engine buildah is not supported", id="hostdocker"),
]


@pytest.mark.parametrize(("extra", "env", "expected"), BAD_INPUT)
def test_bad_input(cli: Callable[..., Outcome], base_image: BaseImage, tmp_path: Path,
                   extra: list[str], env: dict[str, str], expected: str) -> None:
    secret_value = "never-" + unique("shown")
    (tmp_path / "token").write_text(secret_value)
    context = write_context(tmp_path / "ctx", _dockerfile(
        base_image, "FROM scratch AS one\nCOPY --from=0 /bin/busybox /\n"))
    buildah_before = image_names()
    executable = sys.executable
    repository = f"ar-buildah-{unique()}"
    args = _build_args(base_image, context, f"{repository}:1", *extra,
                       "--secret" if "secret" not in " ".join(extra) else "--label",
                       f"id=other,src={tmp_path / 'token'}" if "secret" not in " ".join(extra)
                       else "a=b")
    full_env = dict(env)
    if "PATH" in env:  # python itself stays reachable: only buildah is gone
        full_env["PATH"] = f"{env['PATH']}:{os.path.dirname(executable)}"
    outcome = cli(*args, env=full_env)
    assert outcome.code != 0
    assert outcome.code in (2, 6), outcome.stderr
    line = outcome.last_line()
    assert line.startswith("atomic-reactor: error: ") and expected in line, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert secret_value not in outcome.stderr + outcome.stdout
    assert outcome.new_containers == [] and outcome.new_images == []
    assert outcome.tmp_leftovers == []
    assert image_names() == buildah_before
    assert _docker_images(repository) in (None, [])  # nor in docker's


def test_tracker_state_is_clean_after_cancelled_cli_build(
        base_image: BaseImage, tmp_path: Path) -> None:
    """SIGTERM during a RUN step: exit 143, exit plugins ran, nothing left in storage."""
    import signal
    import time

    marker = unique("cancel")
    context = write_context(tmp_path / "ctx", _dockerfile(
        base_image, f"RUN echo started-{marker} && sleep 300\n"))
    stored = tmp_path / "stored.json"
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": f"file://{context}"},
        "image": f"ar-buildah-{unique()}:1", "engine": "buildah",
        "parent_registry": base_image.registry.address, "parent_registry_insecure": True,
        "use_cache": False,
        "exit_plugins": [{"name": "store_metadata", "args": {"path": str(stored)}}]}))
    before = BuildahTracker(exclusive=False).state()
    process = subprocess.Popen([sys.executable, "-m", "atomic_reactor", "build", "json",
                                str(build_json)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **NO_DOCKER})
    assert process.stdout is not None
    for line in process.stdout:
        if f"started-{marker}" in line and "RUN" not in line:
            break
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    process.communicate(timeout=60)
    assert process.returncode == 143
    assert time.monotonic() - started < 30
    assert json.loads(stored.read_text())["status"] == "cancelled"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True,
                        check=False).stdout
    assert f"started-{marker}" not in ps
    assert BuildahTracker(exclusive=False).state().container_ids == before.container_ids
