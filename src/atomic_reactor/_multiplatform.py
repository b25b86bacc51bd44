"""Multi-platform builds: one image per platform, built from one prepared source.

The workflow runs the pre-build plugins once (``pull_base_image`` pulls each
platform's base out of a multi-arch base), then :func:`build_platforms` builds every
platform: each gets a Dockerfile of its own next to the shared one (the FROM lines
pinned to that platform's pulled bases), a local tag ``name:tag-<os>-<arch>`` and
``BuildOptions.platform``. The buildah engine builds the platforms in parallel,
others one after the other. Every built image's architecture is checked against the
platform asked for (the engine's own word, through ``ImageInfo``): an engine that
silently reused a cached base of another architecture fails the build here.

Plugins marked ``per_platform = True`` then run once per platform with the workflow
switched to that platform (:meth:`DockerBuildWorkflow.platform_context`).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atomic_reactor._buildlog import write_output
from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor._engine.base import EngineCapabilities, EngineEvent, Platform
from atomic_reactor._reference import ImageName
from atomic_reactor._results import ExportedImages, PlatformResult, PushedImage, jsonable
from atomic_reactor.build import BuildResult, InsideBuilder
from atomic_reactor.errors import AtomicReactorError, BuildFailed

if TYPE_CHECKING:
    from atomic_reactor.inner import DockerBuildWorkflow

logger = logging.getLogger(__name__)
output_logger = logging.getLogger("atomic_reactor.build.output")

__all__ = ["JOBS_ENV", "PlatformState", "build_platforms",
           "platform_image", "platform_jobs", "platform_tag"]

#: environment variable: how many platforms build at once (see :func:`platform_jobs`)
JOBS_ENV = "ATOMIC_REACTOR_PLATFORM_JOBS"
#: the per-platform Dockerfiles are written next to the shared one, under this prefix,
#: and kept out of COPY/ADD by .dockerignore
DOCKERFILE_PREFIX = ".atomic-reactor-Dockerfile."
#: engine architecture names -> what ``architecture`` labels say
ARCHITECTURE_LABELS = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}


@dataclass
class PlatformState:
    """What one platform's part of the build has so far (mutable, like the workflow)."""

    platform: Platform
    builder: InsideBuilder
    build_result: BuildResult | None = None
    architecture: str | None = None
    plugin_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    pushed: list[PushedImage] = field(default_factory=list)
    exported: ExportedImages = field(default_factory=ExportedImages)
    #: the pulled base images of this platform (pull_base_image's records)
    pulled: list[Any] = field(default_factory=list)

    def result(self) -> PlatformResult:
        build = self.build_result
        final = self.pulled[-1] if self.pulled else None
        return PlatformResult(
            platform=str(self.platform), image_id=self.builder.image_id,
            architecture=self.architecture,
            base_image_id=getattr(final, "image_id", None),
            base_image_digest=getattr(final, "digest", None),
            pushed=tuple(self.pushed), plugin_results=jsonable(self.plugin_results),
            exported_images=tuple(self.exported),
            fail_reason=build.fail_reason if build else None,
            build_duration=round(build.duration, 3) if build else None)


def platform_tag(tag: str | None, platform: Platform) -> str:
    """The tag of one platform's image: ``1.0-linux-arm64``."""
    return f"{tag or 'latest'}-{platform.slug}"


def platform_image(image: ImageName, platform: Platform) -> ImageName:
    return image.copy(tag=platform_tag(image.tag, platform))


def _ignore_platform_dockerfiles(context_dir: str) -> None:
    """Keep the per-platform Dockerfiles out of the image (COPY . .)."""
    path = os.path.join(context_dir, ".dockerignore")
    pattern = f"{DOCKERFILE_PREFIX}*"
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if pattern in text.splitlines():
            return
    with open(path, "a", encoding="utf-8") as handle:
        if text and not text.endswith("\n"):
            handle.write("\n")
        handle.write(pattern + "\n")


def _pinned_dockerfile(builder: InsideBuilder, pulled: Sequence[Any]) -> str:
    """The shared Dockerfile's text with every external FROM pinned to the local image
    pulled for this platform (matched by the name the Dockerfile uses)."""
    text = _dfedit.read(builder.df_path)
    by_name = {str(ImageName.parse(getattr(p, "image", ""))): p for p in pulled}
    for stage in builder.refresh_stages():
        if not stage.is_external:
            continue
        record = by_name.get(str(ImageName.parse(stage.image)))
        if record is None:
            continue
        # by digest: both engines find it locally (buildah cannot record an image id
        # given in FROM as the parent), and it names exactly this platform's image
        pinned = str(record.image_id)
        if getattr(record, "digest", None) and getattr(record, "pulled_from", None):
            pinned = f"{ImageName.parse(record.pulled_from).to_str(tag=False)}@{record.digest}"
        text = _dfedit.rewrite_from(text, stage.index, pinned)
    return text


def prepare(workflow: DockerBuildWorkflow, builder: InsideBuilder,
            pulled: Sequence[Any]) -> list[PlatformState]:
    """One builder per requested platform, each with its own pinned Dockerfile."""
    states: list[PlatformState] = []
    directory = os.path.dirname(builder.df_path)
    if any(getattr(p, "platform", None) for p in pulled):
        _ignore_platform_dockerfiles(builder.df_dir)
    labels = workflow.platform_labels
    for platform in workflow.platforms:
        mine = [p for p in pulled if getattr(p, "platform", None) == str(platform)]
        df_path = builder.df_path
        if mine:
            df_path = os.path.join(directory, DOCKERFILE_PREFIX + platform.slug)
            _dfedit.write(df_path, _pinned_dockerfile(builder, mine))
        final = mine[-1] if mine else None
        other = builder.for_platform(platform, platform_image(builder.image, platform), df_path,
                                     base_image_ref=getattr(final, "image_id", None))
        for label in sorted(labels):  # "architecture" and its alias names
            other.labels[label] = ARCHITECTURE_LABELS.get(platform.architecture,
                                                          platform.architecture)
        states.append(PlatformState(platform=platform, builder=other, pulled=mine))
    return states


def platform_jobs(capabilities: EngineCapabilities, platforms: int) -> int:
    """How many platforms build at once: ``$ATOMIC_REACTOR_PLATFORM_JOBS`` when set (a
    whole number, 1 = one after the other), else all of them on an engine that can
    run builds in parallel (``capabilities.parallel_builds``) and one at a time on
    the others."""
    given = os.environ.get(JOBS_ENV, "").strip()
    if given.isdigit() and int(given) > 0:
        return max(1, min(int(given), platforms))
    return platforms if capabilities.parallel_builds and platforms > 1 else 1


def _prefixed(platform: Platform) -> Callable[[EngineEvent], None]:
    prefix = f"[{platform}] "

    def on_event(event: EngineEvent) -> None:
        if event.message:
            lines = event.message.splitlines(keepends=True)
            write_output("".join(prefix + line for line in lines))
            for line in lines:
                if line.strip():
                    output_logger.info("%s%s", prefix, line.rstrip("\n"))

    return on_event


def _build_one(workflow: DockerBuildWorkflow, state: PlatformState) -> None:
    builder = state.builder
    result = builder.build(on_event=_prefixed(state.platform))
    if not result.is_failed() and builder.image_id:
        try:
            info = workflow.tasker.image_info(builder.image_id)
        except AtomicReactorError as exc:
            result = BuildResult(logs=result.logs, image_id=result.image_id,
                                 fail_reason=f"cannot inspect the built image: {exc}",
                                 duration=result.duration)
        else:
            state.architecture = info.architecture
            wanted = state.platform.architecture
            if info.architecture != wanted or (info.os or "linux") != state.platform.os:
                result = BuildResult(
                    logs=result.logs, image_id=result.image_id, duration=result.duration,
                    fail_reason=f"the engine built a {info.os or 'linux'}/{info.architecture} "
                                f"image, not {state.platform} (a cached base of the wrong "
                                "architecture?)")
    state.build_result = result


def build_platforms(workflow: DockerBuildWorkflow, states: Sequence[PlatformState]) -> None:
    """Build every platform (in parallel on engines that do that well); raise
    :class:`BuildFailed` naming each platform that failed, after all finished."""
    jobs = platform_jobs(workflow.tasker.engine_capabilities, len(states))
    started = time.monotonic()
    if jobs > 1:
        logger.info("building %s, %d at a time", ", ".join(str(s.platform) for s in states),
                    jobs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs,
                                                   thread_name_prefix="platform") as pool:
            futures = [pool.submit(contextvars.copy_context().run, _build_one, workflow, s)
                       for s in states]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                workflow.tasker.close()  # stops the builds still running
                raise
    else:
        for state in states:
            _build_one(workflow, state)
            if state.build_result is not None and state.build_result.is_failed():
                break  # one after the other: no point building the rest
    logger.info("built %d platform(s) in %.1f s", len(states), time.monotonic() - started)
    failed = [s for s in states if s.build_result is not None and s.build_result.is_failed()]
    if failed:
        reasons = "; ".join(f"{s.platform}: {s.build_result.fail_reason}" for s in failed
                            if s.build_result is not None)
        names = ", ".join(str(s.platform) for s in failed)
        raise BuildFailed(f"the build for {names} failed ({reasons})")
