"""Retry policy for network operations (pulls, pushes, registry HTTP calls)."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from atomic_reactor.errors import (
    AtomicReactorError,
    AuthenticationError,
    BuildCancelled,
    EngineUnavailable,
)

logger = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "is_transient"]

T = TypeVar("T")

# Texts of transient failures, as dockerd (Go's net/http, distribution's client) and
# requests word them; tests/integration/faults shows the engine producing each one.
_TRANSIENT_HINTS = (
    "500 internal server error", "502 bad gateway", "503 service unavailable",
    "504 gateway timeout", "status: 50", "status code 50", "received unexpected http status: 50",
    "connection reset", "broken pipe", "unexpected eof", "timeout", "timed out",
    "i/o timeout", "tls handshake timeout", "toomanyrequests", "too many requests",
    "connection aborted", "use of closed network connection", "remote end closed",
    "connection closed", "context deadline exceeded",
)
_TRANSIENT_WORDS = re.compile(r"\beof\b")
_PERMANENT_CODES = re.compile(r"(?<![\w.:])40[134](?![\w.:])")
_PERMANENT_HINTS = (
    "unauthorized", "denied", "not found", "manifest invalid", "invalid manifest",
    "manifest unknown", "invalid reference", "name unknown", "blob unknown",
    "no basic auth credentials", "authentication required",
)
# Parts of a message that name things rather than say what went wrong: URLs (with
# ports and upload ids), digests, long hex ids. A port 40312 or a tag "404" is no 404.
_NOISE = re.compile(r"\w+://[^\s\"']+|sha256:[0-9a-f]+|\b[0-9a-f]{12,}\b")


def is_transient(error: BaseException) -> bool:
    """Is ``error`` worth another attempt (5xx, resets, timeouts; never auth or 404)?

    A cancel and an engine that does not answer are never transient: retrying
    cannot help there.
    """
    if isinstance(error, (AuthenticationError, BuildCancelled, EngineUnavailable)):
        return False
    text = _NOISE.sub(" ", str(error).lower())
    if _PERMANENT_CODES.search(text) or any(hint in text for hint in _PERMANENT_HINTS):
        return False
    return any(hint in text for hint in _TRANSIENT_HINTS) or bool(_TRANSIENT_WORDS.search(text))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    ``attempts`` counts every try (1 means no retry). The n-th retry waits a random
    time between half and all of ``min(max_delay, delay * factor ** (n - 1))``
    seconds (see ``docs/retries.md``).
    """

    attempts: int = 4
    delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("retry attempts must be at least 1")
        if self.delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry_number: int) -> float:
        ceiling = min(self.max_delay, self.delay * self.factor ** (retry_number - 1))
        return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0

    def call(
        self,
        what: str,
        func: Callable[[], T],
        on_retry: Callable[[int, BaseException], None] | None = None,
    ) -> T:
        """Run ``func``; retry transient :class:`AtomicReactorError` s."""
        for attempt in range(1, self.attempts + 1):
            try:
                return func()
            except AtomicReactorError as exc:
                if attempt >= self.attempts or not is_transient(exc):
                    raise
                wait = self.backoff(attempt)
                logger.warning("%s failed (attempt %d of %d): %s; retrying in %.1fs",
                               what, attempt, self.attempts, exc, wait)
                if on_retry is not None:
                    on_retry(attempt, exc)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
