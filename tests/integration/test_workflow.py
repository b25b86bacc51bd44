"""The whole workflow through the API: pull, build, push, plugins, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import BuildFailed, PluginConfigError, PluginFailed, SourceError
from atomic_reactor.inner import BUILD_STEP_KEY, DockerBuildWorkflow
from tests.integration.helpers import (
    git,
    git_repo,
    path_source,
    run_failed,
    step_line,
    unique,
    write_context,
)
from tests.support.env import BaseImage, Registry

PLUGINS = '''
import json
import os
from atomic_reactor.plugin import ExitPlugin, PostBuildPlugin, PreBuildPlugin


class Explode(PreBuildPlugin):
    key = "explode"

    def __init__(self, tasker, workflow, message: str = "boom"):
        super().__init__(tasker, workflow)
        self.message = message

    def run(self):
        raise ValueError(self.message)


class Produce(PreBuildPlugin):
    key = "produce"

    def run(self):
        return {"answer": 42}


class Consume(PostBuildPlugin):
    key = "consume"

    def run(self):
        return {"seen": self.workflow.plugin_result("produce"), "image_id": self.image_id}


class RecordExit(ExitPlugin):
    key = "record_exit"

    def __init__(self, tasker, workflow, path: str):
        super().__init__(tasker, workflow)
        self.path = path

    def run(self):
        wf = self.workflow
        state = {
            "failed": wf.build_process_failed,
            "cancelled": wf.cancelled is not None,
            "error": str(wf.error) if wf.error else None,
            "source_exists": os.path.isdir(wf.source.tmpdir),
        }
        with open(self.path, "w") as handle:
            json.dump(state, handle)
        return state
'''


@pytest.fixture
def plugin_file(tmp_path: Path) -> str:
    path = tmp_path / "test_plugins.py"
    path.write_text(PLUGINS)
    return str(path)


def _context(tmp_path: Path, base_image: BaseImage, extra: str = "") -> Path:
    return write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo hello > /hello
        {extra}
        """)


def test_build_image_here_pulls_builds_pushes(tmp_path: Path, base_image: BaseImage,
                                              registry: Registry, engine_name: str) -> None:
    context = _context(tmp_path, base_image, "LABEL stage=full")
    name = unique()
    results = build_image_here(path_source(context), f"{name}:1.0",
                               parent_registry=registry.address,
                               target_registries=[registry.address])
    assert not results.is_failed(), results.error
    results.raise_for_status()
    assert results.image_id and results.image_id.startswith("sha256:")
    assert results.built_img_inspect and \
        results.built_img_inspect["Config"]["Labels"]["stage"] == "full"
    assert results.built_img_info and results.built_img_info["Id"] == results.image_id
    assert results.base_img_inspect and results.base_img_inspect["Id"] == base_image.image_id
    assert results.base_img_info is not None
    assert results.dockerfile and "LABEL stage=full" in results.dockerfile
    step = step_line(engine_name, 3, 3, "LABEL stage=full")
    assert any(step in line for line in results.build_logs), results.build_logs
    # the digest per registry is the one the registry serves
    pushed_ref = f"{registry.address}/{name}:1.0"
    digest = results.digests[registry.address][pushed_ref]
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name, "1.0") == digest
    # timing covers every plugin and the build step
    for key in ("pull_base_image", BUILD_STEP_KEY, "tag_and_push"):
        assert key in results.plugins_timestamps
        assert results.plugins_durations[key] >= 0
    assert results.plugins_errors == {}
    pulled = results.base_plugins_output["pull_base_image"]
    assert pulled[0]["pulled_from"] == base_image.pushed
    assert pulled[0]["digest"].startswith("sha256:")
    # the base's digest is the one its registry serves for the tag pulled
    base_registry, _, base_name = base_image.pushed.partition("/")
    base_repo, _, base_tag = base_name.rpartition(":")
    with RegistryClient(base_registry) as client:
        assert client.get_manifest_digest(base_repo, base_tag) == pulled[0]["digest"]
    # JSON round trip keeps what matters
    again = type(results).from_dict(json.loads(results.to_json()))
    assert again.digests == results.digests and again.image_id == results.image_id


def test_failing_run_is_a_failed_result_and_exit_plugins_run(
        tmp_path: Path, base_image: BaseImage, registry: Registry, plugin_file: str,
        engine_name: str) -> None:
    context = _context(tmp_path, base_image, "RUN echo failing-now && false")
    record = tmp_path / "exit.json"
    results = build_image_here(
        path_source(context), unique(), parent_registry=registry.address,
        target_registries=[registry.address], plugin_files=[plugin_file],
        exit_plugins=[{"name": "record_exit", "args": {"path": str(record)}}])
    assert results.is_failed()
    assert results.fail_reason and run_failed(engine_name, 1) in results.fail_reason
    assert any("failing-now" in line for line in results.build_logs)
    assert results.pushed == ()
    assert "tag_and_push" not in results.plugins_timestamps
    assert BUILD_STEP_KEY in results.plugins_errors
    state = json.loads(record.read_text())
    assert state["failed"] is True and state["source_exists"] is True
    with pytest.raises(BuildFailed):
        results.raise_for_status()
    assert results.exit_code == 3


def test_plugin_that_raises_fails_build_and_exit_plugins_run(
        tmp_path: Path, base_image: BaseImage, registry: Registry, plugin_file: str) -> None:
    context = _context(tmp_path, base_image)
    record = tmp_path / "exit.json"
    results = build_image_here(
        path_source(context), unique(), parent_registry=registry.address,
        plugin_files=[plugin_file],
        prebuild_plugins=[{"name": "explode", "args": {"message": "kaboom"}}],
        exit_plugins=[{"name": "record_exit", "args": {"path": str(record)}}])
    assert results.is_failed()
    assert results.image_id is None  # nothing was built
    assert results.plugins_errors["explode"] == "ValueError: kaboom"
    assert results.error and results.error["plugin"] == "explode"
    with pytest.raises(PluginFailed) as info:
        results.raise_for_status()
    assert info.value.exit_code == 5
    assert json.loads(record.read_text())["error"] == "explode: ValueError: kaboom"


def test_plugin_allowed_to_fail_and_results_between_plugins(
        tmp_path: Path, base_image: BaseImage, registry: Registry, plugin_file: str) -> None:
    context = _context(tmp_path, base_image)
    results = build_image_here(
        path_source(context), unique(), parent_registry=registry.address,
        plugin_files=[plugin_file],
        prebuild_plugins=[{"name": "explode", "is_allowed_to_fail": True},
                          {"name": "produce"},
                          {"name": "not_installed_anywhere", "required": False}],
        postbuild_plugins=[{"name": "consume"}])
    assert not results.is_failed(), results.error
    assert "explode" in results.plugins_errors
    assert "not_installed_anywhere" not in results.plugins_timestamps
    consumed = results.built_img_plugins_output["consume"]
    assert consumed == {"seen": {"answer": 42}, "image_id": results.image_id}


def test_source_failure_still_runs_exit_plugins(tmp_path: Path, plugin_file: str) -> None:
    record = tmp_path / "exit.json"
    workflow = DockerBuildWorkflow(
        {"provider": "git", "uri": str(tmp_path / "not-a-repo")}, unique(),
        plugin_files=[plugin_file],
        exit_plugins=[{"name": "record_exit", "args": {"path": str(record)}}])
    results = workflow.build_container_image()
    assert results.is_failed()
    assert isinstance(results.exception, SourceError)
    assert results.exit_code == 2
    assert json.loads(record.read_text())["failed"] is True
    assert "fetch_source" in results.plugins_errors


def test_bad_plugin_argument_is_refused_before_anything_runs(
        tmp_path: Path, base_image: BaseImage, registry: Registry, tasker: DockerTasker) -> None:
    context = _context(tmp_path, base_image)
    before = {i.id for i in tasker.list_images()}
    with pytest.raises(PluginConfigError) as info:
        build_image_here(path_source(context), unique(), parent_registry=registry.address,
                         prebuild_plugins=[{"name": "pull_base_image",
                                            "args": {"parent_registy": "typo"}}])
    assert "pull_base_image" in str(info.value) and "parent_registy" in str(info.value)
    assert {i.id for i in tasker.list_images()} <= before


def test_git_source_records_the_commit_built(tmp_path: Path, base_image: BaseImage,
                                             registry: Registry) -> None:
    repo = git_repo(tmp_path / "repo", f"FROM {base_image.repo}\nLABEL v=1\n")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "Dockerfile").write_text(f"FROM {base_image.repo}\nLABEL v=2\n")
    git(repo, "commit", "-qam", "second")
    results = build_image_here(
        {"provider": "git", "uri": f"file://{repo}",
         "provider_params": {"git_commit": first[:8]}},
        unique(), parent_registry=registry.address)
    assert not results.is_failed(), results.error
    assert results.source["vcs_ref"] == first
    labels: dict[str, Any] = results.built_img_inspect["Config"]["Labels"]  # type: ignore[index]
    assert labels == {"v": "1"}


def test_dont_pull_base_image_uses_local_image(tmp_path: Path, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"FROM {base_image.local}\n")
    results = build_image_here(path_source(context), unique(), dont_pull_base_image=True)
    assert not results.is_failed(), results.error
    assert "pull_base_image" not in results.plugins_timestamps
