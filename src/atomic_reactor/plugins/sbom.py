"""``sbom``: a CycloneDX SBOM of the built image, attached to it in every registry."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._attest.attach import attach_to_pushed, build_time
from atomic_reactor._attest.packages import ImagePackages, read_image_packages
from atomic_reactor._attest.sbom import SBOM_MEDIA_TYPE, make_sbom
from atomic_reactor._files import write_text_atomic
from atomic_reactor._image.layout import ImageArchive
from atomic_reactor._image.tarstream import safe_extract
from atomic_reactor._results import AttachedArtifact
from atomic_reactor._secrets import redact
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["SbomPlugin", "SbomResult"]


@dataclass(frozen=True)
class SbomResult:
    """The SBOM: the package manager read, how many packages, the artifacts pushed."""

    manager: str | None
    packages: int
    attached: tuple[AttachedArtifact, ...] = ()
    path: str | None = None
    document_digest: str | None = None


class SbomPlugin(PostBuildPlugin):
    """Make a CycloneDX 1.5 JSON SBOM of the built image and push it, with the image's
    manifest as its ``subject``, to every registry the image was pushed to (after
    ``tag_and_push``; ``sbom: true`` in a request adds it).

    The packages come from the package databases in the image's layers (dpkg's
    status file, the rpm database read with ``rpm --dbpath``, apk's database):
    names, versions, architectures and package URLs; the base image is a component
    too, by digest. The artifacts are found through the registry's referrers API or,
    where there is none, the ``sha256-<hex>`` referrers tag. Their digests are in the
    build results (``attached``).

    Result: a :class:`SbomResult`.
    """

    key = "sbom"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 path: str | None = None) -> None:
        """
        :param path: also write the SBOM (of the first pushed image, or of the local
            image when nothing was pushed) to this file
        """
        super().__init__(tasker, workflow)
        self.path = path

    def _packages(self) -> ImagePackages:
        scratch = tempfile.mkdtemp(prefix="sbom-", dir=self.workflow.workdir or None)
        try:
            unpacked = os.path.join(scratch, "image")
            # the engine's fastest read (its storage directly, where it can)
            safe_extract(self.tasker.read_image_stream(self.image_id), unpacked)
            return read_image_packages(ImageArchive.open(unpacked), scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def run(self) -> SbomResult:
        packages = self._packages()
        results = self.workflow.current_results()
        when = build_time(self.workflow)

        def document(reference: str, digest: str | None) -> bytes:
            text = make_sbom(packages, image=reference, image_digest=digest,
                             base_image=results.base_image,
                             base_digest=results.base_image_digest,
                             timestamp=when).decode()
            return redact(text).encode()

        made: list[bytes] = []

        def remembered(reference: str, digest: str) -> bytes:
            made.append(document(reference, digest))
            return made[-1]

        attached = attach_to_pushed(self.workflow, kind="sbom", artifact_type=SBOM_MEDIA_TYPE,
                                    document_type=SBOM_MEDIA_TYPE, document_for=remembered)
        first = made[0] if made else document(str(self.workflow.image), None)
        if self.path:
            write_text_atomic(self.path, first.decode())
        self.log.info("SBOM: %d packages (%s), attached %d times", len(packages.packages),
                      packages.manager or "no package database", len(attached))
        return SbomResult(manager=packages.manager, packages=len(packages.packages),
                          attached=tuple(attached), path=self.path,
                          document_digest="sha256:" + hashlib.sha256(first).hexdigest())
