"""What the farm keeps in Redis beside Celery's own keys.

Per build (all expire after :data:`KEEP_SECONDS`):

``arfarm:build:<id>``   a hash: the status record (state, worker, times, attempts, ...)
``arfarm:out:<id>``     a stream: the build's output lines as they come (live ``--wait``)
``arfarm:log:<id>``     a string: the complete build log of the last attempt, kept

and ``arfarm:builds``, a sorted set of build ids by submission time (recent builds).
Celery's result backend carries the :class:`BuildResults` themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import redis

__all__ = ["KEEP_SECONDS", "STATES", "FarmStatus", "Records"]

KEEP_SECONDS = 7 * 24 * 3600
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
_INDEX = "arfarm:builds"
_INDEX_SIZE = 1000


def _key(kind: str, build_id: str) -> str:
    return f"arfarm:{kind}:{build_id}"


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class FarmStatus:
    """Where a farm build stands."""

    id: str
    state: State
    image: str | None = None
    queue: str | None = None
    platform: str | None = None
    #: the worker running it (or that ran it last)
    worker: str | None = None
    #: how many times a worker started it (more than 1 after a worker was lost)
    attempts: int = 0
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    cancel_requested: bool = False
    #: the builds of a multi-platform request (ids), on its parent record
    children: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_record(cls, build_id: str, record: Mapping[str, str]) -> FarmStatus:
        state = record.get("state", "queued")
        exit_code = record.get("exit_code")
        children = record.get("children", "")
        return cls(
            id=build_id,
            state=state if state in STATES else "queued",  # type: ignore[arg-type]
            image=record.get("image") or None,
            queue=record.get("queue") or None,
            platform=record.get("platform") or None,
            worker=record.get("worker") or None,
            attempts=int(record.get("attempts") or 0),
            submitted_at=_when(record.get("submitted_at")),
            started_at=_when(record.get("started_at")),
            finished_at=_when(record.get("finished_at")),
            exit_code=int(exit_code) if exit_code not in (None, "") else None,
            cancel_requested=record.get("cancel") == "1",
            children=tuple(c for c in children.split(",") if c),
        )

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "state": self.state, "image": self.image, "queue": self.queue,
                "platform": self.platform, "worker": self.worker, "attempts": self.attempts,
                "submitted_at": iso(self.submitted_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at), "exit_code": self.exit_code,
                "cancel_requested": self.cancel_requested, "children": list(self.children)}


class Records:
    """Reading and writing the farm's keys (a thin layer over one Redis client)."""

    def __init__(self, client: redis.Redis) -> None:
        # redis-py types each command's result as "sync or async": Any is plainer
        self.client: Any = client

    @classmethod
    def connect(cls, url: str) -> Records:
        import redis

        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=30,
                                        socket_connect_timeout=10, health_check_interval=10))

    def close(self) -> None:
        self.client.close()

    # -- status records ----------------------------------------------------------------
    def create(self, build_id: str, fields: Mapping[str, str]) -> None:
        now = time.time()
        record = {"state": "queued", "attempts": "0", "submitted_at": f"{now:.3f}", **fields}
        pipe = self.client.pipeline()
        pipe.hset(_key("build", build_id), mapping=record)
        pipe.expire(_key("build", build_id), KEEP_SECONDS)
        pipe.zadd(_INDEX, {build_id: now})
        pipe.zremrangebyrank(_INDEX, 0, -_INDEX_SIZE - 1)
        pipe.execute()

    def update(self, build_id: str, **fields: str) -> None:
        pipe = self.client.pipeline()
        pipe.hset(_key("build", build_id), mapping=fields)
        pipe.expire(_key("build", build_id), KEEP_SECONDS)
        pipe.execute()

    def record(self, build_id: str) -> dict[str, str]:
        return dict(self.client.hgetall(_key("build", build_id)))

    def status(self, build_id: str) -> FarmStatus | None:
        record = self.record(build_id)
        return FarmStatus.from_record(build_id, record) if record else None

    def start_attempt(self, build_id: str, worker: str) -> int:
        """Count one more start of the build; the attempt number."""
        pipe = self.client.pipeline()
        pipe.hincrby(_key("build", build_id), "attempts", 1)
        pipe.hset(_key("build", build_id), mapping={
            "state": "running", "worker": worker, "started_at": f"{time.time():.3f}"})
        pipe.expire(_key("build", build_id), KEEP_SECONDS)
        return int(pipe.execute()[0])

    def undo_attempt(self, build_id: str) -> None:
        """A worker gave a build back before it started (its engine is down)."""
        self.client.hincrby(_key("build", build_id), "attempts", -1)

    def finish(self, build_id: str, state: State, exit_code: int) -> None:
        self.update(build_id, state=state, exit_code=str(exit_code),
                    finished_at=f"{time.time():.3f}")

    def request_cancel(self, build_id: str) -> str | None:
        """Mark the build for cancelling; the state it was in (None: unknown build).

        A queued build becomes ``cancelled`` at once (atomically: a worker that
        starts it at the same moment sees the mark and does not build).
        """
        key = _key("build", build_id)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    state = pipe.hget(key, "state")
                    if state is None:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.hset(key, "cancel", "1")
                    if state == "queued":
                        pipe.hset(key, mapping={"state": "cancelled", "exit_code": "143",
                                                "finished_at": f"{time.time():.3f}"})
                    pipe.execute()
                    return str(state)
                except _watch_error():
                    continue

    def cancel_requested(self, build_id: str) -> bool:
        return bool(self.client.hget(_key("build", build_id), "cancel") == "1")

    def recent(self, limit: int = 50) -> list[FarmStatus]:
        ids = self.client.zrevrange(_INDEX, 0, limit - 1)
        out = []
        for build_id in ids:
            status = self.status(str(build_id))
            if status is not None:
                out.append(status)
        return out

    # -- output and log ------------------------------------------------------------------
    def add_output(self, build_id: str, fields: Mapping[str, str]) -> None:
        key = _key("out", build_id)
        pipe = self.client.pipeline()
        pipe.xadd(key, dict(fields), maxlen=200_000, approximate=True)
        pipe.expire(key, KEEP_SECONDS)
        pipe.execute()

    def read_output(self, build_id: str, after: str, block_ms: int | None
                    ) -> list[tuple[str, dict[str, str]]]:
        """Output entries after entry id ``after`` (``"0"``: from the start)."""
        return [(entry, fields) for _build, entry, fields
                in self.read_outputs({build_id: after}, block_ms)]

    def read_outputs(self, positions: Mapping[str, str], block_ms: int | None
                     ) -> list[tuple[str, str, dict[str, str]]]:
        """``(build id, entry id, fields)`` of several builds' output after the positions."""
        prefix = len(_key("out", ""))
        found = self.client.xread({_key("out", b): after for b, after in positions.items()},
                                  count=1000, block=block_ms)
        entries: list[tuple[str, str, dict[str, str]]] = []
        for stream, items in found or []:
            for entry_id, fields in items:
                entries.append((str(stream)[prefix:], str(entry_id), dict(fields)))
        return entries

    def keep_log(self, build_id: str, text: str) -> None:
        self.client.set(_key("log", build_id), text, ex=KEEP_SECONDS)

    def log(self, build_id: str) -> str | None:
        value = self.client.get(_key("log", build_id))
        return None if value is None else str(value)


def _watch_error() -> type[Exception]:
    import redis

    return redis.WatchError
