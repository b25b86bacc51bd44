"""Progress of pulls and pushes on the command line.

The library reports what a pull or push does through
:meth:`atomic_reactor.core.DockerTasker.add_progress_listener`; the command line
installs one of these renderers as the listener:

- :class:`TerminalProgress` when stderr is a terminal: a live bar per layer with
  bytes done/total, speed and percentage (drawn with ``rich``, imported only then);
- :class:`PlainProgress` otherwise: one plain line per layer state change that
  matters (``pushing 127.0.0.1:5000/x:1: layer abc123 pushed (39.2 MB)``), never a
  line per progress tick, no ANSI escapes.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from atomic_reactor.core import TransferProgress

__all__ = ["PlainProgress", "Renderer", "TerminalProgress", "format_size", "make_renderer"]

logger = logging.getLogger("atomic_reactor.cli.progress")

_VERBS = {"pull": "pulling", "push": "pushing"}
#: engine statuses that end a layer's transfer, and how the plain output says it
_FINAL_STATES = {
    "pushed": "pushed",
    "layer already exists": "already in the registry",
    "pull complete": "pulled",
    "already exists": "already present",
}


def format_size(size: int) -> str:
    """``39.2 MB``: decimal units, as docker shows them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


def _final_state(status: str) -> str | None:
    lowered = status.lower()
    if lowered.startswith("mounted from "):
        return f"mounted from {status[len('mounted from '):]}"
    return _FINAL_STATES.get(lowered)


class Renderer(Protocol):
    """A progress listener that may also own the terminal for a while."""

    def __call__(self, update: TransferProgress) -> None: ...

    def print(self, text: str) -> bool:
        """Print a log line through the live display; False if there is none."""
        ...

    def close(self) -> None: ...


class PlainProgress:
    """Plain lines through the ``atomic_reactor.cli.progress`` logger (INFO)."""

    def __init__(self) -> None:
        self._sizes: dict[tuple[str, str], dict[str, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, update: TransferProgress) -> None:
        key = (update.operation, update.reference)
        verb = _VERBS.get(update.operation, update.operation)
        with self._lock:
            if update.state == "start":
                self._sizes[key] = {}
                if update.attempt > 1:  # the first attempt: the plugin says what it does
                    logger.info("%s %s (attempt %d)", verb, update.reference, update.attempt)
                return
            if update.state in ("done", "failed"):
                self._sizes.pop(key, None)
                return
            event = update.event
            if event is None or event.layer is None or event.status is None:
                return
            sizes = self._sizes.setdefault(key, {})
            if event.total:
                sizes[event.layer] = event.total
            final = _final_state(event.status)
            if final is None:
                return
            size = sizes.get(event.layer)
            suffix = f" ({format_size(size)})" if size else ""
            logger.info("%s %s: layer %s %s%s", verb, update.reference, event.layer[:12],
                        final, suffix)

    def print(self, text: str) -> bool:
        del text
        return False

    def close(self) -> None:
        self._sizes.clear()


class TerminalProgress:
    """Live bars on a terminal (``rich``): one per layer, with bytes, speed and %."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console

        self._console = Console(file=stream, highlight=False, soft_wrap=True)
        self._lock = threading.RLock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._reference = ""

    def _start(self, update: TransferProgress) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self._stop()
        verb = _VERBS.get(update.operation, update.operation)
        again = f" (attempt {update.attempt})" if update.attempt > 1 else ""
        self._console.print(f"{verb} {update.reference}{again}", markup=False)
        self._progress = Progress(
            TextColumn("  {task.description}", markup=False), BarColumn(),
            DownloadColumn(), TransferSpeedColumn(), TaskProgressColumn(),
            console=self._console, transient=False, redirect_stdout=False,
            redirect_stderr=False, refresh_per_second=8,
        )
        self._progress.start()
        self._tasks = {}
        self._totals = {}
        self._reference = update.reference

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks = {}

    def __call__(self, update: TransferProgress) -> None:
        with self._lock:
            if update.state == "start":
                self._start(update)
                return
            if update.state in ("done", "failed"):
                if update.reference == self._reference:
                    self._stop()
                return
            event = update.event
            progress = self._progress
            if progress is None or event is None or event.layer is None:
                return
            status = event.status or ""
            description = f"{event.layer[:12]} {status}".strip()
            task = self._tasks.get(event.layer)
            if task is None:
                task = self._tasks[event.layer] = progress.add_task(
                    description, total=event.total or None, start=True)
            final = _final_state(status) if status else None
            if event.total:
                self._totals[event.layer] = event.total
                progress.update(task, description=description, total=event.total,
                                completed=event.current or 0)
            elif final is not None:
                total = self._totals.get(event.layer)
                if total:
                    progress.update(task, description=f"{event.layer[:12]} {final}",
                                    total=total, completed=total)
                else:  # nothing transferred: a line instead of an empty bar
                    progress.remove_task(task)
                    del self._tasks[event.layer]
                    self._console.print(f"  {event.layer[:12]} {final}", markup=False)
            else:
                progress.update(task, description=description)

    def print(self, text: str) -> bool:
        with self._lock:
            if self._progress is None:
                return False
            self._console.print(text, markup=False, highlight=False)
            return True

    def close(self) -> None:
        with self._lock:
            self._stop()


def make_renderer(stream: IO[str]) -> Renderer:
    """Bars when ``stream`` is a terminal (and ``rich`` is installed), else plain lines."""
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        try:
            return TerminalProgress(stream)
        except ImportError:
            pass
    return PlainProgress()
