"""``remove_built_image``: remove what the build left in the engine."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._reference import ImageName
from atomic_reactor.errors import EngineError, ImageNotFound, InvalidImageName
from atomic_reactor.inner import BUILD_STEP_KEY
from atomic_reactor.plugin import ExitPlugin
from atomic_reactor.plugins.pull_base_image import PulledBaseImage
from atomic_reactor.plugins.squash import SquashResult

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["KeptImage", "RemoveBuiltImagePlugin", "RemovedImages"]


@dataclass(frozen=True)
class KeptImage:
    """A name or image left in place, and why."""

    reference: str
    reason: str


@dataclass(frozen=True)
class RemovedImages:
    """Names untagged and images deleted; what was kept (and why) and what was already gone."""

    removed: tuple[str, ...] = ()
    kept: tuple[KeptImage, ...] = ()
    missing: tuple[str, ...] = ()


def _timestamp(value: Any) -> datetime | None:
    """An engine or workflow timestamp (nanoseconds and ``Z`` allowed) as a datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # fromisoformat takes at most microseconds
        head, _, tail = text.partition(".")
        digits = ""
        while tail and tail[0].isdigit():
            digits, tail = digits + tail[0], tail[1:]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class RemoveBuiltImagePlugin(ExitPlugin):
    """Remove the built image, its names, and (optionally) the pulled base images.

    Names removed: the workflow's image, the ``tag_conf`` names, the names pushed
    (``workflow.pushed_images``) and the squash plugin's tags, each only while it
    still points to an image this build made (the built one, or the unsquashed
    original). Then those images themselves, and the intermediate images the
    build's steps made (as the build reported them: Docker's step cache; steps
    taken from the cache made none), unless they existed before the build started
    or something else still uses them (another name, an image, a container). With
    ``remove_pulled_base_image`` the names ``pull_base_image`` pulled are
    untagged too (only while they point to what was pulled; the engine deletes
    the image with its last name). Names without a registry, which a FROM line
    resolves to locally, are left alone: other builds on the engine may use them.
    Nothing is forced, and a name or image already gone is not an error.

    Result: a :class:`RemovedImages` (``removed``, ``kept`` with reasons,
    ``missing``).
    """

    key = "remove_built_image"
    per_platform = True
    is_allowed_to_fail = True

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 remove_pulled_base_image: bool = True) -> None:
        """
        :param remove_pulled_base_image: also untag the base images this build pulled
        """
        super().__init__(tasker, workflow)
        self.remove_base_image = remove_pulled_base_image
        self._removed: list[str] = []
        self._kept: list[KeptImage] = []
        self._missing: list[str] = []

    # -- helpers ------------------------------------------------------------------------------
    def _info(self, ref: str) -> ImageInfo | None:
        return self.tasker.find_image(ref)

    def _keep(self, ref: str, reason: str) -> None:
        self.log.info("keeping %s: %s", ref, reason)
        self._kept.append(KeptImage(ref, reason))

    def _remove(self, ref: str, *, noprune: bool = True) -> bool:
        try:
            self.tasker.remove_image(ref, force=False, noprune=noprune)
        except ImageNotFound:
            self._missing.append(ref)
            return False
        except EngineError as exc:
            self._keep(ref, str(exc))
            return False
        self.log.info("removed %s", ref)
        self._removed.append(ref)
        return True

    def _build_started(self) -> datetime | None:
        return _timestamp(self.workflow.plugins_timestamps.get(BUILD_STEP_KEY))

    def _made_by_build(self, info: ImageInfo, started: datetime | None) -> bool:
        created = info.created
        return started is None or created is None or created >= started

    # -- what the build made ----------------------------------------------------------------------
    def _built_ids(self) -> list[str]:
        ids: list[str] = []
        builder = self.workflow.builder
        if builder is not None and builder.image_id:
            ids.append(str(builder.image_id))
        squash = self.workflow.result_of("squash", SquashResult)
        if squash is not None:
            for image_id in (squash.original_image_id, squash.squashed_image_id):
                if image_id and image_id not in ids:
                    ids.append(image_id)
        return ids

    def _built_names(self) -> list[str]:
        names: list[str] = []

        def add(value: Any) -> None:
            try:
                name = str(ImageName.parse(str(value)).with_default_tag())
            except InvalidImageName:
                return
            if name not in names:
                names.append(name)

        add(self.workflow.image)
        builder = self.workflow.builder
        if getattr(self.workflow, "platform", None) is not None and builder is not None:
            add(builder.image)  # multi-platform builds: the platform's local name
        for image in self.workflow.tag_conf.images:
            add(image)
        for pushed in self.workflow.pushed_images:
            add(pushed.image)
        squash = self.workflow.result_of("squash", SquashResult)
        if squash is not None:
            for tag in squash.tags:
                add(tag)
        return names

    def _intermediate_ids(self) -> tuple[str, ...]:
        result = self.workflow.build_result
        return result.intermediate_ids if result is not None else ()

    def _remove_built(self) -> None:
        ids = self._built_ids()
        if not ids:
            self.log.info("no built image, nothing to remove")
        started = self._build_started()
        # before any name goes (the engine deletes an image with its last name)
        made = {image_id: info is not None and self._made_by_build(info, started)
                for image_id, info in ((i, self._info(i)) for i in ids)}
        for name in self._built_names():
            info = self._info(name)
            if info is None:
                self._missing.append(name)
            elif info.id not in ids:
                self._keep(name, f"it points to {info.id}, not to an image of this build")
            else:
                self._remove(name)
        for image_id in ids:
            info = self._info(image_id)
            if not made[image_id]:
                if info is not None:
                    self._keep(image_id, "it existed before the build")
                continue
            if info is None:
                self._removed.append(image_id)  # it went with its last name
                continue
            # by id the engine would also drop one remaining name: check first
            names = info.names + info.digests
            if names:
                self._keep(image_id, f"it is still named {', '.join(sorted(names))}")
                continue
            self._remove(image_id)
        self._remove_intermediates(started)

    def _remove_intermediates(self, started: datetime | None) -> None:
        """The images the build's steps made, the last step's first (a child before its
        parent); stop at the first one something else still uses."""
        for image_id in reversed(self._intermediate_ids()):
            info = self._info(image_id)
            if info is None:
                continue  # already gone
            if info.names or info.digests or not self._made_by_build(info, started):
                self.log.info("keeping the build's step image %s: named or older", image_id)
                break
            try:
                self.tasker.remove_image(info.id, force=False, noprune=True)
            except EngineError as exc:  # another image or a container still uses it
                self.log.info("keeping the build's step image %s: %s", image_id, exc)
                break
            self._removed.append(info.id)

    def _remove_base(self) -> None:
        expected: dict[str, str] = {}
        for item in self.workflow.result_items("pull_base_image", PulledBaseImage):
            for name in (item.pulled_from, item.image):
                expected[name] = item.image_id
                with contextlib.suppress(InvalidImageName):  # the engine's name
                    expected[str(ImageName.parse(name).with_default_tag())] = item.image_id
        for name in sorted(self.workflow.pulled_base_images):
            try:
                ref = ImageName.parse(name)
            except InvalidImageName:
                continue
            if ref.registry is None:
                self._keep(name, "a local name (no registry): other builds may use it")
                continue
            info = self._info(name)
            if info is None:
                self._missing.append(name)
                continue
            wanted = expected.get(name)
            if wanted is not None and info.id != wanted:
                self._keep(name, f"it points to {info.id}, not to the image pulled")
                continue
            self._remove(name)

    def run(self) -> RemovedImages:
        self._remove_built()
        if self.remove_base_image:
            self._remove_base()
        return RemovedImages(removed=tuple(self._removed), kept=tuple(self._kept),
                             missing=tuple(self._missing))
