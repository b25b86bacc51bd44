"""Pull and push progress: bars on a real pseudo-terminal, plain lines elsewhere.

The image pushed has a fresh 12 MB layer of random bytes, so the engine reports
byte progress for it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import sys
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from atomic_reactor._registry.client import RegistryClient
from tests.integration.helpers import run_cli, unique, write_context
from tests.support.env import BaseImage, Registry

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(argv: Sequence[str], env: Mapping[str, str], columns: int = 120
               ) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a new pseudo-terminal; all its output."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
            os.execve(argv[0], list(argv), dict(env))
        finally:
            os._exit(127)
    chunks = []
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def random_layer_context(tmp_path: Path, base_image: BaseImage) -> Path:
    marker = unique("layer")
    return write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo {marker} > /marker && dd if=/dev/urandom of=/blob bs=1M count=12 2>/dev/null
        """)


def _build_args(context: Path, name: str, registry: Registry) -> list[str]:
    return ["build", "path", "--uri", str(context), "--image", name,
            "--source-registry", registry.address, "--target-registries", registry.address]


def test_push_on_a_terminal_shows_progress_bars(random_layer_context: Path,
                                                registry: Registry) -> None:
    name = f"{unique('tty')}:1"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    # our own push (the default): the new layer is uploaded while it is compressed,
    # with its byte progress reported as it goes
    code, output = run_in_pty(
        [sys.executable, "-m", "atomic_reactor", *_build_args(random_layer_context, name,
                                                              registry)], env)
    assert code == 0, output
    plain = ANSI.sub("", output)
    assert f"pushing {registry.address}/{name}" in plain
    # a bar for the new layer: bytes done/total, speed, percentage
    assert re.search(r"\d+\.\d/1[23]\.\d MB", plain), plain[-2000:]
    assert re.search(r"\d+\.\d MB/s", plain), plain[-2000:]
    assert "100%" in plain
    assert "━" in plain  # the bar itself
    assert "\x1b[" in output  # drawn with terminal control sequences
    # the build log still streamed, and the summary came after the bars
    assert "Step 2/2 : RUN echo" in plain
    assert plain.rstrip().splitlines()[-1].startswith(f"pushed {registry.address}/{name}@")
    with RegistryClient(registry.address) as client:
        assert client.get_manifest_digest(name.split(":", maxsplit=1)[0], "1")


@pytest.mark.parametrize("push_method", ["engine", "registry"])
def test_push_off_a_terminal_is_plain_lines(random_layer_context: Path,
                                            registry: Registry, push_method: str) -> None:
    name = f"{unique('plain')}:1"
    done = run_cli([*_build_args(random_layer_context, name, registry),
                    "--push-method", push_method])
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr + done.stdout
    assert "\r" not in done.stderr
    target = f"{registry.address}/{name}"
    layer_lines = [line for line in done.stderr.splitlines()
                   if line.startswith(f"pushing {target}: layer ")]
    pushed = [line for line in layer_lines if line.endswith(" MB)")]
    if push_method == "registry":
        # our push sends the ~1 MB base layer too while its layer cache is cold (docker
        # mounts it): the new layer is the one of 12-13 MB
        pushed = [line for line in pushed if not line.endswith("(1.0 MB)")]
    assert len(pushed) == 1, layer_lines
    assert re.fullmatch(rf"pushing {re.escape(target)}: layer [0-9a-f]{{12}} pushed "
                        r"\(1[23]\.\d MB\)", pushed[0])
    # one line per layer state change, not one per progress tick
    layers = [line.split(": layer ")[1].split()[0] for line in layer_lines]
    assert len(layers) == len(set(layers)) <= 3
