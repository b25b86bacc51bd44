"""Private helpers for :mod:`atomic_reactor.source`: run the ``git`` CLI safely.

``git`` always runs from an argument list (never a shell), with no terminal to
prompt on, in its own process group (so a timeout kills ssh/https helpers too),
with a timeout, and with the environment variables that would point it at another
repository removed. Everything shown to users goes through :func:`redact_uri`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from atomic_reactor.errors import SourceError

__all__ = [
    "LOCAL_TIMEOUT",
    "NETWORK_TIMEOUT",
    "GitResult",
    "git_error_line",
    "one_line",
    "redact_uri",
    "ref_problem",
    "run_git",
    "strip_credentials",
]

logger = logging.getLogger(__name__)

#: seconds allowed for a command that talks to a remote (fetch)
NETWORK_TIMEOUT = 600.0
#: seconds allowed for a command that only touches the local repository
LOCAL_TIMEOUT = 120.0

# scheme://userinfo@ -- userinfo is everything up to the last "@" of the authority
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s]*@")

# variables that make git operate on some other repository than the one in cwd
_REPOSITORY_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_SHALLOW_FILE",
        "GIT_REPLACE_REF_BASE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_QUARANTINE_PATH",
    }
)

# characters git never allows in a ref name, plus refspec syntax (":"), plus controls
_BAD_REF_CHARS = re.compile(r"[\s~^:?*\[\\\x00-\x1f\x7f]")


def redact_uri(text: str) -> str:
    """Replace the ``user:password@`` part of every URI in *text* by ``***@``."""
    return _USERINFO.sub(r"\1***@", text)


def strip_credentials(uri: str) -> str:
    """Drop the ``user:password@`` part of every URI in *uri* (for labels, metadata)."""
    return _USERINFO.sub(r"\1", uri)


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so *text* fits on one line."""
    return " ".join(text.split())


def ref_problem(ref: str) -> str | None:
    """Why *ref* cannot be passed to git as a commit/branch/tag, or None if it can."""
    if not ref:
        return "it is empty"
    if ref.startswith("-"):
        return "it starts with '-' and could be read as a git option"
    if ref.startswith("+"):
        return "it starts with '+'"
    if _BAD_REF_CHARS.search(ref):
        return "it contains a character git does not allow in a ref"
    if ".." in ref or "@{" in ref or ref.endswith((".", "/", ".lock")) or ref.startswith("/"):
        return "it is not a valid git ref"
    return None


@dataclass(frozen=True)
class GitResult:
    """What a finished git command returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_error_line(result: GitResult) -> str:
    """The most telling line of a failed command's stderr, redacted, on one line."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    chosen = None
    for line in lines:
        lowered = line.lower()
        for prefix in ("fatal:", "error:"):
            if lowered.startswith(prefix):
                chosen = line[len(prefix) :].strip()
                break
        if chosen:
            break
    if not chosen:
        chosen = lines[-1] if lines else f"git exited with status {result.returncode}"
    return one_line(redact_uri(chosen))


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"  # fail instead of asking for a password
    env["LC_ALL"] = "C"  # stable messages, some of which are inspected
    return env


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_git(
    args: Sequence[str],
    cwd: str,
    timeout: float = LOCAL_TIMEOUT,
    context: str = "",
) -> GitResult:
    """Run ``git *args`` in *cwd* and return its result (a non-zero status is returned).

    Raises :class:`SourceError` when git cannot be run at all or exceeds *timeout*;
    *context* (already redacted) completes those messages, e.g. ``"fetching <uri>"``.
    """
    # no "ext::" transport (runs commands), no hooks from the user's configuration
    command = ["git", "-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null", *args]
    logger.debug("running %s in %s", redact_uri(" ".join(command)), cwd)
    where = f" {context}" if context else ""
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # no controlling terminal; one group to kill
        )
    except FileNotFoundError as exc:
        if exc.filename == cwd:
            raise SourceError(f"cannot run git{where}: directory {cwd} does not exist") from None
        raise SourceError(f"cannot run git{where}: no 'git' executable on PATH") from None
    except OSError as exc:
        raise SourceError(f"cannot run git{where}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise SourceError(f"git {args[0]} timed out after {timeout:g}s{where}") from None
    except BaseException:  # cancelled (signal, KeyboardInterrupt): do not leave git behind
        _kill_group(proc)
        proc.wait()
        raise
    result = GitResult(tuple(args), proc.returncode, stdout, stderr)
    if not result.ok:
        logger.debug("git %s exited %d: %s", args[0], result.returncode, git_error_line(result))
    return result
