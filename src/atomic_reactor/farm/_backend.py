"""The farm's result backend: Celery's Redis backend, read by polling only.

Celery's Redis backend subscribes a sender to the result channel of every task it
sends (for ``AsyncResult.get``). The farm reads results itself (``FarmBuild.wait``
polls the task's meta while it follows the output stream), so it never subscribes:
no subscription is left behind for a build nobody waits for, and no result object
talks to Redis when it is collected.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend

__all__ = ["FarmRedisBackend"]


class FarmRedisBackend(RedisBackend):  # type: ignore[misc]
    def on_task_call(self, producer: Any, task_id: str) -> None:
        del producer, task_id  # no subscription: results are polled

    def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True
                           ) -> Any:
        del weak, start_drainer
        return result

    def add_pending_results(self, results: Any, weak: bool = False) -> None:
        del results, weak
