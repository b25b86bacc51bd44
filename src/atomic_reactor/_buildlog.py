"""The complete log of one build, kept in a file.

Every line the engine prints while building (nothing clipped), the messages of
pulls and pushes, and the log records of the workflow and its plugins go to the
build's log file, whose path ends up in ``BuildResults.log_file``. By default the
file is ``build.log`` in a new directory per build under
``$XDG_STATE_HOME/atomic-reactor/logs`` (``~/.local/state/atomic-reactor/logs``);
the workflow option ``log_file`` (CLI: ``--log-file``) names it instead.

Several builds can run at once in one process: the log that receives a line is
the one of the build running in the current context (a ``ContextVar``), so no
build sees another's lines. Registered secrets are masked in every line.

Log records reach the file when the ``atomic_reactor`` logger is enabled for their
level (the command line enables INFO; a program using the API decides itself);
the engine's build output is always written, whatever the logging configuration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

from atomic_reactor._secrets import redact
from atomic_reactor.errors import InputError

__all__ = ["BuildLog", "default_log_dir", "is_internal_handler", "write_output"]

logger = logging.getLogger(__name__)

#: the logger whose records are the engine's build output (written directly, not twice)
OUTPUT_LOGGER = "atomic_reactor.build.output"

_current: ContextVar[BuildLog | None] = ContextVar("atomic_reactor_build_log", default=None)
_dispatcher_lock = threading.Lock()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_log_dir() -> Path:
    """``$XDG_STATE_HOME/atomic-reactor/logs`` (``~/.local/state/…`` by default)."""
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "atomic-reactor" / "logs"


def write_output(chunk: str) -> None:
    """Append engine output (whole or partial lines) to the log of this context's build."""
    log = _current.get()
    if log is not None:
        log.write_output(chunk)


def reraise_cancel() -> None:
    """In a logging handler's ``handleError``: a cancel (SIGTERM/Ctrl-C raised by the
    signal handler while a line was being written) must not be swallowed as a
    logging error: raise it on."""
    import sys

    from atomic_reactor.errors import BuildCancelled

    error = sys.exc_info()[1]
    if isinstance(error, BuildCancelled):
        raise error


class _Dispatcher(logging.Handler):
    """One handler on the ``atomic_reactor`` logger, routing records to the current build."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def handle(self, record: logging.LogRecord) -> bool:
        handled = super().handle(record)
        last_resort = logging.lastResort
        if last_resort is not None and record.levelno >= last_resort.level \
                and not self._others(record.name):
            # this handler must not silence Python's "last resort" output to stderr in
            # programs that configured no logging at all
            last_resort.handle(record)
        return handled

    def _others(self, name: str) -> bool:
        """Is there a handler besides this one on the way from ``name`` to the root?"""
        current: logging.Logger | None = logging.getLogger(name)
        while current is not None:
            if any(h is not self for h in current.handlers):
                return True
            current = current.parent if current.propagate else None
        return False

    def handleError(self, record: logging.LogRecord) -> None:
        reraise_cancel()
        super().handleError(record)

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None or record.name == OUTPUT_LOGGER:
            return
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        log.write_line(text)


def is_internal_handler(handler: logging.Handler) -> bool:
    """Is ``handler`` atomic-reactor's own (the per-build log file's dispatcher)?"""
    return isinstance(handler, _Dispatcher)


def _install_dispatcher() -> None:
    """Add the (one, process-wide) dispatching handler unless it is there."""
    package_logger = logging.getLogger("atomic_reactor")
    with _dispatcher_lock:
        if not any(isinstance(h, _Dispatcher) for h in package_logger.handlers):
            package_logger.addHandler(_Dispatcher())


class BuildLog:
    """An open build log file; lines are written as they come (line-buffered)."""

    def __init__(self, path: str, handle: TextIO) -> None:
        self.path = path
        self._handle: TextIO | None = handle
        self._lock = threading.RLock()  # a warning about the log may come back to it
        self._pending = ""
        self.lines = 0

    @classmethod
    def open(cls, path: str | None, image: str) -> BuildLog | None:
        """Open ``path`` (or a new file in a per-build directory under the state dir).

        A ``path`` that cannot be written is bad input (:class:`InputError`); when the
        default location cannot be written the build goes on without a log file.
        """
        if path:
            target = os.path.abspath(path)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                return cls(target, _open_private(target))
            except OSError as exc:
                raise InputError(f"cannot write the log file {target}: "
                                 f"{exc.strerror or exc}") from None
        try:
            base = default_log_dir()
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            name = _UNSAFE.sub("_", image.rsplit("/", 1)[-1])[:48]
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            directory = tempfile.mkdtemp(prefix=f"{stamp}-{name}-", dir=base)
            target = os.path.join(directory, "build.log")
            return cls(target, _open_private(target))
        except OSError as exc:
            logger.warning("no build log file: cannot write under %s: %s",
                           default_log_dir(), exc.strerror or exc)
            return None

    def write_output(self, chunk: str) -> None:
        """Engine output as it streams: a line split over two messages stays one line."""
        with self._lock:
            text = self._pending + chunk
            complete, newline, self._pending = text.rpartition("\n")
            if newline:
                self._write(complete.split("\n"))

    def write_line(self, text: str) -> None:
        """One line (a log record); a pending partial output line is finished first."""
        with self._lock:
            self._flush_pending()
            self._write(text.rstrip("\n").split("\n"))

    def _flush_pending(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self._write([pending])

    def _write(self, lines: list[str]) -> None:
        if self._handle is None:
            return
        try:
            self._handle.write("".join(redact(line) + "\n" for line in lines))
        except OSError as exc:  # disk full: keep building, say so once
            self._close()
            logger.warning("build log %s: %s; no further lines are written",
                           self.path, exc.strerror or exc)
            return
        self.lines += len(lines)

    @contextlib.contextmanager
    def active(self) -> Iterator[BuildLog]:
        """Route this context's build output and log records here inside the block."""
        _install_dispatcher()
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def _close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()

    def close(self) -> None:
        with self._lock:
            self._flush_pending()
            self._close()


def _open_private(path: str) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", buffering=1)
