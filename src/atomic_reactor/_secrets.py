"""Secrets: values that must never be printed or written where they could leak.

A value becomes a secret when it is registered with :func:`register_secret`:
registry passwords are registered as soon as they are read (every
:class:`~atomic_reactor._engine.base.RegistryAuth` registers its password), the
command line registers the values of ``--substitute-secret``. From then on
:func:`redact` replaces every occurrence by ``***``, and it is applied wherever
the tool prints or writes text:

- log records (the command line's handlers carry a :class:`SecretFilter`; the
  build log file is redacted line by line),
- exception messages (:class:`~atomic_reactor.errors.AtomicReactorError` redacts
  its message when it is created),
- results (``BuildResults.to_dict()``) and every file written through
  :func:`atomic_reactor._files.write_text_atomic` (metadata, iidfile, results).

Files that must hold a credential (a build json handed to a build container, a
docker config) are written with :func:`write_private_file` (mode 0600, never
redacted) and removed with :func:`remove_private_file` (or use
:func:`private_file`) as soon as they are no longer needed.

The register is process-wide on purpose: a secret known to one build must not be
printed by another build running in the same process either. Values shorter than
:data:`MIN_SECRET_LENGTH` characters are not registered (masking them would garble
all output and hide nothing); a warning says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SecretFilter",
    "private_file",
    "redact",
    "redact_data",
    "register_auth_token",
    "register_secret",
    "registered_secrets",
    "remove_private_file",
    "write_private_file",
]

#: what a secret is replaced by
MASK = "***"
#: secrets shorter than this are not masked (they would match everywhere)
MIN_SECRET_LENGTH = 4



class _Register:
    """The process's secrets and the pattern matching any of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        #: None while there is no secret (redaction is then free)
        self.pattern: re.Pattern[str] | None = None


_register = _Register()


def _variants(value: str) -> set[str]:
    """``value`` plus the forms it takes when embedded in JSON or a URL."""
    forms = {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe="")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> bool:
    """Mask ``value`` (and its JSON- and URL-escaped forms) from now on.

    Returns False (and warns) when the value is too short to be masked.
    """
    if not value:
        return False
    if len(value) < MIN_SECRET_LENGTH:
        logger.warning("a secret shorter than %d characters cannot be masked in output",
                       MIN_SECRET_LENGTH)
        return False
    forms = _variants(value)
    with _register.lock:
        if forms <= _register.values:
            return True
        _register.values.update(forms)
        # longest first, so a secret containing another one is masked whole
        ordered = sorted(_register.values, key=lambda s: (-len(s), s))
        _register.pattern = re.compile("|".join(re.escape(s) for s in ordered))
    return True


def registered_secrets() -> list[str]:
    """Every value masked so far (escaped forms included), e.g. to hand them to a build
    container's process in a private file, which registers them again there."""
    with _register.lock:
        return sorted(_register.values)


def register_auth_token(username: str, password: str) -> None:
    """Register ``password`` and the base64 ``user:password`` token docker configs hold."""
    register_secret(password)
    if password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        register_secret(token)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _register.pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like ``value`` with secrets masked in every string (keys included)."""
    if _register.pattern is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(k) if isinstance(k, str) else k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_data(v) for v in value)
    return value


class SecretFilter(logging.Filter):
    """Masks registered secrets in a record's message and traceback before it is emitted.

    The message is rendered (``msg % args``) and replaced by its redacted form; an
    exception's formatted traceback is stored redacted in ``exc_text``, which the
    standard formatters use instead of formatting the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _register.pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def write_private_file(path: str | os.PathLike[str], text: str) -> str:
    """Write ``text`` (which may hold credentials) to a new file only the owner can read.

    The file is created with mode 0600 from the start (never readable by others,
    not even for a moment); an existing file is replaced. Returns the path.
    """
    target = os.fspath(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    return target


def remove_private_file(path: str | os.PathLike[str]) -> None:
    """Remove a file written by :func:`write_private_file` (missing is fine)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def private_file(path: str | os.PathLike[str], text: str) -> Iterator[str]:
    """Write a private file for the duration of the ``with`` block, then remove it."""
    written = write_private_file(path, text)
    try:
        yield written
    finally:
        remove_private_file(written)


def _reset_for_tests() -> None:
    """Forget every secret (tests only)."""
    with _register.lock:
        _register.values.clear()
        _register.pattern = None


def load_secrets_file(path: str | os.PathLike[str]) -> int:
    """Register every value of a JSON list of secrets (what a build container gets)."""
    import json

    from atomic_reactor.errors import BuildJsonError

    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BuildJsonError(f"cannot read the secrets file {path}: "
                             f"{type(exc).__name__}") from None
    if not isinstance(values, list):
        raise BuildJsonError(f"the secrets file {path} must hold a JSON list")
    return sum(1 for value in values if isinstance(value, str) and register_secret(value))

