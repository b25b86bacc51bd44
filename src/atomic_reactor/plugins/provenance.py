"""``provenance``: SLSA provenance of the build, attached to the image in every registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atomic_reactor._attest.attach import attach_to_pushed
from atomic_reactor._attest.provenance import (
    PREDICATE_TYPE,
    PROVENANCE_MEDIA_TYPE,
    ProvenanceInputs,
    make_provenance,
)
from atomic_reactor._files import write_text_atomic
from atomic_reactor._results import AttachedArtifact
from atomic_reactor.errors import AtomicReactorError
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["ProvenancePlugin", "ProvenanceResult"]


@dataclass(frozen=True)
class ProvenanceResult:
    attached: tuple[AttachedArtifact, ...] = ()
    path: str | None = None


class ProvenancePlugin(PostBuildPlugin):
    """Make an in-toto Statement v1 with a SLSA provenance v1 predicate for the build and
    push it, with the image's manifest as its ``subject``, to every registry the image
    was pushed to (after ``tag_and_push``; ``provenance: true`` in a request adds it).

    It names the source (uri without credentials, commit), the Dockerfile, the base
    image by digest, the build arguments (those holding a registered secret are left
    out and only named), whether the build was reproducible, the engine and the
    versions, and the start and end of the build. The artifacts are found through the
    referrers API or the ``sha256-<hex>`` referrers tag; their digests are in the
    build results (``attached``).

    Result: a :class:`ProvenanceResult`.
    """

    key = "provenance"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 path: str | None = None) -> None:
        """
        :param path: also write the statement (of the first pushed image) to this file
        """
        super().__init__(tasker, workflow)
        self.path = path

    def _engine_version(self) -> str:
        try:
            return self.tasker.engine_host().version
        except AtomicReactorError:
            return ""

    def run(self) -> ProvenanceResult:
        results = self.workflow.current_results()
        source = results.source
        engine = self.tasker.engine_name
        version = self._engine_version()
        started = self.workflow.started_at or datetime.now(UTC)
        finished = datetime.now(UTC)
        dockerfile = str(getattr(self.workflow.source, "dockerfile_path", "") or "./")
        made: list[bytes] = []

        def document(reference: str, digest: str) -> bytes:
            made.append(make_provenance(ProvenanceInputs(
                image=reference, image_digest=digest,
                source_provider=str(source.get("provider") or ""),
                source_uri=str(source.get("vcs_url") or source.get("uri") or ""),
                source_commit=source.get("vcs_ref"), dockerfile_path=dockerfile,
                base_image=results.base_image, base_image_digest=results.base_image_digest,
                engine=engine, engine_version=version, started=started, finished=finished,
                buildargs=dict(self.workflow.buildargs),
                reproducible=bool(getattr(self.workflow, "reproducible", False)),
                source_date_epoch=getattr(self.workflow, "source_date_epoch", None))))
            return made[-1]

        attached = attach_to_pushed(self.workflow, kind="provenance",
                                    artifact_type=PROVENANCE_MEDIA_TYPE,
                                    document_type=PROVENANCE_MEDIA_TYPE,
                                    document_for=document)
        if self.path and made:
            write_text_atomic(self.path, made[0].decode())
        self.log.info("provenance (%s) attached %d times", PREDICATE_TYPE, len(attached))
        return ProvenanceResult(attached=tuple(attached), path=self.path)
