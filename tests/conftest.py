"""Root conftest: makes ``tests.support`` importable whatever pytest's import mode.

With the default ``prepend`` import mode, pytest already puts the repository
root on ``sys.path`` because ``tests`` is a package; ``--import-mode=importlib``
does not, so do it explicitly (idempotent).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine", choices=("docker", "buildah"), default=None,
        help="container engine the integration tests run against (default: "
             "$AR_TEST_ENGINE, else docker); with buildah only the tests marked "
             "both_engines and those under tests/integration/buildah run")


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the processes the tests start, as in an interactive shell.

    A shell without job control starts background commands with SIGINT ignored
    (``bash .ci/run &``, ``nohup``), and an ignored signal stays ignored across exec:
    atomic-reactor then rightly keeps ignoring it, and the tests that cancel a build
    with SIGINT would wait for nothing. Here the disposition is put back to Python's
    default, which the children inherit as "not ignored".
    """
    del config
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Build log files (``$XDG_STATE_HOME/atomic-reactor/logs``) go to a temporary
    directory, for this process and the CLI subprocesses it starts."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous
