"""``test_built_image``: run a test suite from a git repository against the built image.

The tests are a Python file in a git repository (``tests_git_path``, default
``tests.py``) with a function::

    def run(image_id, tests=None, git_repo_path=None, results_dir=None, logger=None,
            **kwargs):
        ...
        return results, passed

``passed`` is a bool, ``results`` anything JSON-able describing the outcome. The
plugin's extra arguments are passed on as ``kwargs``.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from atomic_reactor._git import one_line, redact_uri
from atomic_reactor._modules import exec_file
from atomic_reactor._results import jsonable
from atomic_reactor.errors import (
    ImageTestsFailed,
    PluginConfigError,
    SourceError,
)
from atomic_reactor.plugin import PrePublishPlugin
from atomic_reactor.source import GitSource

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["ImageTestResults", "ImageTestsFailed", "TestBuiltImagePlugin"]




@dataclass(frozen=True)
class ImageTestResults:
    """The outcome of a passing test run."""

    passed: bool
    image_id: str
    tests_file: str
    commit_id: str | None
    duration: float
    results: Any


def _summary(results: Any, limit: int = 300) -> str:
    text = one_line(str(jsonable(results)))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _takes_tasker(run: Any) -> bool:
    """Whether the tests' ``run()`` names a ``tasker`` parameter (then it gets the
    build's tasker; a bare ``**kwargs`` does not ask for it: 1.6 tests files stay as
    they were)."""
    try:
        parameters = inspect.signature(run).parameters
    except (TypeError, ValueError):
        return False
    found = parameters.get("tasker")
    return found is not None and found.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                inspect.Parameter.KEYWORD_ONLY)


def _outcome(value: Any) -> tuple[Any, bool]:
    """(results, passed) from what the tests' ``run()`` returned.

    atomic-reactor 1.6 defined ``return results, passed``; ``(passed, results)`` is
    accepted too when only the first element is a bool.
    """
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError("run() must return a pair (results, passed)")
    first, second = value
    if isinstance(second, bool):
        return first, second
    if isinstance(first, bool):
        return second, first
    raise TypeError("run() must return (results, passed) with passed a bool")


class TestBuiltImagePlugin(PrePublishPlugin):
    """Clone a git repository of tests, load its tests file and run it against the
    built image; a failing test run fails the build. The clone is removed afterwards.

    The tests file (``tests_git_path``) must define ``run(image_id, tests,
    git_repo_path, results_dir, logger, **kwargs)`` returning ``(results, passed)``
    (atomic-reactor 1.6's contract); extra arguments of this plugin are passed on as
    keyword arguments. ``results_dir`` is created for the tests; a relative one lives
    in the build's working directory, which is removed after the build. A ``run()``
    with a parameter named ``tasker`` also gets the build's ``DockerTasker``: tests that
    run the image through it (``tasker.run_container``, ``tasker.logs``...) work with
    every engine, buildah too.

    Result: an :class:`ImageTestResults` (image tested, tests file, commit, duration
    and the ``results`` the tests returned). Failing tests raise
    :class:`ImageTestsFailed` naming the tests file and the results.
    """

    __test__ = False  # not a pytest test class, whatever its name says
    key = "test_built_image"
    per_platform = True
    is_allowed_to_fail = False

    def __init__(
        self,
        tasker: DockerTasker,
        workflow: DockerBuildWorkflow,
        git_uri: str,
        git_commit: str | None = None,
        image_id: str | None = None,
        tests_git_path: str = "tests.py",
        tests: list[str] | None = None,
        results_dir: str = "results",
        **kwargs: Any,
    ) -> None:
        """
        :param git_uri: the git repository with the tests (URL or local path)
        :param git_commit: the commit, branch or tag to check out (default: the default branch)
        :param image_id: the image to test (default: the image this build built)
        :param tests_git_path: the tests file, relative to the repository root
        :param tests: names of the tests to run, passed to the tests (default: all)
        :param results_dir: directory for the tests to write results to (relative: in the
            build's working directory)
        :param kwargs: further keyword arguments for the tests' ``run()``
        """
        super().__init__(tasker, workflow)

        def bad(argument: str, what: str) -> PluginConfigError:
            return PluginConfigError(f"plugin {self.key}: argument {argument} {what}",
                                     plugin=self.key, argument=argument)

        if not git_uri or not git_uri.strip():
            raise bad("git_uri", "must not be empty")
        parts = tests_git_path.replace(os.sep, "/").split("/")
        if not tests_git_path or os.path.isabs(tests_git_path) or ".." in parts \
                or "\0" in tests_git_path:
            raise bad("tests_git_path", "must be a path relative to the repository root, "
                                        "without '..'")
        if not tests_git_path.endswith(".py"):
            raise bad("tests_git_path", "must name a Python file (*.py)")
        if not results_dir or "\0" in results_dir:
            raise bad("results_dir", "must be a directory path")
        self.git_uri = git_uri
        self.git_commit = git_commit or None
        self.image_to_test = image_id or None
        self.tests_git_path = tests_git_path
        self.tests = list(tests) if tests is not None else None
        self.results_dir = results_dir
        self.kwargs = kwargs
        self._scratch: str | None = None

    def _results_dir(self) -> str:
        if os.path.isabs(self.results_dir):
            path = self.results_dir
        else:
            base = self.workflow.workdir
            if base is None:  # run outside a build: a scratch dir of its own
                base = self._scratch = tempfile.mkdtemp(prefix="atomic-reactor-tests-")
            path = os.path.join(base, self.key, self.results_dir)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ImageTestsFailed(
                f"cannot create results_dir {path}: {exc.strerror or exc}") from None
        return path

    def _load(self, tests_file: str) -> ModuleType:
        digest = hashlib.sha256(tests_file.encode()).hexdigest()[:12]
        name = f"atomic_reactor_image_tests_{digest}_{time.monotonic_ns()}"
        try:
            module = exec_file(tests_file, name)
        except Exception as exc:
            raise ImageTestsFailed(
                f"loading {self.tests_git_path} failed: {type(exc).__name__}: "
                f"{one_line(str(exc))}") from exc
        return module

    def run(self) -> ImageTestResults:
        image_id = self.image_to_test or self.image_id
        shown = redact_uri(self.git_uri)
        tmpdir = os.path.join(self.workflow.workdir, self.key, "source") \
            if self.workflow.workdir else None
        source = GitSource("git", self.git_uri,
                           provider_params={"git_commit": self.git_commit}
                           if self.git_commit else None,
                           tmpdir=tmpdir)
        module: ModuleType | None = None
        try:
            repo_path = source.get()
            root = os.path.realpath(repo_path)
            tests_file = os.path.realpath(os.path.join(root, self.tests_git_path))
            if os.path.commonpath([tests_file, root]) != root:
                raise SourceError(f"{self.tests_git_path} points outside the repository {shown}")
            if not os.path.isfile(tests_file):
                raise SourceError(f"no tests file {self.tests_git_path} in {shown}")
            self.log.info("running %s of %s (%s) against image %s", self.tests_git_path,
                          shown, source.commit_id, image_id)
            module = self._load(tests_file)
            run = getattr(module, "run", None)
            if not callable(run):
                raise ImageTestsFailed(f"{self.tests_git_path} defines no run() function")
            started = time.monotonic()
            try:
                extra = dict(self.kwargs)
                if _takes_tasker(run):
                    extra.setdefault("tasker", self.tasker)
                returned = run(image_id=image_id, tests=self.tests, git_repo_path=repo_path,
                               results_dir=self._results_dir(), logger=self.log, **extra)
                results, passed = _outcome(returned)
            except ImageTestsFailed:
                raise
            except Exception as exc:
                raise ImageTestsFailed(
                    f"the tests in {self.tests_git_path} raised {type(exc).__name__}: "
                    f"{one_line(str(exc))}") from exc
            duration = round(time.monotonic() - started, 3)
        finally:
            if module is not None:
                sys.modules.pop(module.__name__, None)
            source.cleanup()
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
        if not passed:
            self.log.error("tests failed: %s", _summary(results))
            raise ImageTestsFailed(
                f"image {image_id[:19]} failed the tests in {self.tests_git_path} of {shown}: "
                f"{_summary(results)}")
        self.log.info("tests passed in %.1f s", duration)
        return ImageTestResults(passed=True, image_id=image_id, tests_file=self.tests_git_path,
                                commit_id=source.commit_id, duration=duration,
                                results=jsonable(results))
