"""``distgit_fetch_artefacts``: run the dist-git "get the sources" command in the source."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._git import redact_uri
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["SOURCES_FILE", "DistgitFetchArtefactsPlugin", "FetchedArtefacts"]

#: the dist-git file listing the artefacts; without it there is nothing to fetch
SOURCES_FILE = "sources"
#: how much of the command's output a failure reports
TAIL_LINES = 40
TAIL_CHARS = 4000
#: how much of the sources file the result keeps
MAX_SOURCES_CHARS = 64 * 1024


@dataclass(frozen=True)
class FetchedArtefacts:
    """What ``distgit_fetch_artefacts`` ran, or why it ran nothing."""

    #: the command (credentials in URLs redacted)
    command: str
    #: the content of the ``sources`` file (what was to be fetched)
    sources: str | None = None
    returncode: int | None = None
    duration: float | None = None
    #: the end of the command's output (stdout and stderr)
    output_tail: str | None = None
    skipped: bool = False
    reason: str | None = None


def _tail(data: bytes) -> str:
    text = redact_uri(data.decode("utf-8", "replace")).rstrip()
    lines = text.splitlines()[-TAIL_LINES:]
    tail = "\n".join(lines)
    if len(tail) > TAIL_CHARS:
        tail = "…" + tail[-TAIL_CHARS:]
    return tail


class DistgitFetchArtefactsPlugin(PreBuildPlugin):
    """Fetch a dist-git repository's artefacts (the lookaside files its ``sources``
    file lists) by running ``command`` (``fedpkg sources``, ``make sources`` …) in the
    source directory, so the Dockerfile can ``COPY``/``ADD`` them.

    As in atomic-reactor 1.6 the command only runs when the source has a ``sources``
    file; otherwise nothing is fetched (a recorded skip). The command line runs with
    ``/bin/sh -c`` (1.6 split it on white space and ran it without a shell; a plain
    command line means the same either way), with stdin from ``/dev/null`` and the
    environment of atomic-reactor. A non-zero exit status or running longer than
    ``timeout`` fails the build; the error carries the end of the command's output.

    Result: a :class:`FetchedArtefacts` (the command, the ``sources`` file's content,
    exit status, duration, end of the output), or one with ``skipped`` and ``reason``
    when there is no ``sources`` file.
    """

    key = "distgit_fetch_artefacts"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, command: str,
                 timeout: float | None = None) -> None:
        """
        :param command: shell command line that fetches the artefacts, run in the source
            directory (e.g. ``fedpkg sources``)
        :param timeout: seconds the command may run (default: no limit)
        """
        super().__init__(tasker, workflow)
        if not command.strip() or "\0" in command:
            raise PluginConfigError(f"plugin {self.key}: argument command must be a "
                                    "non-empty command line", plugin=self.key,
                                    argument="command")
        if timeout is not None and not timeout > 0:
            raise PluginConfigError(f"plugin {self.key}: argument timeout must be a "
                                    "positive number of seconds", plugin=self.key,
                                    argument="timeout")
        self.command = command
        self.timeout = timeout

    def _run(self, cwd: str) -> tuple[int, bytes, float]:
        """Run the command; ``(exit status, output, seconds)``; kill it on timeout/cancel."""
        started = time.monotonic()
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(  # a shell command line is this plugin's API
                ["/bin/sh", "-c", self.command], cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                returncode = process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._kill(process)
                output.seek(0)
                tail = _tail(output.read())
                raise AtomicReactorError(
                    f"{self.key}: command {redact_uri(self.command)!r} did not finish in "
                    f"{self.timeout:g} s" + (f"; its output ended with:\n{tail}" if tail else "")
                ) from None
            finally:
                if process.poll() is None:  # cancelled (SIGTERM/Ctrl-C) while waiting
                    self._kill(process)
            output.seek(0)
            data = output.read()
        return returncode, data, time.monotonic() - started

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def run(self) -> FetchedArtefacts:
        shown = redact_uri(self.command)
        source_dir = self.workflow.source.path
        sources_path = os.path.join(source_dir, SOURCES_FILE)
        if not os.path.isfile(sources_path):
            reason = f"the source has no {SOURCES_FILE!r} file"
            self.log.info("%s; nothing to fetch", reason)
            return FetchedArtefacts(command=shown, skipped=True, reason=reason)
        with open(sources_path, encoding="utf-8", errors="replace") as handle:
            sources = handle.read(MAX_SOURCES_CHARS)
        self.log.info("fetching artefacts: %s (in %s)", shown, source_dir)
        try:
            returncode, data, duration = self._run(source_dir)
        except OSError as exc:
            raise AtomicReactorError(f"{self.key}: cannot run {shown!r}: "
                                     f"{exc.strerror or exc}") from None
        tail = _tail(data)
        for line in tail.splitlines():
            self.log.debug("%s", line)
        if returncode != 0:
            status = (f"was killed by signal {-returncode}" if returncode < 0
                      else f"exited with status {returncode}")
            raise AtomicReactorError(
                f"{self.key}: command {shown!r} {status}"
                + (f"; its output ended with:\n{tail}" if tail else " and printed nothing"))
        self.log.info("artefacts fetched in %.1f s", duration)
        return FetchedArtefacts(command=shown, sources=sources, returncode=returncode,
                                duration=round(duration, 3), output_tail=tail or None)
