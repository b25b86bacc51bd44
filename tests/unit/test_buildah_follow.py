"""Buildah.follow: the lines a process writes to a file, read while it runs, complete."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atomic_reactor._engine.buildah.process import Buildah

WRITER = """
import sys, time
out = sys.stdout
out.write("one\\ntw"); out.flush(); time.sleep(0.2)
out.write("o\\n" + "x" * 200000 + "\\n"); out.flush(); time.sleep(0.1)
out.write("last, no newline")
"""


def _buildah() -> Buildah:
    return Buildah(binary=sys.executable)  # any executable: only follow() is used


def test_follow_reads_every_line_until_the_process_ended(tmp_path: Path) -> None:
    path = tmp_path / "output"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-c", WRITER], stdout=sink)
    lines = list(_buildah().follow(process, str(path), poll=0.01))
    assert process.wait() == 0
    assert lines == ["one\n", "two\n", "x" * 200000 + "\n", "last, no newline"]


def test_follow_of_a_silent_process(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_bytes(b"")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert list(_buildah().follow(process, str(path), poll=0.01)) == []
    assert process.returncode == 0


def _follow_a_short_process(tmp_path: Path, poll: float) -> tuple[list[str], float]:
    path = tmp_path / "output"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "import time; print('started', flush=True); "
             "time.sleep(0.3); print('done')"], stdout=sink)
    begun = time.monotonic()
    lines = list(_buildah().follow(process, str(path), poll=poll))
    return lines, time.monotonic() - begun


def test_follow_wakes_when_the_process_ends_not_a_poll_later(tmp_path: Path) -> None:
    # a poll of a minute: the end of the process (its pidfd), not the timeout, ends
    # the wait (the bound is a tenth of the poll: not a speed figure, the wake-up)
    lines, took = _follow_a_short_process(tmp_path, poll=60)
    assert lines == ["started\n", "done\n"]
    assert took < 6


def test_follow_without_pidfds_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    lines, took = _follow_a_short_process(tmp_path, poll=0.05)
    assert lines == ["started\n", "done\n"]
    assert took < 30
