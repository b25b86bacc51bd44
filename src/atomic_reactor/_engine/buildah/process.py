"""Running the ``buildah`` command: argument lists, process groups, error translation.

Every buildah process runs in a session (process group) of its own, so a cancel
(SIGTERM, Ctrl-C, an abandoned event stream) can end it with everything it
started, and a terminal's Ctrl-C reaches only atomic-reactor, which then decides.
buildah's messages become the project's errors in
:func:`atomic_reactor._engine.errors.buildah_error`, the one place that reads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from atomic_reactor._engine.errors import buildah_error, buildah_not_runnable
from atomic_reactor.errors import EngineUnavailable

logger = logging.getLogger(__name__)

__all__ = ["Buildah", "StorageConfig", "kill", "terminate"]

#: seconds buildah gets after SIGTERM to end its work and remove its working containers
TERM_GRACE = 10.0
#: bytes read from a followed output file at a time
CHUNK = 1 << 16
ENV_PREFIX = "ATOMIC_REACTOR_BUILDAH_"

#: a ``--log-level=debug`` line (only read for the ids of a build's working containers)
DEBUG_LINE = re.compile(r'time="[^"]*" level=debug msg=("(?:[^"\\]|\\.)*"|\S*)[^\n]*\n?')
CONTAINER_ID = re.compile(r"^Container ID: ([0-9a-f]{64})$")
#: buildah's own words at the end of a failed ``run``, not the container's output
_RUN_NOISE = re.compile(
    r"^(subprocess exited (with status \d+|on \w+)|Error: exit status \d+|"
    r"process exited with error: .*)$"
)


class _EndWatch:
    """Waits for a process to end, or for a timeout, whichever comes first.

    Through a pidfd (Linux 5.3 on) that :func:`select.select` watches: one wake-up per
    timeout, none in between. Without one, :meth:`subprocess.Popen.wait` with a
    timeout, which polls (its sleeps grow from half a millisecond: a dozen wake-ups
    each time), CPU that a build running beside it on a small machine misses.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # no pidfd: polled
            self._fd = os.pidfd_open(process.pid)

    def wait(self, timeout: float) -> None:
        if self._fd is not None:
            select.select([self._fd], [], [], timeout)
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=timeout)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class StorageConfig:
    """Where buildah keeps images and containers (``None``: buildah's default).

    The defaults work as root: ``overlay`` under ``/var/lib/containers/storage``.
    Each value may also come from ``ATOMIC_REACTOR_BUILDAH_ROOT``, ``..._RUNROOT``,
    ``..._STORAGE_DRIVER``, ``..._STORAGE_OPTS`` (comma separated) and
    ``..._ISOLATION``.
    """

    root: str | None = None
    runroot: str | None = None
    driver: str | None = None
    options: tuple[str, ...] = ()
    isolation: str = "chroot"

    @classmethod
    def from_env(
        cls, root: str | None = None, runroot: str | None = None,
        storage_driver: str | None = None, storage_opts: Sequence[str] | None = None,
        isolation: str | None = None, environ: Mapping[str, str] | None = None,
    ) -> StorageConfig:
        env = os.environ if environ is None else environ

        def pick(value: str | None, key: str) -> str | None:
            return value if value else (env.get(ENV_PREFIX + key) or None)

        opts = storage_opts
        if opts is None:
            raw = env.get(ENV_PREFIX + "STORAGE_OPTS", "")
            opts = [part.strip() for part in raw.split(",") if part.strip()]
        chosen = pick(isolation, "ISOLATION") or "chroot"
        if chosen not in ("chroot", "oci", "rootless"):
            from atomic_reactor.errors import InputError

            raise InputError(f"buildah isolation {chosen!r} is not one of chroot, oci, rootless")
        return cls(root=pick(root, "ROOT"), runroot=pick(runroot, "RUNROOT"),
                   driver=pick(storage_driver, "STORAGE_DRIVER"), options=tuple(opts),
                   isolation=chosen)

    def global_args(self) -> list[str]:
        args: list[str] = []
        if self.root:
            args += ["--root", self.root]
        if self.runroot:
            args += ["--runroot", self.runroot]
        if self.driver:
            args += ["--storage-driver", self.driver]
        for option in self.options:
            args += ["--storage-opt", option]
        return args

    def describe(self) -> str:
        root = self.root or "/var/lib/containers/storage"
        return f"buildah (storage {root}, driver {self.driver or 'overlay'})"


def is_run_noise(line: str) -> bool:
    """Whether ``line`` is buildah's own report of a ``run`` ending, not program output."""
    return bool(_RUN_NOISE.match(line.strip()))


def terminate(process: subprocess.Popen[bytes], grace: float = TERM_GRACE) -> bool:
    """End ``process``'s whole process group: SIGTERM, then SIGKILL after ``grace``.

    Returns True when the group ended by SIGTERM (buildah then removes its working
    containers itself), False when it had to be killed.
    """
    if process.poll() is not None:
        _drain_group(process)  # stragglers of a finished leader
        return True
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        logger.warning("buildah (pid %d) did not end %g s after SIGTERM; killing it",
                       process.pid, grace)
        _signal_group(process, signal.SIGKILL)
        process.wait()
        _drain_group(process)
        return False
    _signal_group(process, signal.SIGKILL)
    _drain_group(process)
    return True


def _drain_group(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGKILL what is left of the group until it is empty: a child buildah forked
    just as the signal came (a ``RUN`` step starting) escaped the first one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)
    logger.warning("processes of buildah's group %d are still there", process.pid)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process``'s group at once and reap the leader."""
    _signal_group(process, signal.SIGKILL)
    process.wait()
    _drain_group(process)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@dataclass
class Buildah:
    """The buildah binary with its global (storage) arguments."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    binary: str | None = None
    #: told of every command (its arguments, whether it succeeded) when it started
    #: (``popen``) and when it ended: what buildah may have changed
    observer: Callable[[Sequence[str], bool], None] | None = None

    def __post_init__(self) -> None:
        found = self.binary or shutil.which("buildah")
        if not found or not os.access(found, os.X_OK):
            raise EngineUnavailable(
                "buildah not installed (no buildah executable in PATH); install it "
                "(Debian package buildah, see scripts/ensure-env.sh) or use --engine docker")
        self.binary = found

    def argv(self, *args: str) -> list[str]:
        assert self.binary is not None
        return [self.binary, *self.storage.global_args(), *args]

    def run(self, action: str, *args: str, kind: str = "engine",
            reference: str | None = None, stdin: bytes | None = None,
            env: Mapping[str, str] | None = None) -> str:
        """Run buildah to completion; its stdout, or the translated error."""
        argv = self.argv(*args)
        logger.debug("running %s", " ".join(argv))
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, check=False,
                                  env=dict(env) if env is not None else None,
                                  start_new_session=True)
        except OSError as exc:
            raise buildah_not_runnable(exc, action) from None
        self.ran(args, done.returncode == 0)
        if done.returncode != 0:
            raise buildah_error(action, done.stderr.decode("utf-8", "replace"), kind=kind,
                                reference=reference)
        return done.stdout.decode("utf-8", "replace")

    def popen(self, *args: str, stdout: int | IO[bytes] = subprocess.PIPE,
              stderr: int | IO[bytes] = subprocess.STDOUT,
              env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        argv = self.argv(*args)
        logger.debug("starting %s", " ".join(argv))
        self.ran(args, True)
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                    stderr=stderr, start_new_session=True,
                                    env=dict(env) if env is not None else None)
        except OSError as exc:
            raise buildah_not_runnable(exc) from None

    def ran(self, args: Sequence[str], ok: bool) -> None:
        """Tell the observer that the command ``args`` started or ended."""
        if self.observer is not None:
            self.observer(args, ok)

    def follow(self, process: subprocess.Popen[bytes], path: str,
               poll: float = 0.1) -> Iterator[str]:
        """The lines ``process`` writes to the file ``path``, as they come (read every
        ``poll`` seconds while it runs), until it has ended and every byte is read.

        buildah 1.28 (chroot isolation) drops the last output of a ``RUN`` step when
        its own writes block: a reader slower than the step (a loaded machine, the
        pipeline handling each line) lost the tail of a pipe, and buildah's next line
        (``COMMIT ...``) came straight after a cut line. A file never blocks the writer.
        """
        pending = b""
        ended = _EndWatch(process)
        try:
            with open(path, "rb") as reader:
                while True:
                    chunk = reader.read(CHUNK)
                    if not chunk:
                        if process.poll() is None:
                            ended.wait(poll)  # back at once when it ends
                            continue
                        chunk = reader.read(CHUNK)  # written just before it ended
                        if not chunk:
                            break
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        yield (raw + b"\n").decode("utf-8", "replace")
        finally:
            ended.close()
        if pending:
            yield pending.decode("utf-8", "replace")

    def lines(self, process: subprocess.Popen[bytes]) -> Iterator[str]:
        """The lines ``process`` writes (merged stdout/stderr), as they come."""
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            yield raw.decode("utf-8", "replace")
