"""The farm's settings and its Celery application.

Celery (with a Redis broker and result backend) does the queueing, delivery,
acknowledgement and redelivery; this module only configures it:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a build's message is
  acknowledged when the build has finished; a pool process that dies puts it back.
- ``worker_prefetch_multiplier = 1``: a worker holds no more builds than it runs.
- ``visibility_timeout``: a message delivered to a worker that vanished as a whole
  (``kill -9`` of every process, a host lost) becomes visible again after this
  many seconds, so another worker runs the build. While a worker lives it renews
  the lease of the messages it holds (see ``_worker.LeaseRenewal``), so a build
  may run longer than the timeout without being delivered twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from atomic_reactor.errors import InputError

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "BROKER_ENV",
    "DEFAULT_QUEUE",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "KEY_FILE_ENV",
    "TASK_NAME",
    "FarmConfig",
    "make_app",
    "platform_queue",
]

#: stands for ``--broker`` everywhere
BROKER_ENV = "ATOMIC_REACTOR_BROKER"
#: a file holding the farm's shared key (encrypted secrets in requests)
KEY_FILE_ENV = "ATOMIC_REACTOR_FARM_KEY_FILE"
#: seconds (see the module documentation)
VISIBILITY_ENV = "ATOMIC_REACTOR_FARM_VISIBILITY_TIMEOUT"
DEFAULT_QUEUE = "atomic-reactor"
DEFAULT_VISIBILITY_TIMEOUT = 30.0
TASK_NAME = "atomic_reactor.farm.build"
MANIFEST_TASK_NAME = "atomic_reactor.farm.manifest_list"
#: kombu's sorted set of delivered, unacknowledged messages (its default name)
UNACKED_INDEX_KEY = "unacked_index"


def platform_queue(queue: str, platform: str) -> str:
    """The queue of the builds for one platform: ``atomic-reactor@linux-arm64``."""
    return f"{queue}@{platform.replace('/', '-')}"


@dataclass(frozen=True)
class FarmConfig:
    """Where the farm's Redis is and how its messages behave."""

    broker: str
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    key_file: str | None = None

    @classmethod
    def resolve(cls, broker: str | None = None, *, visibility_timeout: float | None = None,
                key_file: str | None = None) -> FarmConfig:
        """Fill what is not given from the environment; check the broker URL."""
        url = broker or os.environ.get(BROKER_ENV)
        if not url:
            raise InputError(f"no broker: give --broker redis://HOST:PORT/DB or set {BROKER_ENV}")
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise InputError(f"broker {_safe_url(url)!r} is not a redis://HOST:PORT/DB URL")
        if visibility_timeout is None:
            raw = os.environ.get(VISIBILITY_ENV)
            try:
                visibility_timeout = float(raw) if raw else DEFAULT_VISIBILITY_TIMEOUT
            except ValueError:
                raise InputError(f"{VISIBILITY_ENV}={raw!r} is not a number of seconds") from None
        if visibility_timeout < 3:
            raise InputError("the visibility timeout must be at least 3 seconds")
        return cls(url, float(visibility_timeout), key_file or os.environ.get(KEY_FILE_ENV) or None)

    @property
    def safe_broker(self) -> str:
        """The broker URL without a password (for messages)."""
        return _safe_url(self.broker)

    @property
    def lease_interval(self) -> float:
        """How often a worker renews the lease of the messages it holds."""
        return max(1.0, self.visibility_timeout / 3)

    def transport_options(self) -> dict[str, Any]:
        return {
            "visibility_timeout": self.visibility_timeout,
            "unacked_index_key": UNACKED_INDEX_KEY,
            # look for messages of lost workers every 2 s (kombu's default: ~100 s)
            "unacked_restore_interval": 2,
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "health_check_interval": 10,
        }


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def make_app(config: FarmConfig) -> Celery:
    """The Celery application of the farm (its tasks registered)."""
    from celery import Celery

    backend = "atomic_reactor.farm._backend:FarmRedisBackend+" + config.broker
    app = Celery("atomic_reactor.farm", broker=config.broker, backend=backend,
                 set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_default_queue=DEFAULT_QUEUE,
        broker_transport_options=config.transport_options(),
        result_backend_transport_options={"socket_timeout": 30, "socket_connect_timeout": 10,
                                          "retry_policy": {"timeout": 60.0}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis restart: wait for it, forever
        worker_cancel_long_running_tasks_on_connection_loss=False,
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    from atomic_reactor.farm import _task

    _task.register(app, config)
    return app
