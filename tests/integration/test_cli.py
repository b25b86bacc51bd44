"""The ``atomic-reactor`` command, run as a subprocess against the real engine.

Bad input must end in one clear line on stderr and a non-zero exit, leave no
container, temporary directory or stray image behind, and never print a credential.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import ImageNotFound
from tests.integration.helpers import (
    Outcome,
    git_repo,
    step_line,
    unique,
    write_context,
    write_plugin_file,
)
from tests.support.env import BaseImage, Registry, find_free_port

SECRET = "s3cr3t-never-printed"


def _assert_clean_failure(outcome: Outcome, code: int, *needles: str) -> None:
    lines = outcome.stderr.strip().splitlines()
    assert outcome.code == code, outcome.stderr
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("atomic-reactor: error: "), outcome.stderr
    for needle in needles:
        assert needle in last, last
    assert "Traceback" not in outcome.stderr
    assert SECRET not in outcome.stderr + outcome.stdout
    assert outcome.tmp_leftovers == []
    assert outcome.new_containers == []
    assert outcome.new_images == []


@pytest.fixture
def context(tmp_path: Path, base_image: BaseImage) -> Path:
    return write_context(tmp_path / "src", f"FROM {base_image.repo}\nRUN echo hi > /hi\n")


def test_build_path_success_writes_metadata_and_iidfile(
        cli: Callable[..., Outcome], context: Path, registry: Registry, tmp_path: Path,
        engine_name: str) -> None:
    name = unique()
    metadata = tmp_path / "meta.json"
    iidfile = tmp_path / "iid"
    out = cli("build", "path", "--uri", f"file://{context}", "--image", f"{name}:1",
              "--source-registry", registry.address, "--target-registries", registry.address,
              "--metadata-file", str(metadata), "--iidfile", str(iidfile))
    assert out.code == 0, out.stderr
    assert step_line(engine_name, 2, 2, "RUN echo hi > /hi") in out.stderr  # log streamed
    data = json.loads(metadata.read_text())
    digest = data["digests"][registry.address][f"{registry.address}/{name}:1"]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name, "1") == digest
    assert f"pushed {registry.address}/{name}:1@{digest}" in out.stdout
    assert iidfile.read_text() == data["image_id"]
    assert out.tmp_leftovers == []
    assert out.new_containers == []


def test_build_json_with_substitutions(cli: Callable[..., Outcome], context: Path,
                                       registry: Registry, tmp_path: Path) -> None:
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": "file:///replaced/below"},
        "image": "replaced-below",
        "prebuild_plugins": [{"name": "pull_base_image", "args": {}}],
        "postbuild_plugins": [{"name": "tag_and_push", "args": {"registries": {}}}],
    }))
    name = unique()
    out = cli("build", "json", str(build_json),
              "--substitute", f"source.uri=file://{context}",
              "--substitute", f"image={name}:2",
              "--substitute", f"prebuild_plugins.pull_base_image.parent_registry="
                              f"{registry.address}",
              "--substitute", "postbuild_plugins.tag_and_push.registries="
                              f'{{"{registry.address}": {{"insecure": true}}}}')
    assert out.code == 0, out.stderr
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == ["2"]


def test_load_plugin_from_file(cli: Callable[..., Outcome], context: Path, registry: Registry,
                               tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    plugin = write_plugin_file(tmp_path / "myplugin.py", f'''
        from atomic_reactor.plugin import ExitPlugin

        class Marker(ExitPlugin):
            key = "write_marker"

            def run(self):
                open({str(marker)!r}, "w").write(self.workflow.image_id or "none")
        ''')
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": f"file://{context}"}, "image": unique(),
        "parent_registry": registry.address,
        "exit_plugins": [{"name": "write_marker"}]}))
    out = cli("build", "json", str(build_json), "--load-plugin", str(plugin))
    assert out.code == 0, out.stderr
    assert marker.read_text().startswith("sha256:")


def test_missing_build_image_says_so(cli: Callable[..., Outcome], context: Path) -> None:
    # the privileged method exists; a build image the engine does not have is bad input,
    # named in one line that says how to make one
    missing = unique("art-test-no-build-image")
    out = cli("build", "path", "--uri", str(context), "--image", unique(),
              "--method", "privileged", "--build-image", missing)
    _assert_clean_failure(out, 2, f"build image {missing} does not exist on the engine")
    assert "create-build-image" in out.stderr


# -- bad input ------------------------------------------------------------------------------


def test_missing_source_path(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    out = cli("build", "path", "--uri", str(tmp_path / "nowhere"), "--image", unique())
    _assert_clean_failure(out, 2, "nowhere")


def test_dockerfile_without_from(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    src = write_context(tmp_path / "nofrom", "RUN echo no base\n")
    out = cli("build", "path", "--uri", str(src), "--image", unique())
    _assert_clean_failure(out, 2, "no FROM")


def test_git_uri_not_a_repository(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = cli("build", "git", "--uri", str(plain), "--image", unique())
    _assert_clean_failure(out, 2, str(plain))


def test_commit_not_in_repository(cli: Callable[..., Outcome], tmp_path: Path,
                                  base_image: BaseImage) -> None:
    repo = git_repo(tmp_path / "repo", f"FROM {base_image.repo}\n")
    out = cli("build", "git", "--uri", str(repo), "--commit", "deadbeef", "--image", unique())
    _assert_clean_failure(out, 2, "deadbeef")


def test_invalid_image_name(cli: Callable[..., Outcome], context: Path) -> None:
    out = cli("build", "path", "--uri", str(context), "--image", "Not/A:Valid:Name")
    _assert_clean_failure(out, 2, "invalid image name")


def test_unreachable_parent_registry(cli: Callable[..., Outcome], context: Path) -> None:
    dead = f"127.0.0.1:{find_free_port()}"
    out = cli("build", "path", "--uri", str(context), "--image", unique(),
              "--source-registry", dead)
    _assert_clean_failure(out, 4, dead)


def test_unreachable_target_registry(cli: Callable[..., Outcome], context: Path,
                                     registry: Registry, tasker: DockerTasker) -> None:
    dead = f"127.0.0.1:{find_free_port()}"
    name = unique()
    out = cli("build", "path", "--uri", str(context), "--image", name,
              "--source-registry", registry.address, "--target-registries", dead)
    assert out.code == 4, out.stderr
    assert dead in out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr
    # the built image stays (it is the product); the failed push leaves no registry tag
    built = tasker.image_info(f"{name}:latest")
    assert not any(n.startswith(dead) for n in built.names), built.names
    assert tasker.find_image(f"{dead}/{name}:latest") is None
    assert out.tmp_leftovers == [] and out.new_containers == []


def test_wrong_credentials(cli: Callable[..., Outcome], context: Path, registry: Registry,
                           auth_registry: Registry, tmp_path: Path) -> None:
    config = tmp_path / "dockercfg"
    config.mkdir()
    token = base64.b64encode(f"tester:{SECRET}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.address:
                                                              {"auth": token}}}))
    out = cli("-v", "build", "path", "--uri", str(context), "--image", unique(),
              "--source-registry", registry.address,
              "--target-registries", auth_registry.address,
              env={"DOCKER_CONFIG": str(config)})
    assert out.code == 4, out.stderr
    assert SECRET not in out.stderr + out.stdout
    assert token not in out.stderr + out.stdout
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("atomic-reactor: error: tag_and_push:")


def test_malformed_build_json(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"image": "x",\n "source": }\n')
    out = cli("build", "json", str(bad))
    _assert_clean_failure(out, 2, "line 2")


def test_unknown_required_plugin(cli: Callable[..., Outcome], context: Path,
                                 tmp_path: Path) -> None:
    build_json = tmp_path / "b.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": f"file://{context}"}, "image": unique(),
        "prebuild_plugins": [{"name": "no_such_plugin"}]}))
    out = cli("build", "json", str(build_json))
    _assert_clean_failure(out, 2, "no_such_plugin")


def test_plugin_that_raises(cli: Callable[..., Outcome], context: Path, registry: Registry,
                            tmp_path: Path) -> None:
    plugin = write_plugin_file(tmp_path / "raiser.py", f'''
        from atomic_reactor.plugin import PreBuildPlugin

        class Raiser(PreBuildPlugin):
            key = "raiser"

            def run(self):
                raise RuntimeError("plugin exploded ({SECRET[:3]}...)")
        ''')
    build_json = tmp_path / "b.json"
    build_json.write_text(json.dumps({
        "source": {"provider": "path", "uri": f"file://{context}"}, "image": unique(),
        "dont_pull_base_image": True,
        "prebuild_plugins": [{"name": "raiser"}]}))
    out = cli("build", "json", str(build_json), "--load-plugin", str(plugin))
    _assert_clean_failure(out, 5, "raiser", "plugin exploded")


def test_verbose_shows_traceback(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    out = cli("-v", "build", "path", "--uri", str(tmp_path / "nowhere"), "--image", unique())
    assert out.code == 2
    assert "Traceback" in out.stderr


def test_a_docker_build_imports_neither_the_docker_sdk_nor_requests(
        tasker: DockerTasker, context: Path, registry: Registry, tmp_path: Path) -> None:
    """The docker backend speaks the Engine API itself: a plain build (base image from a
    registry, no push) never imports the Docker SDK, requests or urllib3."""
    import subprocess
    import sys

    name = f"{unique()}:1"
    metadata = tmp_path / "meta.json"
    script = f"""
import sys
from atomic_reactor.cli.main import main
code = main(["build", "path", "--uri", "file://{context}", "--image", {name!r},
             "--engine", "docker", "--source-registry", {registry.address!r},
             "--metadata-file", {str(metadata)!r}])
print([m for m in ("docker", "requests", "urllib3") if m in sys.modules])
sys.exit(code)
"""
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=False, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
        data = json.loads(metadata.read_text())
        assert tasker.image_info(name).id == data["image_id"]  # really built
    finally:
        with contextlib.suppress(ImageNotFound):
            tasker.remove_image(name, force=True)
