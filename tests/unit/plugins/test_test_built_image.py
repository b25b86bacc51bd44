"""Unit tests of ``test_built_image`` with local git repositories (no engine: the tests
modules here do not run containers)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import PluginConfigError, SourceError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.test_built_image import (
    ImageTestsFailed,
    TestBuiltImagePlugin,
    _outcome,
)
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)

IMAGE = "sha256:" + "1" * 64

RECORDING_TESTS = '''
import os

def run(image_id, tests=None, git_repo_path=None, results_dir=None, logger=None, **kwargs):
    with open(os.path.join(results_dir, "out.txt"), "w") as handle:
        handle.write(image_id)
    return ({"image_id": image_id, "tests": tests, "repo": git_repo_path,
             "results_dir": results_dir, "kwargs": kwargs,
             "data": open(os.path.join(git_repo_path, "data.txt")).read().strip()},
            kwargs.get("verdict", True))
'''


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def _repo(tmp_path: Path, files: dict[str, str], symlinks: dict[str, str] | None = None
          ) -> Path:
    repo = tmp_path / "tests-repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for name, target in (symlinks or {}).items():
        (repo / name).symlink_to(target)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "tests")
    return repo


def _plugin(workflow: DockerBuildWorkflow, **args: Any) -> TestBuiltImagePlugin:
    validate_plugin_args("test_built_image", TestBuiltImagePlugin, args)
    return TestBuiltImagePlugin(workflow.tasker, workflow, **args)


@pytest.mark.parametrize(("args", "argument"), [
    ({"git_uri": ""}, "git_uri"),
    ({"git_uri": "x", "tests_git_path": "/abs/tests.py"}, "tests_git_path"),
    ({"git_uri": "x", "tests_git_path": "../tests.py"}, "tests_git_path"),
    ({"git_uri": "x", "tests_git_path": "a/../../tests.py"}, "tests_git_path"),
    ({"git_uri": "x", "tests_git_path": "tests.sh"}, "tests_git_path"),
    ({"git_uri": "x", "results_dir": ""}, "results_dir"),
])
def test_bad_arguments(workflow: DockerBuildWorkflow, args: dict[str, Any],
                       argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        _plugin(workflow, **args)
    assert caught.value.argument == argument


def test_argument_types_are_checked() -> None:
    with pytest.raises(PluginConfigError, match="needs the argument 'git_uri'"):
        validate_plugin_args("test_built_image", TestBuiltImagePlugin, {})
    with pytest.raises(PluginConfigError, match="tests"):
        validate_plugin_args("test_built_image", TestBuiltImagePlugin,
                             {"git_uri": "x", "tests": "all"})
    # anything else goes to the tests (1.6 passed extra arguments on)
    validate_plugin_args("test_built_image", TestBuiltImagePlugin,
                         {"git_uri": "x", "config_file": "c.json"})


@pytest.mark.parametrize(("value", "expected"), [
    (({"a": 1}, True), ({"a": 1}, True)),
    ([["r"], False], (["r"], False)),
    ((False, {"r": 1}), ({"r": 1}, False)),  # (passed, results) is understood too
    ((True, False), (True, False)),  # both bools: 1.6's order
])
def test_outcome(value: Any, expected: tuple[Any, bool]) -> None:
    assert _outcome(value) == expected


@pytest.mark.parametrize("value", [True, None, ("a", "b"), (1, 2, True)])
def test_outcome_rejects(value: Any) -> None:
    with pytest.raises(TypeError):
        _outcome(value)


def test_passing_tests(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"tests.py": RECORDING_TESTS, "data.txt": "v1\n"})
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "data.txt").write_text("v2\n")
    _git(repo, "commit", "-q", "-am", "v2")
    _git(repo, "tag", "v2")
    (repo / "data.txt").write_text("v3\n")
    _git(repo, "commit", "-q", "-am", "v3")

    workflow.workdir = str(tmp_path / "workdir")
    outcome = _plugin(workflow, git_uri=str(repo), git_commit="v2", image_id=IMAGE,
                      tests=["one", "two"], verdict=True, config_file="c.json").run()
    assert outcome.passed is True
    assert outcome.image_id == IMAGE
    assert outcome.commit_id == _git(repo, "rev-parse", "v2") != first
    results = outcome.results
    assert results["data"] == "v2"
    assert results["tests"] == ["one", "two"]
    assert results["kwargs"] == {"verdict": True, "config_file": "c.json"}
    assert results["results_dir"] == str(tmp_path / "workdir" / "test_built_image" / "results")
    assert Path(results["results_dir"], "out.txt").read_text() == IMAGE
    # the clone was in the working directory and is gone; the results dir stays
    assert not Path(results["repo"]).exists()
    assert os.listdir(tmp_path / "workdir" / "test_built_image") == ["results"]


TASKER_TESTS = '''
def run(image_id, tests=None, git_repo_path=None, results_dir=None, logger=None,
        tasker=None, **kwargs):
    return {"engine": tasker.engine_name, "same": id(tasker), "kwargs": kwargs}, True
'''


def test_a_run_naming_tasker_gets_the_builds_tasker(workflow: DockerBuildWorkflow,
                                                    tmp_path: Path) -> None:
    # only a run() that names the parameter gets it (test_passing_tests: a bare
    # **kwargs does not), so 1.6 tests files see the arguments they always saw
    repo = _repo(tmp_path, {"tests.py": TASKER_TESTS})
    workflow.workdir = str(tmp_path / "workdir")
    outcome = _plugin(workflow, git_uri=str(repo), image_id=IMAGE, extra="x").run()
    assert outcome.results == {"engine": workflow.tasker.engine_name,
                               "same": id(workflow.tasker), "kwargs": {"extra": "x"}}


def test_failing_tests_raise_and_the_clone_goes(workflow: DockerBuildWorkflow,
                                                tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"t/tests.py": RECORDING_TESTS, "data.txt": "v1\n"})
    results_dir = tmp_path / "results"
    plugin = _plugin(workflow, git_uri=str(repo), image_id=IMAGE, tests_git_path="t/tests.py",
                     results_dir=str(results_dir), verdict=False)
    assert workflow.workdir is None  # not in a build: the clone goes to a temp dir
    with pytest.raises(ImageTestsFailed) as caught:
        plugin.run()
    message = str(caught.value)
    assert f"image {IMAGE[:19]} failed the tests in t/tests.py of {repo}" in message
    assert "'kwargs': {'verdict': False}" in message
    assert (results_dir / "out.txt").read_text() == IMAGE
    clone = [line for line in message.split(", ") if line.startswith("'repo': ")]
    assert clone and not Path(clone[0].split("'")[3]).exists()


@pytest.mark.parametrize(("source", "match"), [
    ("def run(**kwargs):\n    raise ValueError('no container runtime')\n",
     "the tests in tests.py raised ValueError: no container runtime"),
    ("x = 1\n", "tests.py defines no run\\(\\) function"),
    ("def run(:\n", "loading tests.py failed: SyntaxError"),
    ("import no_such_module_here\n", "loading tests.py failed: ModuleNotFoundError"),
    ("def run(**kwargs):\n    return 'fine'\n",
     "the tests in tests.py raised TypeError: run\\(\\) must return a pair"),
    ("def run(image_id):\n    return {}, True\n",
     "the tests in tests.py raised TypeError: .*unexpected keyword argument"),
])
def test_broken_tests_modules(workflow: DockerBuildWorkflow, tmp_path: Path, source: str,
                              match: str) -> None:
    repo = _repo(tmp_path, {"tests.py": source})
    with pytest.raises(ImageTestsFailed, match=match):
        _plugin(workflow, git_uri=str(repo), image_id=IMAGE).run()


def test_missing_or_escaping_tests_file(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def run(**kw):\n    return {}, True\n")
    repo = _repo(tmp_path, {"README": "x"}, symlinks={"link.py": str(outside)})
    with pytest.raises(SourceError, match=r"no tests file tests\.py in"):
        _plugin(workflow, git_uri=str(repo), image_id=IMAGE).run()
    with pytest.raises(SourceError, match=r"link\.py points outside the repository"):
        _plugin(workflow, git_uri=str(repo), image_id=IMAGE, tests_git_path="link.py").run()


def test_unknown_commit(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"tests.py": RECORDING_TESTS})
    with pytest.raises(SourceError, match="not found"):
        _plugin(workflow, git_uri=str(repo), git_commit="no-such-branch", image_id=IMAGE).run()


def test_needs_a_built_image(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"tests.py": RECORDING_TESTS})
    with pytest.raises(Exception, match="needs the source"):
        _plugin(workflow, git_uri=str(repo)).run()
