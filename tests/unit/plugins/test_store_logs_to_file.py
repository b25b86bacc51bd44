"""Unit tests of ``store_logs_to_file`` (no engine)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import AtomicReactorError, PluginConfigError, PullError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.store_logs_to_file import StoreLogsToFilePlugin
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)


@dataclass(frozen=True)
class Thing:
    name: str
    size: int


def _plugin(workflow: DockerBuildWorkflow, path: Path | str) -> StoreLogsToFilePlugin:
    return StoreLogsToFilePlugin(workflow.tasker, workflow, file_path=str(path))


def test_arguments_are_checked(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="needs the argument 'file_path'"):
        validate_plugin_args("store_logs_to_file", StoreLogsToFilePlugin, {})
    with pytest.raises(PluginConfigError, match="must be of type string"):
        validate_plugin_args("store_logs_to_file", StoreLogsToFilePlugin, {"file_path": 3})
    with pytest.raises(PluginConfigError, match="takes no argument 'path'"):
        validate_plugin_args("store_logs_to_file", StoreLogsToFilePlugin,
                             {"file_path": "x", "path": "y"})
    for bad in ("", "  ", f"{tmp_path}/dir/"):
        with pytest.raises(PluginConfigError) as caught:
            _plugin(workflow, bad)
        assert caught.value.argument == "file_path"


def test_writes_every_phase(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.plugin_results["prebuild"] = {"first": Thing("a", 1)}
    workflow.plugin_results["postbuild"] = {"broken": PullError("pull of x failed")}
    workflow.plugin_results["exit"] = {"earlier": ["x", 1]}
    workflow.plugins_durations["first"] = 0.5
    workflow.plugins_errors["broken"] = "pull of x failed"
    target = tmp_path / "a" / "b" / "logs.json"

    outcome = _plugin(workflow, target).run()

    assert outcome.path == str(target)
    assert outcome.size == target.stat().st_size
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    data = json.loads(target.read_text())
    assert data["document_version"] == 1
    assert data["prebuild_plugins"] == {"first": {"name": "a", "size": 1}}
    assert data["prepublish_plugins"] == {}
    assert data["postbuild_plugins"]["broken"]["error"]["type"] == "PullError"
    assert data["exit_plugins"] == {"earlier": ["x", 1]}
    assert data["plugins_durations"] == {"first": 0.5}
    assert data["plugins_errors"] == {"broken": "pull of x failed"}
    assert data["image"] == "art-unit/app:1.0"
    assert data["failed"] is False


def test_failed_build_is_recorded(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.error = PullError("pulling base failed")
    target = tmp_path / "logs.json"
    _plugin(workflow, target).run()
    data = json.loads(target.read_text())
    assert data["failed"] is True
    assert data["error"]["type"] == "PullError"
    assert data["error"]["exit_code"] == 4


def test_replaces_an_existing_file_atomically(workflow: DockerBuildWorkflow,
                                              tmp_path: Path) -> None:
    target = tmp_path / "logs.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    old_inode = target.stat().st_ino
    _plugin(workflow, target).run()
    assert target.stat().st_ino != old_inode  # a new file renamed over the old one
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert json.loads(target.read_text())["image"] == "art-unit/app:1.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs.json", "src"]


def test_relative_path_is_made_absolute(workflow: DockerBuildWorkflow, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plugin = _plugin(workflow, "out/logs.json")
    monkeypatch.chdir("/")
    assert plugin.run().path == str(tmp_path / "out" / "logs.json")
    assert (tmp_path / "out" / "logs.json").is_file()


def test_unwritable_targets(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(AtomicReactorError, match="is a directory"):
        _plugin(workflow, directory).run()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(AtomicReactorError, match="cannot write"):
        _plugin(workflow, blocker / "logs.json").run()
