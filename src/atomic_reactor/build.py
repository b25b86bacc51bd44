"""``InsideBuilder``: builds the source's Dockerfile on the engine."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from atomic_reactor._buildlog import write_output
from atomic_reactor._dockerfile.parse import Stage, external_images, final_base, parse_stages
from atomic_reactor._engine.base import (
    BuildOptions,
    BuildSecret,
    EngineEvent,
    ImageInfo,
    Platform,
)
from atomic_reactor._reference import ImageName
from atomic_reactor.errors import BuildFailed, DockerfileError, ImageNotFound, InputError

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.source import Source

logger = logging.getLogger(__name__)
#: the engine's build output, line by line (the CLI shows it live)
output_logger = logging.getLogger("atomic_reactor.build.output")


def _log_event(event: EngineEvent) -> None:
    if event.message:
        write_output(event.message)  # the build's log file gets everything, whatever the level
    if event.message and event.message.strip():
        output_logger.info(event.message.rstrip("\n"))

__all__ = ["BuildResult", "InsideBuilder"]


@dataclass(frozen=True)
class BuildResult:
    """The outcome of the build step: a failing ``RUN`` is a failed result, not a crash."""

    logs: tuple[str, ...] = ()
    image_id: str | None = None
    fail_reason: str | None = None
    duration: float = 0.0
    #: images the build's steps made and the engine keeps (not the final one)
    intermediate_ids: tuple[str, ...] = ()
    annotations: dict[str, Any] = field(default_factory=dict)

    def is_failed(self) -> bool:
        return self.fail_reason is not None

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "fail_reason": self.fail_reason,
                "duration": self.duration, "annotations": dict(self.annotations)}


class InsideBuilder:
    """Builds ``source``'s Dockerfile and tags the result ``image``.

    ``df_path`` and ``df_dir`` are the Dockerfile that will be built and its
    directory (the build context): pre-build plugins edit that file.

    Keyword arguments: ``buildargs``, ``use_cache`` and ``build_options`` (a
    :class:`~atomic_reactor._engine.types.BuildOptions` for the rest: labels, target,
    pull, secrets, platform; its ``dockerfile`` is this builder's ``df_path``).
    Plugins read the images as typed values with :meth:`base_info` and
    :meth:`built_info`; the dict-returning ``inspect_*``/``get_*_info`` methods are
    the 1.6 contract's.
    """

    def __init__(self, source: Source, image: ImageName | str, tasker: DockerTasker | None = None,
                 **kwargs: Any) -> None:
        if tasker is None:
            from atomic_reactor.core import DockerTasker

            tasker = DockerTasker()
        self.tasker = tasker
        self.source = source
        # "" (1.6 code: a builder only to inspect the base image) has no parts; build()
        # refuses it
        self.image = ImageName() if isinstance(image, str) and image == "" else \
            ImageName.parse(image)
        self.buildargs: dict[str, str] = dict(kwargs.pop("buildargs", None) or {})
        self.use_cache: bool = bool(kwargs.pop("use_cache", True))
        #: SOURCE_DATE_EPOCH for engines that stamp times themselves (buildah --timestamp)
        self.timestamp: int | None = kwargs.pop("timestamp", None)
        self.build_options: BuildOptions = kwargs.pop("build_options", None) or BuildOptions()
        # what ``docker build`` / ``buildah bud`` users set (--label, --target, --pull,
        # --secret), over what ``build_options`` says
        # a validated request's are typed (read and registered once); a 1.6 caller's dicts
        # are read by the engine
        secrets = tuple(item if isinstance(item, BuildSecret) else
                        BuildSecret(id=item["id"], src=item.get("src"), env=item.get("env"))
                        for item in kwargs.pop("secrets", None) or ())
        self.build_options = replace(
            self.build_options,
            labels={**self.build_options.labels, **(kwargs.pop("labels", None) or {})},
            target=kwargs.pop("target", None) or self.build_options.target,
            pull=bool(kwargs.pop("pull", False)) or self.build_options.pull,
            secrets=(*self.build_options.secrets, *secrets))
        self.image_id: str | None = None
        self._built_image_info: dict[str, Any] | None = None
        #: the built image's entry is read when first asked for (see built_image_info)
        self._built_image_info_due = False
        self.base_image_id: str | None = None
        #: logs from the last operation
        self.last_logs: list[str] = []
        self.df_path, self.df_dir = source.get_dockerfile_path()
        self.stages: list[Stage] = parse_stages(self.df_path, self.buildargs)
        self._check_target()
        self.base_image = ImageName.parse(final_base(self.stages)) \
            if final_base(self.stages) != "scratch" else None
        self._base_inspect: dict[str, Any] | None = None
        self._built_inspect: dict[str, Any] | None = None
        self._base_info: ImageInfo | None = None
        self._built_info: ImageInfo | None = None
        #: multi-platform builds: the platform this builder builds for (None: the
        #: engine's own), labels the engine sets on the image, and the local image
        #: (id or name@digest) the final stage's base is for this platform
        self.platform: Platform | None = None
        self.labels: dict[str, str] = {}
        self.base_image_ref: str | None = None

    def _check_target(self) -> None:
        target = self.build_options.target
        if target is None:
            return
        names = [stage.alias for stage in self.stages if stage.alias]
        if target not in names:
            known = (f"its stages are {', '.join(names)}" if names
                     else "none of its stages is named")
            raise DockerfileError(f"--target {target}: the Dockerfile has no stage of that "
                                  f"name ({known})")

    # -- the Dockerfile -------------------------------------------------------------
    def refresh_stages(self) -> list[Stage]:
        """Re-read the Dockerfile's FROMs (after a plugin edited it)."""
        self.stages = parse_stages(self.df_path, self.buildargs)
        return self.stages

    @property
    def parent_images(self) -> list[str]:
        """The images the Dockerfile's FROM lines pull (no stages, no ``scratch``)."""
        return external_images(self.stages)

    def set_base_image(self, base_image: ImageName | str) -> None:
        """Use ``base_image`` as the final stage's base from now on."""
        self.base_image = ImageName.parse(base_image)
        self._base_inspect = None
        self._base_info = None

    def for_platform(self, platform: Platform, image: ImageName, df_path: str,
                     base_image_ref: str | None = None) -> InsideBuilder:
        """A builder of the same source for ``platform``: it builds ``df_path`` (a
        Dockerfile in the same context) and tags the result ``image``."""
        other = InsideBuilder.__new__(InsideBuilder)
        other.__dict__.update(self.__dict__)
        other.image = image
        other.platform = platform
        other.labels = dict(self.labels)
        other.df_path = df_path
        other.base_image_ref = base_image_ref
        other.image_id = None
        other.built_image_info = None
        other.base_image_id = None
        other._base_inspect = None
        other._built_inspect = None
        other._base_info = None
        other._built_info = None
        other.last_logs = []
        return other

    # -- building ---------------------------------------------------------------------
    def build(self, on_event: Callable[[EngineEvent], None] | None = None) -> BuildResult:
        """Build the image in the current environment; return the result."""
        if self.image.repo is None:
            raise InputError("no image name: a builder made with image \"\" can inspect "
                             "the base image but cannot build")
        logger.info("building %s from %s%s", self.image.with_default_tag(), self.df_path,
                    f" for {self.platform}" if self.platform else "")
        started = time.monotonic()
        dockerfile = os.path.relpath(self.df_path, self.df_dir)
        self._built_inspect = None
        self._built_info = None
        options = replace(self.build_options, dockerfile=dockerfile, use_cache=self.use_cache,
                          buildargs={**self.build_options.buildargs, **self.buildargs},
                          timestamp=self.timestamp if self.timestamp is not None
                          else self.build_options.timestamp,
                          labels={**self.build_options.labels, **self.labels},
                          platform=self.platform or self.build_options.platform)
        try:
            built = self.tasker.build_image(self.df_dir, self.image, options,
                                            on_event=on_event or _log_event)
        except BuildFailed as exc:
            self.last_logs = list(self.tasker.last_logs)
            logger.error("build of %s failed: %s", self.image, exc)
            return BuildResult(logs=tuple(self.last_logs), fail_reason=str(exc),
                               duration=time.monotonic() - started)
        self.last_logs = list(built.logs)
        self.image_id = built.image_id
        self._built_image_info_due = True
        return BuildResult(logs=built.logs, image_id=built.image_id,
                           duration=time.monotonic() - started,
                           intermediate_ids=built.intermediate_ids)

    def set_image_id(self, image_id: str) -> None:
        """The built image is now ``image_id`` (a plugin replaced it, e.g. squash)."""
        self.image_id = image_id
        self._built_inspect = None
        self._built_info = None
        self._built_image_info_due = True

    @property
    def built_image_info(self) -> dict[str, Any] | None:
        """The ``docker images`` entry of the built image (1.6 contract; None before a
        build), read from the engine when first asked for after the build or
        :meth:`set_image_id`, then kept: the push that follows a build does not wait
        for it."""
        if self._built_image_info_due:
            self._built_image_info_due = False
            self._built_image_info = self.get_built_image_info()
        return self._built_image_info

    @built_image_info.setter
    def built_image_info(self, value: dict[str, Any] | None) -> None:
        self._built_image_info = value
        self._built_image_info_due = False

    # -- inspection ---------------------------------------------------------------------
    def base_info(self) -> ImageInfo | None:
        """The base image as the engine knows it (None for ``FROM scratch``);
        :class:`ImageNotFound` if the engine does not have it."""
        if self.base_image is None:
            return None
        if self._base_info is None:
            self._base_info = self.tasker.image_info(self.base_image_ref or self.base_image)
            self.base_image_id = self._base_info.id
        return self._base_info

    def built_info(self) -> ImageInfo:
        """The built image (after :meth:`set_image_id`, the replacement)."""
        if self.image_id is None:
            raise ImageNotFound(f"{self.image} has not been built")
        if self._built_info is None:
            self._built_info = self.tasker.image_info(self.image_id)
        return self._built_info

    def inspect_base_image(self) -> dict[str, Any] | None:
        """``docker inspect`` of the base image (None for ``FROM scratch``; 1.6 contract)."""
        if self.base_image is None:
            return None
        if self._base_inspect is None:
            self.base_info()  # sets base_image_id
            self._base_inspect = self.tasker.inspect_image(self.base_image_ref or
                                                           self.base_image)
        return self._base_inspect

    def get_base_image_info(self) -> dict[str, Any] | None:
        """The ``docker images`` entry of the base image (1.6 contract)."""
        info = self.base_info()
        if info is None:
            return None
        return self.tasker.get_image_info_by_image_id(info.id)

    def inspect_built_image(self) -> dict[str, Any]:
        """``docker inspect`` of the built image (1.6 contract)."""
        if self.image_id is None:
            raise ImageNotFound(f"{self.image} has not been built")
        if self._built_inspect is None:
            self._built_inspect = self.tasker.inspect_image(self.image_id)
        return self._built_inspect

    def get_built_image_info(self) -> dict[str, Any] | None:
        """The ``docker images`` entry of the built image (1.6 contract)."""
        if self.image_id is None:
            return None
        return self.tasker.get_image_info_by_image_id(self.image_id)
