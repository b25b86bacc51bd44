"""Buildah.follow: the lines a process writes to a file, read while it runs, complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
