"""``change_from_in_dockerfile``: build FROM the exact images that were pulled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor._reference import ImageName
from atomic_reactor.errors import ImageNotFound, InvalidImageName
from atomic_reactor.plugin import PreBuildPlugin
from atomic_reactor.plugins.pull_base_image import PulledBaseImage

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["ChangeFromPlugin", "ChangedFrom"]

_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}\Z")
_DOCKER_HUB = (None, "docker.io", "index.docker.io", "registry-1.docker.io")


def _same(ref: ImageName) -> ImageName:
    """``ref`` with the implicit parts made explicit
    (``a`` = ``docker.io/library/a:latest``)."""
    ref = ref.with_default_tag()
    if ref.registry in _DOCKER_HUB:
        return ref.copy(registry="docker.io", namespace=ref.namespace or "library")
    return ref


@dataclass(frozen=True)
class ChangedFrom:
    """One FROM rewritten: stage ``stage`` (0-based) named ``original``, now ``image_id``."""

    stage: int
    original: str
    image_id: str
    alias: str | None = None


class ChangeFromPlugin(PreBuildPlugin):
    """Rewrite every FROM that names an image to that image's id, so the build uses
    exactly the image that was pulled even if the name moves meanwhile.

    The ids come from ``pull_base_image``'s result, else from inspecting the image
    on the engine. Stage by stage: ``FROM <earlier stage>`` and ``FROM scratch``
    stay as they are; flags (``--platform=…``) and ``AS name`` are kept.

    Result: a list of :class:`ChangedFrom` (stage index, original image, id, stage
    name), one per FROM rewritten.
    """

    key = "change_from_in_dockerfile"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow) -> None:
        super().__init__(tasker, workflow)

    def _pulled(self) -> dict[ImageName, str]:
        pulled: dict[ImageName, str] = {}
        for item in self.workflow.result_items("pull_base_image", PulledBaseImage):
            try:
                pulled[_same(ImageName.parse(item.image))] = item.image_id
            except InvalidImageName:
                continue
        return pulled

    def _image_id(self, image: str, pulled: dict[ImageName, str]) -> str:
        try:
            ref = _same(ImageName.parse(image))
        except InvalidImageName:
            ref = None
        if ref is not None and ref in pulled:
            return pulled[ref]
        try:
            return self.tasker.image_info(image).id
        except ImageNotFound as exc:
            raise ImageNotFound(
                f"{self.key}: FROM {image} is not on the engine ({exc}); "
                "pull it first (pull_base_image)") from None

    def run(self) -> list[ChangedFrom]:
        builder = self.builder
        stages = builder.refresh_stages()
        pulled = self._pulled()
        text = _dfedit.read(builder.df_path)
        changed: list[ChangedFrom] = []
        for stage in stages:
            if stage.stage_ref is not None:
                self.log.debug("stage %d builds on stage %d: left as it is",
                               stage.index, stage.stage_ref)
                continue
            if not stage.is_external:
                self.log.debug("stage %d is FROM %s: left as it is", stage.index, stage.image)
                continue
            if _IMAGE_ID.match(stage.image):
                self.log.debug("stage %d is already FROM an image id", stage.index)
                continue
            image_id = self._image_id(stage.image, pulled)
            text = _dfedit.rewrite_from(text, stage.index, image_id)
            self.log.info("stage %d: FROM %s -> %s", stage.index, stage.image, image_id)
            changed.append(ChangedFrom(stage=stage.index, original=stage.image,
                                       image_id=image_id, alias=stage.alias))
        if changed:
            _dfedit.write(builder.df_path, text)
            builder.refresh_stages()
        return changed
