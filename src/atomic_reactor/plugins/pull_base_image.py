"""``pull_base_image``: pull the images the Dockerfile's FROM lines name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._engine.base import Platform
from atomic_reactor._reference import ImageName
from atomic_reactor.errors import (
    ImageNotFound,
    InputError,
    PlatformNotFound,
    PullError,
    RegistryError,
)
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
    #: multi-platform builds: the platform this image is for (``linux/arm64``)
    platform: str | None = None


class PullBaseImagePlugin(PreBuildPlugin):
    """Pull every FROM image (from ``parent_registry`` when given) and tag it so FROM
    resolves locally to exactly what was pulled.

    When the registry has no ``<registry>/<repo>`` (a FROM without namespace), it is
    pulled as ``<registry>/library/<repo>``, as in 1.6.

    Result: a list of :class:`PulledBaseImage`; the pulled names are also added to
    ``workflow.pulled_base_images``.

    Multi-platform builds (``workflow.platforms``): each FROM image must be a manifest
    list or OCI index offering every requested platform (or one image of the one
    platform requested). All of them are checked in the registry first: a missing
    platform is one :class:`~atomic_reactor.errors.PlatformNotFound` naming it, before
    anything is pulled or built. Then each platform's image is pulled by digest
    (one record per image and platform); the per-platform builds use exactly those.
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

    # -- multi-platform ---------------------------------------------------------------
    def _platform_digests(self, source: ImageName, platforms: tuple[Platform, ...]
                          ) -> dict[Platform, str]:
        """The manifest digest of each platform's image of ``source`` (in its registry)."""
        # here, not at the top: the workflow imports this module, and requests is slow
        from atomic_reactor._registry.client import RegistryClient
        from atomic_reactor._registry.manifest_list import (
            LIST_TYPES,
            list_entries,
            select_platform,
        )

        registry = source.registry
        if registry is None:
            raise InputError(f"FROM {source} names no registry: a multi-platform build "
                             "needs a parent registry to choose each platform's base from")
        repository = source.to_str(registry=False, tag=False)
        reference = source.digest or source.tag or "latest"
        with RegistryClient(registry, insecure=self.parent_registry_insecure,
                            retry=self.tasker.retry) as client:
            try:
                raw = client.get_manifest_raw(repository, reference)
            except (RegistryError, ImageNotFound) as exc:
                raise PullError(f"cannot read {source} in its registry: {exc}",
                                registry=registry) from None
            document = json.loads(raw.body)
            if raw.media_type in LIST_TYPES:
                offered = [entry.platform for entry in list_entries(document)]
                chosen = {p: select_platform(document, p) for p in platforms}
                found = {p: entry.digest for p, entry in chosen.items() if entry is not None}
            else:
                config = json.loads(client.get_blob(repository, document["config"]["digest"]))
                own = Platform(str(config.get("os") or "linux"),
                               str(config.get("architecture") or ""),
                               config.get("variant") or None)
                offered = [own]
                found = {p: raw.digest for p in platforms
                         if (p.os, p.architecture) == (own.os, own.architecture)}
        missing = [p for p in platforms if p not in found]
        if missing:
            names = ", ".join(str(p) for p in missing)
            has = ", ".join(str(p) for p in offered) or "no platform"
            raise PlatformNotFound(f"base image {source} has no {names} image (it has: {has})",
                                   registry=registry)
        return found

    def _run_platforms(self, platforms: tuple[Platform, ...]) -> list[PulledBaseImage]:
        builder = self.builder
        plans: list[tuple[ImageName, ImageName, dict[Platform, str]]] = []
        for name in builder.parent_images:  # every base checked before anything is pulled
            wanted = ImageName.parse(name)
            source = self._source_of(wanted)
            plans.append((wanted, source, self._platform_digests(source, platforms)))
        pulled: list[PulledBaseImage] = []
        for wanted, source, digests in plans:
            for platform in platforms:
                by_digest = ImageName.parse(
                    f"{source.to_str(tag=False)}@{digests[platform]}")
                self.log.info("pulling %s for %s", by_digest, platform)
                result = self.tasker.pull(by_digest, insecure=self.parent_registry_insecure,
                                          platform=platform)
                info = self.tasker.image_info(result.image_id)
                if info.architecture != platform.architecture:
                    raise PullError(f"{by_digest} was pulled for {platform} but the engine "
                                    f"has it as {info.os}/{info.architecture}",
                                    registry=source.registry)
                self.workflow.pulled_base_images.add(str(by_digest))
                pulled.append(PulledBaseImage(image=str(wanted), pulled_from=str(source),
                                              image_id=result.image_id,
                                              digest=digests[platform],
                                              attempts=result.attempts,
                                              platform=str(platform)))
        if builder.base_image is not None:
            # until each platform has its own builder, the base is the first platform's
            final = [p for p in pulled if p.image == str(builder.base_image)]
            builder.set_base_image(builder.base_image)
            builder.base_image_ref = final[0].image_id if final else None
        return pulled

    def run(self) -> list[PulledBaseImage]:
        platforms: tuple[Platform, ...] = tuple(getattr(self.workflow, "platforms", ()) or ())
        if platforms:
            return self._run_platforms(platforms)
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
            # the digest as the engine has it for the repository pulled from (given with
            # the pull by an engine that can, else asked)
            digest = result.digest or self.tasker.image_info(result.image_id).digest_for(
                source.to_str(tag=False))
            pulled.append(PulledBaseImage(image=str(wanted), pulled_from=str(source),
                                          image_id=result.image_id, digest=digest,
                                          attempts=result.attempts))
        if builder.base_image is not None:
            builder.set_base_image(builder.base_image)
        return pulled
