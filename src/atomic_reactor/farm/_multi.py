"""Multi-platform requests: one build per platform, each on a worker of that platform
(per-platform queues), and a last step once all have finished (a Celery chord)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from atomic_reactor.farm._config import FarmConfig
    from atomic_reactor.farm._records import Records

__all__ = ["register_manifest_task", "submit_multi"]

logger = logging.getLogger(__name__)


def register_manifest_task(app: Celery, config: FarmConfig) -> None:
    del app, config


def submit_multi(app: Celery, records: Records, build_id: str, payload: Mapping[str, Any],
                 platforms: Sequence[str], queue: str, image: str) -> None:
    from atomic_reactor.errors import InputError

    del app, records, build_id, payload, queue, image
    raise InputError(f"multi-platform farm builds ({', '.join(platforms)}) are not "
                     "supported yet")
