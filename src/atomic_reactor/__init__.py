"""atomic-reactor: build container images through a plugin pipeline.

The public surface is the modules the 1.6 API documents: :mod:`atomic_reactor.api`,
:mod:`~atomic_reactor.core`, :mod:`~atomic_reactor.inner`, :mod:`~atomic_reactor.build`,
:mod:`~atomic_reactor.plugin`, :mod:`~atomic_reactor.source`, :mod:`~atomic_reactor.util`
and :mod:`~atomic_reactor.errors`. Modules whose names start with ``_`` are private.
"""

from __future__ import annotations

import logging

from atomic_reactor import _codecache

_codecache.install()  # before any of the package's dataclasses is made

__version__ = "1.6.0"
__all__ = ["__version__", "set_logging"]

_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def set_logging(name: str = "atomic_reactor", level: int = logging.DEBUG,
                handler: logging.Handler | None = None) -> logging.Logger:
    """Send the log of ``name`` to ``handler`` (default: stderr, with time, logger name
    and level), at ``level``: the 1.6 function for scripts using the library.

    The library itself never calls this (the command line sets up its own output);
    it replaces the handlers ``set_logging`` or the caller added to that logger, and
    keeps atomic-reactor's own (the per-build log file's).
    """
    from atomic_reactor._buildlog import is_internal_handler

    logger = logging.getLogger(name)
    for old in list(logger.handlers):
        if not is_internal_handler(old):
            logger.removeHandler(old)
    logger.setLevel(level)
    if handler is None:
        handler = logging.StreamHandler()
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    return logger
