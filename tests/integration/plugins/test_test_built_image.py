"""``test_built_image`` through the real pipeline: tests from a git repo run the image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor.api import build_image_here
from tests.integration.helpers import git, path_source, unique, write_context
from tests.support.env import BaseImage

KEY = "test_built_image"

TESTS_PY = '''
"""Image tests: run a container of the image (through the build's tasker, whichever
engine it drives) and check a file in it."""
import json
import os


def run(image_id, tests=None, git_repo_path=None, results_dir=None, logger=None,
        tasker=None, **kwargs):
    container = tasker.run(image_id, ["cat", kwargs["path"]])
    try:
        code = tasker.wait(container)
        content = "".join(tasker.logs(container, stderr=False, stream=False)).strip()
    finally:
        tasker.remove_container(container, force=True)
    results = {"content": content, "exit_code": code, "tests": tests,
               "engine": tasker.engine_name,
               "repo_had_helper": os.path.isfile(os.path.join(git_repo_path, "helper.txt"))}
    with open(os.path.join(results_dir, "results.json"), "w") as handle:
        json.dump(results, handle)
    results["results_file"] = os.path.join(results_dir, "results.json")
    if logger is not None:
        logger.info("image says %r", content)
    return results, code == 0 and content == kwargs["expected"]
'''


@pytest.fixture
def tests_repo(tmp_path: Path) -> Path:
    """A git repository with tests/image_tests.py on branch main."""
    repo = tmp_path / "tests-repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "image_tests.py").write_text(TESTS_PY)
    (repo / "helper.txt").write_text("data for the tests\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "image tests")
    return repo


def _build(tmp_path: Path, base_image: BaseImage, args: dict[str, Any]) -> Any:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo 'flavour: vanilla' > /etc/flavour
        """)
    return build_image_here(
        source=path_source(context),
        image=unique("art-test-tbi"),
        parent_registry=base_image.registry.address,
        prepublish_plugins=[{"name": KEY, "args": args}],
    )


def test_passing_tests(tmp_path: Path, base_image: BaseImage, tests_repo: Path,
                       engine_name: str) -> None:
    commit = git(tests_repo, "rev-parse", "HEAD")
    results = _build(tmp_path, base_image, {
        "git_uri": str(tests_repo), "git_commit": "main",
        "tests_git_path": "tests/image_tests.py", "tests": ["flavour"],
        "path": "/etc/flavour", "expected": "flavour: vanilla",
    })
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert outcome["passed"] is True
    assert outcome["image_id"] == results.image_id
    assert outcome["commit_id"] == commit
    assert outcome["tests_file"] == "tests/image_tests.py"
    assert outcome["results"]["content"] == "flavour: vanilla"
    assert outcome["results"]["tests"] == ["flavour"]
    assert outcome["results"]["repo_had_helper"] is True
    assert outcome["results"]["engine"] == engine_name  # the build's own tasker
    # the results dir was in the build's working directory: gone with it
    assert not Path(outcome["results"]["results_file"]).exists()


def test_failing_tests_fail_the_build(tmp_path: Path, base_image: BaseImage,
                                      tests_repo: Path) -> None:
    results_dir = tmp_path / "results"
    results = _build(tmp_path, base_image, {
        "git_uri": str(tests_repo), "tests_git_path": "tests/image_tests.py",
        "results_dir": str(results_dir),
        "path": "/etc/flavour", "expected": "flavour: chocolate",
    })
    assert results.is_failed()
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert "failed the tests in tests/image_tests.py" in results.error["message"]
    assert "vanilla" in results.error["message"]
    # nothing after the failing tests ran, and the results the tests wrote are kept
    assert "postbuild" not in results.plugin_results or not results.plugin_results["postbuild"]
    written = json.loads((results_dir / "results.json").read_text())
    assert written["content"] == "flavour: vanilla"


def test_missing_tests_file_fails_the_build(tmp_path: Path, base_image: BaseImage,
                                            tests_repo: Path) -> None:
    results = _build(tmp_path, base_image, {"git_uri": str(tests_repo),
                                            "tests_git_path": "nope.py"})
    assert results.is_failed()
    assert results.error is not None
    assert "no tests file nope.py" in results.error["message"]


def test_clone_is_removed(tmp_path: Path, base_image: BaseImage, tests_repo: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The clone goes even when the tests fail; nothing is left in the temp dir."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    results = _build(tmp_path, base_image, {
        "git_uri": str(tests_repo), "tests_git_path": "tests/image_tests.py",
        "path": "/etc/flavour", "expected": "something else",
    })
    assert results.is_failed()
    assert list(scratch.iterdir()) == []
