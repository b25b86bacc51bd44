"""The build farm: builds queued on Celery (Redis broker and result backend) and run by
``atomic-reactor worker`` processes, on this host or many.

::

    from atomic_reactor.farm import submit

    build = submit("build.json", broker="redis://farm.example:6379/0",
                   substitutions=["image=app:2"])
    print(build.id, build.status().state)
    results = build.wait(on_output=print)     # the BuildResults, as a local build's
    results.raise_for_status()

Importing this package does not import Celery; submitting does. See docs/farm.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from atomic_reactor._secrets import register_secret
from atomic_reactor.farm._client import FarmBuild, FarmError
from atomic_reactor.farm._config import BROKER_ENV, DEFAULT_QUEUE, FarmConfig
from atomic_reactor.farm._payload import MAX_SOURCE_BYTES
from atomic_reactor.farm._records import FarmStatus

__all__ = [
    "BROKER_ENV",
    "DEFAULT_QUEUE",
    "MAX_SOURCE_BYTES",
    "FarmBuild",
    "FarmConfig",
    "FarmError",
    "FarmStatus",
    "build",
    "recent",
    "submit",
]


def submit(
    build_json_or_request: str | Path | Mapping[str, Any],
    *,
    broker: str | None = None,
    queue: str | None = None,
    substitutions: Sequence[str] = (),
    secret_substitutions: Sequence[str] = (),
    key_file: str | None = None,
) -> FarmBuild:
    """Queue a build on the farm and return it (``.id``, ``.wait()``, ``.status()``,
    ``.cancel()``).

    :param build_json_or_request: a build json file, or the request as a mapping (what a
        build json holds)
    :param broker: ``redis://HOST:PORT/DB`` (default: ``$ATOMIC_REACTOR_BROKER``)
    :param queue: the queue (default ``atomic-reactor``); a request naming one platform
        goes to that platform's queue, several platforms fan out one build each
    :param substitutions: ``KEY=VALUE`` as for ``build json --substitute``
    :param secret_substitutions: ``KEY=VALUE`` secrets; refused unless the farm has a
        shared key (``key_file`` or ``$ATOMIC_REACTOR_FARM_KEY_FILE``) to encrypt them
    """
    from atomic_reactor._request import apply_substitutions, load_build_json

    config = FarmConfig.resolve(broker, key_file=key_file)
    if isinstance(build_json_or_request, Mapping):
        import copy

        data: dict[str, Any] = copy.deepcopy(dict(build_json_or_request))
    else:
        data = load_build_json(build_json_or_request)
    data = apply_substitutions(data, list(substitutions))
    if secret_substitutions:

        for item in secret_substitutions:
            register_secret(item.partition("=")[2])
    from atomic_reactor.farm._client import submit_request

    return submit_request(data, config, queue=queue, secrets=list(secret_substitutions))


def build(build_id: str, *, broker: str | None = None) -> FarmBuild:
    """A build submitted before (by its id)."""
    return FarmBuild(build_id, FarmConfig.resolve(broker))


def recent(*, broker: str | None = None, limit: int = 50) -> list[FarmStatus]:
    """The status of the most recent builds, newest first."""
    from atomic_reactor.farm._client import reaching
    from atomic_reactor.farm._records import Records

    config = FarmConfig.resolve(broker)
    records = Records.connect(config.broker)
    try:
        with reaching(config):
            return records.recent(limit)
    finally:
        records.close()
