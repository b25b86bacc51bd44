"""The farm's build task: what a worker's pool process runs for one build.

The build itself runs exactly as ``atomic-reactor build json`` runs it (a
:class:`BuildRequest` from the build json, a ``DockerBuildWorkflow`` or a build
container), in a working directory of its own that is removed afterwards. Its
output goes line by line to the build's output stream, its complete log is kept,
and the task returns the full ``BuildResults`` (JSON), which Celery's result backend
carries back to the submitter.

A cancel (``farm cancel``) is a SIGTERM the task sends its own process, so the
build is cancelled as a local build is: the engine's work stops and the exit
plugins run; the pool process then takes the next build.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from atomic_reactor._secrets import SecretFilter, redact, register_secret
from atomic_reactor.errors import AtomicReactorError, BuildCancelled

if TYPE_CHECKING:
    from celery import Celery, Task

    from atomic_reactor._results import BuildResults
    from atomic_reactor.farm._config import FarmConfig
    from atomic_reactor.farm._records import Records, State

__all__ = ["WorkerSettings", "engine_problem", "register", "settings"]

logger = logging.getLogger(__name__)

ENGINES = ("docker", "buildah", "auto")


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process knows about itself (set before the pool forks)."""

    name: str = "worker"
    workdir: str = field(default_factory=tempfile.gettempdir)
    engine: str = "auto"
    platforms: tuple[str, ...] = ()


_settings = [WorkerSettings()]


def settings() -> WorkerSettings:
    return _settings[0]


def configure(value: WorkerSettings) -> None:
    """Set before the pool forks, so every pool process has it."""
    _settings[0] = value


def engine_problem(engine: str) -> str | None:
    """Why the engine cannot run builds now (None: it can)."""
    docker_problem: str | None = None
    if engine in ("docker", "auto"):
        from atomic_reactor._engine.docker import DockerEngine

        backend = DockerEngine(timeout=5)
        try:
            backend.version()
            return None
        except AtomicReactorError as exc:
            docker_problem = str(exc)
        finally:
            backend.close()
        from atomic_reactor import _request

        if engine == "docker" or "engine" not in _request._KEYS:
            return docker_problem  # (no other engine to fall back on for "auto")
    if shutil.which("buildah") is None:
        return docker_problem or "buildah is not installed"
    return None


def register(app: Celery, config: FarmConfig) -> None:
    from atomic_reactor.farm._config import TASK_NAME

    @app.task(name=TASK_NAME, bind=True, acks_late=True, shared=False,  # type: ignore[untyped-decorator]
              reject_on_worker_lost=True)
    def build(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
        return run_task(self, payload, config)

    from atomic_reactor.farm._multi import register_manifest_task

    register_manifest_task(app, config)


# -- output ---------------------------------------------------------------------------------


class _OutputSink(logging.Handler):
    """Log records of the running build -> lines in its output stream (sent by a thread,
    so a slow or restarting Redis never holds the build up)."""

    def __init__(self, records: Records, build_id: str, attempt: int) -> None:
        super().__init__(logging.INFO)

        self.addFilter(SecretFilter())
        self._records = records
        self._build_id = build_id
        self._attempt = str(attempt)
        self._queue: queue.Queue[dict[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._send, name="farm-output", daemon=True)
        self._thread.start()

    def format(self, record: logging.LogRecord) -> str:

        text = record.getMessage()
        if record.name == "atomic_reactor.build.output":
            text = text.rstrip("\n")
        elif record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        return redact(text)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            return
        for line in text.splitlines() or [""]:
            self.put({"line": line})

    def put(self, fields: dict[str, str]) -> None:
        self._queue.put({**fields, "attempt": self._attempt})

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            deadline = time.monotonic() + 120
            while True:
                try:
                    self._records.add_output(self._build_id, item)
                    break
                except Exception:  # Redis away (restarting): keep the line a while
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=130)
        super().close()


@contextlib.contextmanager
def _captured(sink: _OutputSink) -> Iterator[None]:
    target = logging.getLogger("atomic_reactor")
    target.addHandler(sink)
    try:
        yield
    finally:
        target.removeHandler(sink)


# -- cancelling -----------------------------------------------------------------------------


class _CancelWatch:
    """Polls the build's cancel mark; on it, SIGTERMs this process (once).

    Outside the workflow (whose own handler turns the signal into BuildCancelled)
    the signal is only noted, so it never hits the task's own bookkeeping.
    """

    def __init__(self, records: Records, build_id: str) -> None:
        self._records = records
        self._build_id = build_id
        self._stop = threading.Event()
        self.requested = False
        self.signalled = False
        self._thread = threading.Thread(target=self._watch, name="farm-cancel", daemon=True)
        self._previous: Any = None

    def _note(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        self.requested = True

    def __enter__(self) -> _CancelWatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._note)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                wanted = self._records.cancel_requested(self._build_id)
            except Exception:
                continue
            if wanted and not self.signalled:
                self.signalled = True
                self.requested = True
                logger.warning("build %s: cancel requested", self._build_id)
                if self._previous is None:  # not the main thread: no signal handlers
                    return
                os.kill(os.getpid(), signal.SIGTERM)
                # once more, for a signal that came just before the workflow's handler
                if not self._stop.wait(3.0):
                    os.kill(os.getpid(), signal.SIGTERM)
                return


# -- the task ---------------------------------------------------------------------------------


def _error_results(exc: AtomicReactorError) -> BuildResults:
    from atomic_reactor._results import BuildResults

    error: dict[str, Any] = dict(exc.to_dict())
    error["exit_code"] = exc.exit_code
    if isinstance(exc, BuildCancelled):
        error["signal"] = exc.signum
    return BuildResults(error=error, _exception=exc)


def _state_of(results: BuildResults) -> State:
    if results.error and results.error.get("type") == "BuildCancelled":
        return "cancelled"
    return "succeeded" if results.exit_code == 0 else "failed"


def run_task(task: Task, payload: Mapping[str, Any], config: FarmConfig) -> dict[str, Any]:
    from celery.exceptions import Reject

    from atomic_reactor.farm._records import FINAL_STATES, Records

    build_id = str(task.request.id)
    me = settings()
    records = Records.connect(config.broker)
    try:
        record = records.record(build_id)
        if record.get("state") in FINAL_STATES:
            # delivered again after it finished (its acknowledgement was lost, say, in a
            # Redis restart): the build is done, its results stand
            stored = task.app.backend.get_task_meta(build_id)
            if stored.get("status") == "SUCCESS" and isinstance(stored.get("result"), dict):
                logger.warning("build %s was delivered again after it finished (%s): "
                               "not running it again", build_id, record.get("state"))
                return dict(stored["result"])
        if record.get("cancel") == "1":
            logger.info("build %s was cancelled before it started", build_id)
            cancelled = _error_results(BuildCancelled(signal.SIGTERM))
            records.finish(build_id, "cancelled", cancelled.exit_code)
            records.add_output(build_id, {"event": "end", "attempt": "0", "state": "cancelled"})
            return cancelled.to_dict()
        problem = engine_problem(me.engine)
        if problem is not None:
            logger.warning("engine down (%s): giving build %s back to the queue", problem,
                           build_id)
            raise Reject(f"engine down: {problem}", requeue=True)
        attempt = records.start_attempt(build_id, me.name)
        logger.info("build %s: attempt %d on %s", build_id, attempt, me.name)
        sink = _OutputSink(records, build_id, attempt)
        sink.put({"event": "start", "worker": me.name})
        results: BuildResults | None = None
        try:
            with _captured(sink), _CancelWatch(records, build_id) as watch:
                results = _build(payload, build_id, attempt, me, config, watch)
        finally:
            if results is None:  # a bug: still tell the submitter
                state: State = "failed"
                exit_code = 1
            else:
                state = _state_of(results)
                exit_code = results.exit_code
            sink.put({"event": "end", "state": state, "exit_code": str(exit_code)})
            sink.close()
            records.finish(build_id, state, exit_code)
            logger.info("build %s %s (exit %d) on %s", build_id, state, exit_code, me.name)
        return results.to_dict()
    finally:
        records.close()


def _build(payload: Mapping[str, Any], build_id: str, attempt: int, me: WorkerSettings,
           config: FarmConfig, watch: _CancelWatch) -> BuildResults:
    from atomic_reactor.farm._records import Records

    os.makedirs(me.workdir, mode=0o700, exist_ok=True)
    builddir = tempfile.mkdtemp(prefix=f"{build_id}.{attempt}.", dir=me.workdir)
    previous_tmp = tempfile.tempdir
    log_file = os.path.join(builddir, "build.log")
    try:
        scratch = os.path.join(builddir, "tmp")
        os.mkdir(scratch, 0o700)
        tempfile.tempdir = scratch  # the workflow's own directories go in here too
        try:
            results = _run_request(payload, builddir, log_file, me, config, watch)
        except BuildCancelled as exc:
            results = exc.results or _error_results(exc)
        except AtomicReactorError as exc:
            logger.error("%s", exc)
            results = _error_results(exc)
        except Exception as exc:  # a bug: one line for the submitter, the traceback here
            logger.exception("internal error in build %s", build_id)
            results = _error_results(AtomicReactorError(
                f"internal error on worker {me.name}: {type(exc).__name__}: {exc}"))
        with contextlib.suppress(OSError):
            with open(log_file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            records = Records.connect(config.broker)
            try:
                records.keep_log(build_id, text)
            except Exception:
                logger.warning("could not keep the log of build %s", build_id)
            finally:
                records.close()
        return results.replace(log_file=None)
    finally:
        tempfile.tempdir = previous_tmp
        shutil.rmtree(builddir, ignore_errors=True)


def _run_request(payload: Mapping[str, Any], builddir: str, log_file: str, me: WorkerSettings,
                 config: FarmConfig, watch: _CancelWatch) -> BuildResults:
    from atomic_reactor import _request
    from atomic_reactor._request import BuildRequest, apply_substitutions
    from atomic_reactor.farm._payload import decode_bytes, decrypt_secrets, unpack_source

    data: dict[str, Any] = dict(payload["build"])
    archive = payload.get("source_archive")
    if archive:
        source_dir = os.path.join(builddir, "source")
        os.mkdir(source_dir, 0o700)
        unpack_source(decode_bytes(str(archive)), source_dir)
        data["source"] = {**dict(data["source"]), "uri": f"file://{source_dir}"}
    token = payload.get("secrets")
    if token:
        items = decrypt_secrets(str(token), config.key_file)
        for item in items:
            register_secret(item.partition("=")[2])
        data = apply_substitutions(data, items, parse=False)
    for key in ("engine", "platforms"):  # (keys of build json versions to come)
        if key not in _request._KEYS:
            data.pop(key, None)
    if "engine" in _request._KEYS and me.engine != "auto":
        data["engine"] = me.engine
    data["log_file"] = log_file
    method = data.pop("method", None) or "here"
    request = BuildRequest.from_mapping(data)
    if watch.requested:
        raise BuildCancelled(signal.SIGTERM)
    if method == "here":
        from atomic_reactor.cli.progress import PlainProgress
        from atomic_reactor.inner import DockerBuildWorkflow

        workflow = DockerBuildWorkflow(**request.workflow_kwargs())
        workflow.tasker.add_progress_listener(PlainProgress())
        return workflow.build_container_image()
    from atomic_reactor._buildcontainer.run import run_in_build_container

    return run_in_build_container(method, request)
