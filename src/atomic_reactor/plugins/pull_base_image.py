"""``pull_base_image``: pull the images the Dockerfile's FROM lines name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._reference import ImageName
from atomic_reactor.errors import InputError, PullError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker, PulledImage
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["PullBaseImagePlugin", "PulledBaseImage"]


@dataclass(frozen=True)
class PulledBaseImage:
    """One parent image: what the Dockerfile names, where it came from, what it is."""

    image: str
    pulled_from: str
    image_id: str
    digest: str | None
    attempts: int = 1


class PullBaseImagePlugin(PreBuildPlugin):
    """Pull every FROM image (from ``parent_registry`` when given) and tag it so FROM
    resolves locally to exactly what was pulled.

    When the registry has no ``<registry>/<repo>`` (a FROM without namespace), it is
    pulled as ``<registry>/library/<repo>``, as in 1.6.

    Result: a list of :class:`PulledBaseImage`; the pulled names are also added to
    ``workflow.pulled_base_images``.
    """

    key = "pull_base_image"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 parent_registry: str | None = None,
                 parent_registry_insecure: bool = False) -> None:
        """
        :param parent_registry: registry (``host[:port]``) to pull the base images from
            (default: the registry each FROM names)
        :param parent_registry_insecure: the parent registry speaks plain HTTP
        """
        super().__init__(tasker, workflow)
        self.parent_registry = parent_registry or None
        self.parent_registry_insecure = parent_registry_insecure

    def _source_of(self, wanted: ImageName) -> ImageName:
        if self.parent_registry is None:
            return wanted
        if wanted.registry and wanted.registry != self.parent_registry:
            raise InputError(
                f"FROM {wanted} names registry {wanted.registry}, "
                f"but the parent registry is {self.parent_registry}")
        return wanted.copy(registry=self.parent_registry)

    def _pull(self, source: ImageName) -> tuple[ImageName, PulledImage]:
        """Pull ``source``; as in 1.6, when a registry has no ``<registry>/<repo>``, try
        ``<registry>/library/<repo>`` (the original error if that fails too)."""
        self.log.info("pulling %s", source)
        try:
            return source, self.tasker.pull(source, insecure=self.parent_registry_insecure)
        except PullError as original:
            if source.registry is None or source.namespace is not None:
                raise
            fallback = source.copy(namespace="library")
            self.log.info("%s not pulled (%s); trying %s", source, original, fallback)
            try:
                return fallback, self.tasker.pull(fallback,
                                                  insecure=self.parent_registry_insecure)
            except PullError:
                raise original from None

    def run(self) -> list[PulledBaseImage]:
        builder = self.builder
        pulled: list[PulledBaseImage] = []
        for name in builder.parent_images:
            wanted = ImageName.parse(name)
            source = self._source_of(wanted)
            source, result = self._pull(source)
            self.workflow.pulled_base_images.add(str(source.with_default_tag()))
            if source != wanted:
                self.tasker.tag_image(result.image_id, wanted, force=True)
                self.workflow.pulled_base_images.add(str(wanted.with_default_tag()))
            digest = self.tasker.image_info(result.image_id).digest_for(
                source.to_str(tag=False))
            pulled.append(PulledBaseImage(image=str(wanted), pulled_from=str(source),
                                          image_id=result.image_id, digest=digest,
                                          attempts=result.attempts))
        if builder.base_image is not None:
            builder.set_base_image(builder.base_image)
        return pulled
