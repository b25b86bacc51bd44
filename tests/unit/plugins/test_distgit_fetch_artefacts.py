"""distgit_fetch_artefacts: running the command in the source (no container engine)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._results import jsonable
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.distgit_fetch_artefacts import DistgitFetchArtefactsPlugin
from tests.support.fake_engine import fake_tasker

KEY = "distgit_fetch_artefacts"


def _plugin(root: Path, command: str, **kwargs: Any) -> DistgitFetchArtefactsPlugin:
    workflow = SimpleNamespace(source=SimpleNamespace(path=str(root)))
    return DistgitFetchArtefactsPlugin(fake_tasker(), cast("DockerBuildWorkflow", workflow),
                                       command=command, **kwargs)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "src"
    directory.mkdir()
    (directory / "sources").write_text("0123abcd  artefact.tar.gz\n")
    return directory


def test_runs_in_the_source_with_a_shell(root: Path) -> None:
    result = _plugin(root, "echo fetched > artefact.tar.gz && pwd && echo done >&2").run()

    assert (root / "artefact.tar.gz").read_text() == "fetched\n"
    assert result.returncode == 0
    assert result.sources == "0123abcd  artefact.tar.gz\n"
    assert result.output_tail == f"{root}\ndone"
    assert result.duration is not None and result.duration >= 0
    assert not result.skipped


def test_no_sources_file_is_a_recorded_skip(tmp_path: Path) -> None:
    result = _plugin(tmp_path, "touch ran").run()
    assert result.skipped
    assert result.reason == "the source has no 'sources' file"
    assert not (tmp_path / "ran").exists()


def test_failure_reports_the_end_of_the_output(root: Path) -> None:
    command = "for i in $(seq 1 100); do echo line $i; done; echo 'oops' >&2; exit 3"
    with pytest.raises(AtomicReactorError) as info:
        _plugin(root, command).run()
    message = str(info.value)
    assert "exited with status 3" in message
    assert message.rstrip().endswith("line 100\noops")
    assert "line 62\n" in message and "line 61\n" not in message  # last 40 lines


def test_long_output_is_bounded(root: Path) -> None:
    with pytest.raises(AtomicReactorError) as info:
        _plugin(root, "head -c 100000 /dev/zero | tr '\\0' x; exit 1").run()
    assert len(str(info.value)) < 5000


def test_failure_without_output(root: Path) -> None:
    with pytest.raises(AtomicReactorError, match="exited with status 1 and printed nothing"):
        _plugin(root, "false").run()


def test_timeout_kills_the_command_and_its_children(root: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AtomicReactorError, match=r"did not finish in 0.5 s") as info:
        _plugin(root, "echo started; sleep 30 & echo $! > child.pid; wait",
                timeout=0.5).run()
    assert time.monotonic() - started < 10
    assert "started" in str(info.value)
    pid = int((root / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the command's child survived the timeout")


def test_credentials_are_redacted(root: Path) -> None:
    command = "echo https://joe:pa55word@lookaside.example/x; exit 2"
    with pytest.raises(AtomicReactorError) as info:
        _plugin(root, command).run()
    assert "pa55word" not in str(info.value)
    result = _plugin(root, "echo https://joe:pa55word@lookaside.example/x").run()
    assert "pa55word" not in str(jsonable(result))


def test_stdin_is_not_inherited(root: Path) -> None:
    result = _plugin(root, "cat; echo end").run()
    assert result.output_tail == "end"


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"command": ""}, "command"), ({"command": "   "}, "command"),
    ({"command": "x", "timeout": 0}, "timeout"), ({"command": "x", "timeout": -1}, "timeout"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(PluginConfigError) as info:
        _plugin(tmp_path, **kwargs)
    assert info.value.argument == argument


def test_schema() -> None:
    validate_plugin_args(KEY, DistgitFetchArtefactsPlugin, {"command": "fedpkg sources"})
    validate_plugin_args(KEY, DistgitFetchArtefactsPlugin, {"command": "x", "timeout": 5})
    validate_plugin_args(KEY, DistgitFetchArtefactsPlugin, {"command": "x", "timeout": 0.5})
    for args in ({}, {"command": ["fedpkg", "sources"]}, {"command": "x", "timeout": "5"},
                 {"cmd": "x"}):
        with pytest.raises(PluginConfigError):
            validate_plugin_args(KEY, DistgitFetchArtefactsPlugin, args)
