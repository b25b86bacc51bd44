"""The per-build log file (atomic_reactor._buildlog), without an engine."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from atomic_reactor._buildlog import BuildLog, default_log_dir, write_output
from atomic_reactor._secrets import register_secret
from atomic_reactor.errors import InputError


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_default_location_is_a_private_directory_per_build(state_home: Path) -> None:
    first = BuildLog.open(None, "registry:5000/ns/app:1")
    second = BuildLog.open(None, "registry:5000/ns/app:1")
    assert first is not None and second is not None
    try:
        assert default_log_dir() == state_home / "atomic-reactor" / "logs"
        for log in (first, second):
            path = Path(log.path)
            assert path.name == "build.log"
            assert path.parent.parent == default_log_dir()
            assert "app_1" in path.parent.name
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first.path != second.path
    finally:
        first.close()
        second.close()


def test_relative_state_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    assert default_log_dir() == Path.home() / ".local" / "state" / "atomic-reactor" / "logs"


def test_unwritable_default_location_means_no_log_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    with caplog.at_level(logging.WARNING):
        assert BuildLog.open(None, "app") is None
    assert "no build log file" in caplog.text


def test_unwritable_explicit_path_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot write the log file"):
        BuildLog.open(str(blocker / "build.log"), "app")


def test_output_split_over_messages_stays_one_line(tmp_path: Path, state_home: Path) -> None:
    log = BuildLog.open(str(tmp_path / "b.log"), "app")
    assert log is not None
    with log.active():
        write_output("Step 1/2 : RUN echo\n")
        write_output("half a ")
        write_output("line\nand ")
        logging.getLogger("atomic_reactor.test").warning("a record in between")
        write_output("the rest\n")
        write_output("\n")
        write_output("no newline at the end")
    write_output("outside the build: nowhere")
    log.close()
    lines = Path(log.path).read_text().splitlines()
    assert lines[:3] == ["Step 1/2 : RUN echo", "half a line", "and "]
    assert lines[3].endswith("WARNING atomic_reactor.test: a record in between")
    assert lines[4:] == ["the rest", "", "no newline at the end"]


def test_each_thread_writes_to_its_own_build_log(tmp_path: Path) -> None:
    logs = [BuildLog.open(str(tmp_path / f"{n}.log"), "app") for n in range(4)]
    start = threading.Barrier(4)
    package = logging.getLogger("atomic_reactor.test.threads")
    package.setLevel(logging.INFO)

    def build(n: int) -> None:
        log = logs[n]
        assert log is not None
        with log.active():
            start.wait(timeout=30)
            for i in range(200):
                write_output(f"build {n} output {i}\n")
                package.info("build %d record %d", n, i)

    threads = [threading.Thread(target=build, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    package.setLevel(logging.NOTSET)
    for n, log in enumerate(logs):
        assert log is not None
        log.close()
        text = Path(log.path).read_text()
        assert text.count(f"build {n} output") == 200
        assert text.count(f"build {n} record") == 200
        assert all(f"build {other} " not in text for other in range(4) if other != n)


def test_secrets_are_masked_in_the_file(tmp_path: Path) -> None:
    secret = "log-secret-9f8e7d6c5b"
    register_secret(secret)
    log = BuildLog.open(str(tmp_path / "b.log"), "app")
    assert log is not None
    with log.active():
        write_output(f"echo {secret}\n")
        logging.getLogger("atomic_reactor.test").warning("token %s", secret)
    log.close()
    text = Path(log.path).read_text()
    assert secret not in text
    assert "echo ***" in text


def test_programs_without_logging_setup_still_see_warnings(tmp_path: Path) -> None:
    """The log-file handler on the atomic_reactor logger must not silence Python's
    last-resort output to stderr in a program that configured no logging."""
    code = (
        "import logging, sys\n"
        "from atomic_reactor._buildlog import BuildLog\n"
        f"log = BuildLog.open({str(tmp_path / 'x.log')!r}, 'app')\n"
        "with log.active():\n"
        "    logging.getLogger('atomic_reactor.demo').warning('visible warning')\n"
        "    logging.getLogger('atomic_reactor.demo').info('invisible info')\n"
        "log.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "visible warning"
    assert "visible warning" in (tmp_path / "x.log").read_text()
