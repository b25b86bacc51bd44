"""Multi-platform requests: one build per platform, each on a worker of that platform,
and the manifest list pushed when all have finished (a Celery chord).

A request ``{"image": "app:1", "platforms": ["linux/amd64", "linux/arm64"], ...}``
becomes one build per platform, ``app:1-linux-amd64`` and ``app:1-linux-arm64``, each
with ``"platforms": [that one]``, queued on that platform's queue (only workers that
declare the platform take it), and a last task (the chord's body, on the plain
queue) that pushes the list ``app:1`` naming each platform's pushed manifest to every
target registry. The parent build's id is the last task's id: its results are the
parent's results (every push, the list's included); ``farm status`` of the parent
names the builds per platform.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atomic_reactor.errors import AtomicReactorError
from atomic_reactor.farm._config import MANIFEST_TASK_NAME, TASK_NAME, platform_queue

if TYPE_CHECKING:
    from celery import Celery, Task

    from atomic_reactor._results import BuildResults
    from atomic_reactor.farm._config import FarmConfig
    from atomic_reactor.farm._records import Records

__all__ = ["platform_image", "register_manifest_task", "submit_multi"]

logger = logging.getLogger(__name__)


def platform_image(image: str, platform: str) -> str:
    """The per-platform image of a multi-platform build: ``app:1`` -> ``app:1-linux-arm64``."""
    from atomic_reactor._reference import ImageName

    name = ImageName.parse(image)
    return str(name.copy(tag=f"{name.tag or 'latest'}-{platform.replace('/', '-')}",
                         digest=None))


def submit_multi(app: Celery, records: Records, build_id: str, payload: Mapping[str, Any],
                 platforms: Sequence[str], queue: str, image: str) -> None:
    from celery import chord

    build = dict(payload["build"])
    children: list[str] = []
    header = []
    for platform in platforms:
        child = uuid.uuid4().hex
        child_image = platform_image(image, platform)
        child_payload = {**payload, "build": {**build, "image": child_image,
                                              "platforms": [platform]}}
        target = platform_queue(queue, platform)
        records.create(child, {"image": child_image, "queue": target, "platform": platform,
                               "parent": build_id})
        header.append(app.signature(TASK_NAME, args=[child_payload], queue=target,
                                    immutable=True).set(task_id=child))
        children.append(child)
    records.create(build_id, {"image": image, "queue": queue, "platform": ",".join(platforms),
                              "children": ",".join(children)})
    body = app.signature(MANIFEST_TASK_NAME, kwargs={
        "image": image, "platforms": list(platforms), "children": children,
        "registries": list(build.get("target_registries") or []),
        "insecure": bool(build.get("target_registries_insecure", False)),
    }, queue=queue).set(task_id=build_id)
    chord(header)(body)


def register_manifest_task(app: Celery, config: FarmConfig) -> None:
    @app.task(name=MANIFEST_TASK_NAME, bind=True, acks_late=True, shared=False,  # type: ignore[untyped-decorator]
              reject_on_worker_lost=True)
    def manifest_list(self: Task, results: list[Any], *, image: str, platforms: list[str],
                      children: list[str], registries: list[str], insecure: bool
                      ) -> dict[str, Any]:
        return run_manifest_task(self, results, config, image=image, platforms=platforms,
                                 children=children, registries=registries, insecure=insecure)


def _failed(results: Sequence[BuildResults]) -> BuildResults | None:
    failures = [r for r in results if r.exit_code != 0]
    cancelled = [r for r in failures if (r.error or {}).get("type") == "BuildCancelled"]
    chosen = cancelled or failures
    return chosen[0] if chosen else None


def _child_results(state: str, value: Any) -> BuildResults:
    from atomic_reactor._results import BuildResults
    from atomic_reactor.errors import BuildCancelled
    from atomic_reactor.farm._task import _error_results

    if state == "SUCCESS" and isinstance(value, Mapping):
        return BuildResults.from_dict(value)
    if state == "REVOKED":
        return _error_results(BuildCancelled())
    return _error_results(AtomicReactorError(f"a platform's build failed on the farm: "
                                             f"{type(value).__name__}: {value}"))


def run_manifest_task(task: Task, raw: Sequence[Any], config: FarmConfig, *, image: str,
                      platforms: Sequence[str], children: Sequence[str],
                      registries: Sequence[str], insecure: bool) -> dict[str, Any]:
    from atomic_reactor.farm._records import Records
    from atomic_reactor.farm._task import _error_results, _state_of, settings

    build_id = str(task.request.id)
    me = settings()
    records = Records.connect(config.broker)
    try:
        # each platform's results by its build id (not by position in the chord's list,
        # which a build delivered twice could fill twice)
        del raw
        metas = [task.app.backend.get_task_meta(child) for child in children]
        waiting = [c for c, m in zip(children, metas, strict=True)
                   if m.get("status") not in ("SUCCESS", "FAILURE", "REVOKED")]
        if waiting:
            logger.warning("builds %s have no results yet; looking again shortly", waiting)
            raise task.retry(countdown=3, max_retries=100)
        results = [_child_results(str(m.get("status")), m.get("result")) for m in metas]
        attempt = records.start_attempt(build_id, me.name)
        records.add_output(build_id, {"event": "start", "worker": me.name,
                                      "attempt": str(attempt)})

        def say(line: str) -> None:
            logger.info("%s", line)
            records.add_output(build_id, {"line": line, "attempt": str(attempt)})

        for platform, child, result in zip(platforms, children, results, strict=False):
            say(f"{platform}: build {child} {_state_of(result)} (exit {result.exit_code})")
        failed = _failed(results)
        if failed is not None:
            parent = failed.replace(image=image)
        else:
            try:
                parent = _push_lists(image, platforms, results, registries, insecure, say)
            except AtomicReactorError as exc:
                say(f"error: {exc}")
                parent = _error_results(exc).replace(image=image)
        state = _state_of(parent)
        records.add_output(build_id, {"event": "end", "state": state, "attempt": str(attempt),
                                      "exit_code": str(parent.exit_code)})
        records.finish(build_id, state, parent.exit_code)
        return parent.to_dict()
    finally:
        records.close()


def _push_lists(image: str, platforms: Sequence[str], results: Sequence[BuildResults],
                registries: Sequence[str], insecure: bool, say: Any) -> BuildResults:
    from atomic_reactor._engine.types import Platform
    from atomic_reactor._reference import ImageName
    from atomic_reactor._registry.manifest_list import ManifestListEntry, push_manifest_list
    from atomic_reactor._results import BuildResults, PushedImage
    from atomic_reactor.errors import RegistryError

    name = ImageName.parse(image)
    repository = name.get_repo()
    tag = name.tag or "latest"
    pushed: list[PushedImage] = [p for r in results for p in r.pushed]
    for registry in registries:
        entries = []
        for platform, result in zip(platforms, results, strict=False):
            digests = [p.digest for p in result.pushed if p.registry == registry and p.digest]
            if not digests:
                raise RegistryError(f"the {platform} build pushed nothing to {registry}",
                                    registry=registry)
            entries.append(ManifestListEntry(digest=digests[0],
                                             platform=Platform.parse(platform)))
        stored = push_manifest_list(registry, repository, [tag], entries, insecure=insecure)
        say(f"pushed manifest list {registry}/{repository}:{tag} ({stored.digest}) for "
            f"{', '.join(platforms)}")
        pushed.append(PushedImage(registry=registry, image=f"{registry}/{repository}:{tag}",
                                  digest=stored.digest))
    per_platform = {platform: {"image": result.image, "image_id": result.image_id,
                               "digests": result.digests}
                    for platform, result in zip(platforms, results, strict=False)}
    return BuildResults(image=image, pushed=tuple(pushed), tags=(image,),
                        plugin_results={"farm": {"platforms": per_platform}})
