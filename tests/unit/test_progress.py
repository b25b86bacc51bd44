"""The command line's progress renderers (atomic_reactor.cli.progress), fed by hand.

The renderers only see TransferProgress values; the real engine's events are
covered by tests/integration/terminal.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from atomic_reactor._engine.base import EngineEvent
from atomic_reactor.cli.progress import (
    PlainProgress,
    TerminalProgress,
    format_size,
    make_renderer,
)
from atomic_reactor.core import TransferProgress

REF = "127.0.0.1:5000/app:1"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def push_updates(layer: str = "0e184b2f3867aa", total: int = 39_200_000
                 ) -> list[TransferProgress]:
    def event(**kwargs: object) -> TransferProgress:
        return TransferProgress("push", REF, "event", EngineEvent(**kwargs))  # type: ignore[arg-type]

    updates = [TransferProgress("push", REF, "start"),
               event(message=f"{layer}: Preparing", layer=layer, status="Preparing"),
               event(message="761559ed08aa: Layer already exists", layer="761559ed08aa",
                     status="Layer already exists")]
    updates += [event(layer=layer, status="Pushing", current=done, total=total)
                for done in range(0, total, total // 50)]
    updates += [event(message=f"{layer}: Pushed", layer=layer, status="Pushed"),
                event(message="1: digest: sha256:" + "a" * 64 + " size: 739",
                      digest="sha256:" + "a" * 64, size=739),
                TransferProgress("push", REF, "done")]
    return updates


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"),
                                            (39_200_000, "39.2 MB"), (3 * 10**9, "3.0 GB")])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_plain_progress_one_line_per_layer_state_change(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    renderer = PlainProgress()
    with caplog.at_level(logging.INFO, logger="atomic_reactor.cli.progress"):
        for update in push_updates():
            renderer(update)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"pushing {REF}: layer 761559ed08aa already in the registry",
        f"pushing {REF}: layer 0e184b2f3867 pushed (39.2 MB)",
    ]
    assert not renderer.print("anything")  # no live display to go through


def test_plain_progress_says_when_a_transfer_is_retried(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    renderer = PlainProgress()
    with caplog.at_level(logging.INFO, logger="atomic_reactor.cli.progress"):
        renderer(TransferProgress("pull", REF, "start", attempt=1))
        renderer(TransferProgress("pull", REF, "start", attempt=2))
        renderer(TransferProgress("pull", REF, "event", EngineEvent(
            layer="abcdef012345", status="Pull complete")))
    assert [r.getMessage() for r in caplog.records] == [
        f"pulling {REF} (attempt 2)", f"pulling {REF}: layer abcdef012345 pulled"]


def test_terminal_progress_draws_bars_with_bytes_and_percent() -> None:
    stream = FakeTTY()
    renderer = TerminalProgress(stream)
    for update in push_updates():
        renderer(update)
    renderer.close()
    out = stream.getvalue()
    assert f"pushing {REF}" in out
    assert "39.2/39.2 MB" in out
    assert "100%" in out
    assert "761559ed08aa already in the registry" in out
    assert "\x1b[" in out  # it is drawing on a terminal


def test_terminal_progress_prints_log_lines_only_while_live() -> None:
    stream = FakeTTY()
    renderer = TerminalProgress(stream)
    assert not renderer.print("before")
    renderer(TransferProgress("push", REF, "start"))
    assert renderer.print("a warning while pushing")
    renderer(TransferProgress("push", REF, "failed"))
    assert not renderer.print("after")
    assert "a warning while pushing" in stream.getvalue()


def test_make_renderer_picks_by_terminal() -> None:
    assert isinstance(make_renderer(io.StringIO()), PlainProgress)
    tty = make_renderer(FakeTTY())
    assert isinstance(tty, TerminalProgress)
    tty.close()


def test_rich_is_not_imported_unless_on_a_terminal() -> None:
    code = ("import io, sys\n"
            "from atomic_reactor.cli import main\n"
            "from atomic_reactor.cli.progress import make_renderer\n"
            "make_renderer(io.StringIO())\n"
            "assert 'rich' not in sys.modules, 'rich imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
