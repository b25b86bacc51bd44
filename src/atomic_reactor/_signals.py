"""Turning SIGTERM and SIGINT into :class:`~atomic_reactor.errors.BuildCancelled`."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from atomic_reactor.errors import BuildCancelled

logger = logging.getLogger(__name__)

__all__ = ["Cancellation"]


class Cancellation:
    """While installed, the first SIGTERM or SIGINT raises :class:`BuildCancelled`.

    So a Ctrl-C runs the same clean-up paths as a SIGTERM. Later signals, or any
    signal once :attr:`cleaning` is set, only log that clean-up is under way. Only
    the main thread can own signal handlers; elsewhere this does nothing. SIGINT is
    taken over only from Python's default handler, never from an application's own.
    """

    def __init__(self, busy: str = "finishing clean-up first") -> None:
        self.signum: int | None = None
        #: set once clean-up began: signals then only say that it is under way
        self.cleaning = False
        self._busy = busy

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.signum is None and not self.cleaning:
            self.signum = signum
            raise BuildCancelled(signum)
        logger.warning("received %s; %s", signal.Signals(signum).name, self._busy)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous_term: Any = signal.signal(signal.SIGTERM, self._handler)
        previous_int = signal.getsignal(signal.SIGINT)
        take_int = previous_int is signal.default_int_handler
        if take_int:
            signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous_term)
            if take_int:
                signal.signal(signal.SIGINT, previous_int)
