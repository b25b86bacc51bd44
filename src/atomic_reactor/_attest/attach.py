"""Attaching one kind of document to every image a build pushed (plugins ``sbom`` and
``provenance``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atomic_reactor._attest.referrers import attach_artifact
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._results import AttachedArtifact

if TYPE_CHECKING:
    from atomic_reactor.inner import DockerBuildWorkflow

logger = logging.getLogger(__name__)

__all__ = ["attach_to_pushed", "build_time"]


def build_time(workflow: DockerBuildWorkflow) -> datetime:
    """SOURCE_DATE_EPOCH for a reproducible build, else now (UTC)."""
    epoch = getattr(workflow, "source_date_epoch", None)
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else datetime.now(UTC)


def _registry_settings(workflow: DockerBuildWorkflow, registry: str) -> Mapping[str, Any]:
    args = workflow.plugin_args("tag_and_push") or {}
    registries = args.get("registries") or {}
    return registries.get(registry) or {}


def attach_to_pushed(workflow: DockerBuildWorkflow, *, kind: str, artifact_type: str,
                     document_type: str, document_for: Callable[[str, str], bytes]
                     ) -> list[AttachedArtifact]:
    """For each (registry, repository, digest) the build pushed, push the document
    ``document_for(repository_reference, digest)`` as an artifact with that subject."""
    done: list[AttachedArtifact] = []
    seen: set[tuple[str, str, str]] = set()
    documents: dict[tuple[str, str], bytes] = {}
    created = build_time(workflow).strftime("%Y-%m-%dT%H:%M:%SZ")
    for pushed in list(workflow.pushed_images):
        if not pushed.digest:
            continue
        name = ImageName.parse(pushed.image)
        repository = name.to_str(registry=False, tag=False)
        key = (pushed.registry, repository, pushed.digest)
        if key in seen:
            continue
        seen.add(key)
        reference = name.to_str(tag=False)
        document = documents.get((reference, pushed.digest))
        if document is None:
            document = documents[(reference, pushed.digest)] = \
                document_for(reference, pushed.digest)
        settings = _registry_settings(workflow, pushed.registry)
        with RegistryClient(pushed.registry, insecure=bool(settings.get("insecure")),
                            secret=settings.get("secret"),
                            retry=getattr(workflow.tasker, "retry", None)) as client:
            attached = attach_artifact(
                client, repository, pushed.digest, artifact_type=artifact_type,
                document=document, document_type=document_type,
                annotations={"org.opencontainers.image.created": created})
        record = AttachedArtifact(kind=kind, registry=pushed.registry, repository=repository,
                                  digest=attached.digest, subject=pushed.digest,
                                  artifact_type=artifact_type, size=attached.size,
                                  via=attached.via, document_digest=attached.document_digest)
        workflow.attached.append(record)
        done.append(record)
    if not seen:
        logger.info("%s: the build pushed nothing, so nothing is attached", kind)
    return done
