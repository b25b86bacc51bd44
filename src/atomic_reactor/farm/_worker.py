"""``atomic-reactor worker``: a Celery worker that runs farm builds.

Two consumer bootsteps beside Celery's own:

``EngineWatch``
    checks the container engine every few seconds; while it does not answer the
    worker stops consuming its queues (it takes no build it cannot run, and says
    so), and consumes them again once the engine is back. A build that reached a
    worker whose engine went down just before is given back to the queue by the
    task itself (``Reject(requeue=True)``).
``LeaseRenewal``
    renews the visibility lease of the messages this worker holds (kombu's
    ``unacked_index``), so a live worker's long build is never delivered a second
    time, while the builds of a worker that was lost as a whole are delivered again
    after the visibility timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Sequence
from typing import Any

from atomic_reactor.farm._config import (
    DEFAULT_QUEUE,
    UNACKED_INDEX_KEY,
    FarmConfig,
    make_app,
    platform_queue,
)
from atomic_reactor.farm._task import WorkerSettings, configure, engine_problem

__all__ = ["run_worker", "worker_queues"]

logger = logging.getLogger(__name__)

ENGINE_CHECK_INTERVAL = 3.0


def worker_queues(queues: Sequence[str], platforms: Sequence[str]) -> list[str]:
    """Each queue, and its per-platform queue for each platform the worker builds."""
    names: list[str] = []
    for name in queues or [DEFAULT_QUEUE]:
        for candidate in (name, *(platform_queue(name, p) for p in platforms)):
            if candidate not in names:
                names.append(candidate)
    return names


def _steps(config: FarmConfig, engine: str) -> tuple[type, type]:
    from celery import bootsteps

    class EngineWatch(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = {"celery.worker.consumer.tasks:Tasks"}

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.paused: list[str] = []
            self.timer: Any = None

        def start(self, c: Any) -> None:
            self.check(c)
            self.timer = c.timer.call_repeatedly(ENGINE_CHECK_INTERVAL, self.check, (c,),
                                                 priority=10)

        def stop(self, c: Any) -> None:
            del c
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def check(self, c: Any) -> None:
            problem = engine_problem(engine)
            if problem is not None and not self.paused:
                names = sorted(q.name for q in c.task_consumer.queues)
                for name in names:
                    c.cancel_task_queue(name)
                self.paused = names
                logger.warning("engine down (%s): not taking builds from %s until it answers",
                               problem, ", ".join(names))
            elif problem is None and self.paused:
                for name in self.paused:
                    c.add_task_queue(name)
                logger.warning("engine answers again: taking builds from %s",
                               ", ".join(self.paused))
                self.paused = []

    class LeaseRenewal(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = {"celery.worker.consumer.tasks:Tasks"}

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.timer: Any = None
            self.client: Any = None

        def start(self, c: Any) -> None:
            import redis

            self.client = redis.Redis.from_url(config.broker, socket_timeout=5,
                                               socket_connect_timeout=5)
            self.timer = c.timer.call_repeatedly(config.lease_interval, self.renew, (),
                                                 priority=10)

        def stop(self, c: Any) -> None:
            del c
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.client is not None:
                self.client.close()

        def renew(self) -> None:
            from celery.worker import state

            held = list(state.active_requests) + list(state.reserved_requests)
            tags = {str(r.message.delivery_tag): time.time() for r in held
                    if getattr(r, "message", None) is not None and r.message.delivery_tag}
            if not tags:
                return
            try:
                # XX: only messages still unacknowledged (never re-adds an acked one)
                self.client.zadd(UNACKED_INDEX_KEY, tags, xx=True)
            except Exception as exc:  # Redis away: the next round tries again
                logger.debug("lease renewal failed: %s", exc)

    return EngineWatch, LeaseRenewal


def run_worker(config: FarmConfig, *, name: str | None = None, concurrency: int = 1,
               queues: Sequence[str] = (), engine: str = "auto",
               platforms: Sequence[str] = (), workdir: str | None = None) -> int:
    """Run a worker until it is stopped (SIGTERM/SIGINT: warm shutdown); its exit code."""
    from atomic_reactor._engine.types import Platform

    host = socket.gethostname()
    name = name or host
    declared = list(platforms) or [str(Platform.host())]
    queue_names = worker_queues(queues, declared)
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    directory = workdir or os.path.join(state_home, "atomic-reactor", "farm", name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    configure(WorkerSettings(name=name, workdir=directory, engine=engine,
                             platforms=tuple(declared)))
    app = make_app(config)
    # the task's return value is the whole BuildResults: the worker says less than that
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")
    for step in _steps(config, engine):
        app.steps["consumer"].add(step)
    logger.info("worker %s: broker %s, queues %s, platforms %s, builds in %s", name,
                config.safe_broker, ", ".join(queue_names), ", ".join(declared), directory)
    worker = app.Worker(hostname=f"{name}@{host}", concurrency=concurrency, pool="prefork",
                        queues=queue_names, loglevel="INFO", without_gossip=True,
                        without_heartbeat=True, optimization="fair")
    worker.start()
    return int(worker.exitcode or 0)
