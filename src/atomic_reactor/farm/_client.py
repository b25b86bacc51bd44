"""Submitting builds to the farm and following them."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atomic_reactor.errors import AtomicReactorError, BuildCancelled, InputError
from atomic_reactor.farm._config import DEFAULT_QUEUE, TASK_NAME, FarmConfig, platform_queue
from atomic_reactor.farm._records import FarmStatus, Records

if TYPE_CHECKING:
    from celery import Celery

    from atomic_reactor._results import BuildResults

__all__ = ["FarmBuild", "FarmError", "prepare_payload", "reaching", "submit_request"]

logger = logging.getLogger(__name__)

#: Redis errors that mean "not reachable right now" (restart, network)
_RETRY_FOR = 120.0


class FarmError(AtomicReactorError):
    """The farm cannot be reached or does not know the build."""


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


@contextlib.contextmanager
def reaching(config: FarmConfig) -> Iterator[None]:
    """Redis that cannot be reached -> one :class:`FarmError` line."""
    try:
        yield
    except _redis_errors() as exc:
        raise FarmError(f"cannot reach the farm at {config.safe_broker}: {exc}") from None


def _results_from(value: Any) -> BuildResults:
    from atomic_reactor._results import BuildResults

    if not isinstance(value, Mapping):
        raise FarmError(f"the farm returned no build results ({type(value).__name__})")
    return BuildResults.from_dict(value)


def _cancelled_results() -> BuildResults:
    from atomic_reactor._results import BuildResults

    exc = BuildCancelled()
    error: dict[str, Any] = dict(exc.to_dict())
    error.update(exit_code=exc.exit_code, signal=exc.signum)
    return BuildResults(error=error)


class FarmBuild:
    """A build submitted to the farm: ``.id``, ``.wait()``, ``.status()``, ``.cancel()``."""

    def __init__(self, build_id: str, config: FarmConfig, app: Celery | None = None) -> None:
        self.id = build_id
        self.config = config
        self._app = app
        self._records: Records | None = None

    def __repr__(self) -> str:
        return f"FarmBuild({self.id!r})"

    @property
    def app(self) -> Celery:
        if self._app is None:
            from atomic_reactor.farm._config import make_app

            self._app = make_app(self.config)
        return self._app

    @property
    def records(self) -> Records:
        if self._records is None:
            self._records = Records.connect(self.config.broker)
        return self._records

    def close(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None

    def status(self) -> FarmStatus:
        """Where the build stands (queued / running on which worker / finished, with times)."""
        try:
            status = self.records.status(self.id)
        except _redis_errors() as exc:
            raise FarmError(f"cannot reach the farm at {self.config.safe_broker}: {exc}") from None
        if status is None:
            raise FarmError(f"the farm knows no build {self.id!r}")
        if status.state == "queued" and status.children:
            # a multi-platform build runs while its per-platform builds do
            states = {s.state for c in status.children if (s := self.records.status(c))}
            if states - {"queued"}:
                import dataclasses

                status = dataclasses.replace(status, state="running")
        return status

    def log(self) -> str | None:
        """The complete build log of the build's last attempt (None: not finished)."""
        with reaching(self.config):
            return self.records.log(self.id)

    def cancel(self) -> FarmStatus:
        """Cancel: a queued build never starts, a running one is cancelled as by SIGTERM."""
        with reaching(self.config):
            return self._cancel()

    def _cancel(self) -> FarmStatus:
        state = self.records.request_cancel(self.id)
        if state is None:
            raise FarmError(f"the farm knows no build {self.id!r}")
        status = self.records.status(self.id)
        for child in status.children if status else ():
            FarmBuild(child, self.config, self._app)._cancel()
        if state in ("queued", "running"):
            self.app.control.revoke(self.id)  # workers holding it queued drop it
        return self.status()

    def wait(self, timeout: float | None = None,
             on_output: Callable[[str], None] | None = None) -> BuildResults:
        """Wait for the build's results; ``on_output(line)`` gets its output as it comes.

        Raises :class:`FarmError` after ``timeout`` seconds (the build goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        positions: dict[str, str] = {self.id: "0"}
        prefixes: dict[str, str] = {self.id: ""}
        attempts_seen: dict[str, int] = {}
        backend = self.app.backend
        trouble_since: float | None = None
        final: BuildResults | None = None
        end_seen = False
        drain_until: float | None = None
        children_known = False
        while True:
            try:
                if not children_known:  # a multi-platform build: its builds' output too
                    status = self.records.status(self.id)
                    children_known = status is not None
                    for child in status.children if status else ():
                        record = self.records.status(child)
                        positions[child] = "0"
                        prefixes[child] = f"[{record.platform if record else child}] "
                entries = self.records.read_outputs(positions, block_ms=500)
                for build_id, entry_id, fields in entries:
                    positions[build_id] = entry_id
                    prefix = prefixes.get(build_id, "")
                    attempt = int(fields.get("attempt") or 0)
                    seen = attempts_seen.get(build_id, 0)
                    event = fields.get("event")
                    if event == "start":
                        if attempt > 1 and attempt != seen and on_output:
                            on_output(f"{prefix}atomic-reactor: build restarted on worker "
                                      f"{fields.get('worker')} (attempt {attempt})")
                        attempts_seen[build_id] = max(seen, attempt)
                    elif event == "end":
                        if build_id == self.id:
                            end_seen = attempt >= seen
                    elif "line" in fields and on_output is not None:
                        on_output(prefix + fields["line"])
                if final is None:
                    # (the backend's task meta, not an AsyncResult: no pub/sub subscription
                    # left behind)
                    final = self._final(backend.get_task_meta(self.id))
                trouble_since = None
            except _redis_errors() as exc:
                now = time.monotonic()
                trouble_since = trouble_since or now
                if now - trouble_since > _RETRY_FOR:
                    raise FarmError(f"lost the farm at {self.config.safe_broker}: {exc}") \
                        from None
                time.sleep(1)
                continue
            if final is not None:
                if end_seen:
                    return final
                # the last lines may still be on their way
                drain_until = drain_until or time.monotonic() + 3
                if time.monotonic() > drain_until:
                    return final
            if deadline is not None and time.monotonic() > deadline:
                raise FarmError(f"build {self.id} did not finish within {timeout:g} s "
                                "(it goes on; `atomic-reactor farm status` follows it)")

    def _final(self, meta: Mapping[str, Any]) -> BuildResults | None:
        state = meta.get("status")
        if state == "SUCCESS":
            return _results_from(meta.get("result"))
        if state == "REVOKED":
            return _cancelled_results()
        status = self.records.status(self.id)
        if status is not None and status.state == "cancelled" and status.attempts == 0:
            return _cancelled_results()  # cancelled while queued: it never runs
        if state == "FAILURE":
            exc = meta.get("result")
            if type(exc).__name__ == "WorkerLostError":
                return None  # put back in the queue: another worker runs it
            raise FarmError(f"build {self.id} failed on the farm: {type(exc).__name__}: {exc}")
        return None


def prepare_payload(data: Mapping[str, Any], secrets: Sequence[str],
                    config: FarmConfig) -> dict[str, Any]:
    """The message for one build: the build json, a packed path source, encrypted secrets."""
    from atomic_reactor._request import BuildRequest
    from atomic_reactor.farm._payload import (
        PAYLOAD_VERSION,
        encode_bytes,
        encrypt_secrets,
        pack_path_source,
        source_directory,
    )

    build = dict(data)
    check = {k: v for k, v in build.items() if k not in ("engine", "platforms", "method")}
    if "log_file" in check:
        raise InputError("log_file is not for farm builds (the farm keeps the log: "
                         "`atomic-reactor farm status --log ID`)")
    BuildRequest.from_mapping({**check})  # bad input is refused here, before queueing
    payload: dict[str, Any] = {"version": PAYLOAD_VERSION, "build": build,
                               "submitter": socket.gethostname()}
    source = build.get("source") or {}
    if source.get("provider") == "path":
        payload["source_archive"] = encode_bytes(pack_path_source(source_directory(source)))
    if secrets:
        payload["secrets"] = encrypt_secrets(secrets, config.key_file)
    return payload


def _platforms(data: Mapping[str, Any]) -> list[str]:
    from atomic_reactor._engine.types import Platform

    raw = data.get("platforms")
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence) or \
            not all(isinstance(p, str) for p in raw):
        raise InputError("build json: 'platforms' must be a list of os/arch strings")
    out = []
    for item in raw:
        try:
            text = str(Platform.parse(item))
        except ValueError as exc:
            raise InputError(f"build json: {exc}") from None
        if text not in out:
            out.append(text)
    return out


def submit_request(data: Mapping[str, Any], config: FarmConfig, *,
                   queue: str | None = None, secrets: Sequence[str] = ()) -> FarmBuild:
    """Queue one build (or, for several ``platforms``, one per platform and the list)."""
    from atomic_reactor.farm._config import make_app

    queue = queue or DEFAULT_QUEUE
    platforms = _platforms(data)
    payload = prepare_payload(data, secrets, config)
    app = make_app(config)
    build_id = uuid.uuid4().hex
    records = Records.connect(config.broker)
    try:
        image = str(data.get("image") or "")
        if len(platforms) > 1:
            from atomic_reactor.farm._multi import submit_multi

            submit_multi(app, records, build_id, payload, platforms, queue, image)
        else:
            target = platform_queue(queue, platforms[0]) if platforms else queue
            if platforms:
                payload["build"] = {**payload["build"], "platforms": platforms}
            records.create(build_id, {"image": image, "queue": target,
                                      "platform": platforms[0] if platforms else ""})
            app.send_task(TASK_NAME, args=[payload], task_id=build_id, queue=target)
    except _redis_errors() as exc:
        raise FarmError(f"cannot reach the farm at {config.safe_broker}: {exc}") from None
    finally:
        records.close()
    return FarmBuild(build_id, config, app)
