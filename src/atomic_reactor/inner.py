"""``DockerBuildWorkflow``: one build, from source to pushed image.

The workflow fetches the source, runs the pre-build plugins, builds, runs the
pre-publish and post-build plugins, and always runs the exit plugins last: after
success, after a failure anywhere (the source fetch included), and on SIGTERM or
Ctrl-C. It returns a typed :class:`BuildResults`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from atomic_reactor._buildlog import BuildLog
from atomic_reactor._engine.base import ImageInfo, Platform
from atomic_reactor._platforms import parse_platforms
from atomic_reactor._reference import ImageName
from atomic_reactor._request import MAX_EPOCH, parse_epoch, parse_retry
from atomic_reactor._results import (
    AttachedArtifact,
    BuildResults,
    BuildResultsEncoder,
    BuildResultsJSONDecoder,
    ExportedImages,
    PushedImage,
    PushedList,
    jsonable,
    legacy_jsonable,
)
from atomic_reactor._signals import Cancellation
from atomic_reactor.build import BuildResult, InsideBuilder
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import (
    AtomicReactorError,
    BuildCancelled,
    BuildFailed,
    InputError,
)
from atomic_reactor.plugin import (
    PHASE_EXIT,
    PHASE_POSTBUILD,
    PHASE_PREBUILD,
    PHASE_PREPUBLISH,
    PHASES,
    PRELOAD_DELAY,
    PluginLibrary,
    PluginRequest,
    PluginsRunner,
    Preloading,
    parse_requests,
)
from atomic_reactor.plugins.pull_base_image import PulledBaseImage
from atomic_reactor.source import Source, get_source_instance_for

if TYPE_CHECKING:
    from atomic_reactor._multiplatform import PlatformState

T = TypeVar("T")
logger = logging.getLogger(__name__)

__all__ = ["BUILD_STEP_KEY", "BuildResults", "BuildResultsEncoder", "BuildResultsJSONDecoder",
           "DockerBuildWorkflow", "DockerRegistry", "PushConf", "TagConf"]

#: key of the build step in ``plugins_timestamps``/``plugins_durations``/``plugins_errors``
BUILD_STEP_KEY = "docker_build"
SOURCE_STEP_KEY = "fetch_source"

#: workflow keyword arguments beyond the 1.6 signature
_OPTIONS = ("tasker", "retry", "buildargs", "use_cache", "log_file", "reproducible",
            "source_date_epoch", "engine", "labels", "target", "pull", "secrets",
            "platforms")
#: keyword arguments 1.6 took (osbs-client puts them in every build json): accepted,
#: kept as attributes, and otherwise unused
LEGACY_OPTIONS = ("openshift_build_selflink", "client_version")


class DockerRegistry:
    """A registry in :class:`PushConf` (1.6): ``uri``, ``insecure`` and ``digests``
    (``{"repo:tag": manifest digest}``, the name without the registry)."""

    def __init__(self, uri: str, insecure: bool = False) -> None:
        self.uri = uri
        self.insecure = insecure
        self.digests: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"DockerRegistry({self.uri!r}, insecure={self.insecure})"


class PulpRegistry:
    """A Pulp registry entry of 1.6's :class:`PushConf` (recorded, never pushed to)."""

    def __init__(self, name: str, crane_uri: str, insecure: bool = False) -> None:
        self.name = name
        self.uri = crane_uri
        self.insecure = insecure


class PushConf:
    """``workflow.push_conf`` as in 1.6: the registries pushed to and their digests.

    ``tag_and_push`` (anything calling ``workflow.record_push``) fills it; 1.6 plugins
    may add registries and digests themselves, and digests they add show up in the
    build results (``pushed``/``digests``) like the built-in plugin's.
    """

    def __init__(self) -> None:
        self._docker: list[DockerRegistry] = []
        self._pulp: dict[str, PulpRegistry] = {}

    def add_docker_registry(self, registry_uri: str, insecure: bool = False) -> DockerRegistry:
        """The entry for ``registry_uri`` (made if there is none yet)."""
        if registry_uri is None:
            raise InputError("push_conf: registry URI cannot be None")
        for registry in self._docker:
            if registry.uri == registry_uri:
                registry.insecure = registry.insecure or insecure
                return registry
        registry = DockerRegistry(registry_uri, insecure=insecure)
        self._docker.append(registry)
        return registry

    def add_docker_registries(self, registry_uris: Sequence[str], insecure: bool = False
                              ) -> None:
        for uri in registry_uris:
            self.add_docker_registry(uri, insecure=insecure)

    def add_pulp_registry(self, name: str, crane_uri: str) -> PulpRegistry:
        if crane_uri is None:
            raise InputError("push_conf: registry URI cannot be None")
        registry = self._pulp[name] = PulpRegistry(name, crane_uri)
        return registry

    @property
    def has_some_docker_registry(self) -> bool:
        return bool(self._docker)

    @property
    def docker_registries(self) -> list[DockerRegistry]:
        return self._docker

    @property
    def pulp_registries(self) -> list[PulpRegistry]:
        return list(self._pulp.values())

    @property
    def all_registries(self) -> list[DockerRegistry | PulpRegistry]:
        return [*self._docker, *self._pulp.values()]


class TagConf:
    """The names the built image gets: primary (``name:version``…) and unique tags."""

    def __init__(self) -> None:
        self._primary: list[ImageName] = []
        self._unique: list[ImageName] = []

    @property
    def primary_images(self) -> list[ImageName]:
        return list(self._primary)

    @property
    def unique_images(self) -> list[ImageName]:
        return list(self._unique)

    @property
    def images(self) -> list[ImageName]:
        """Every name, primary first, without duplicates."""
        seen: list[ImageName] = []
        for image in self._primary + self._unique:
            if image not in seen:
                seen.append(image)
        return seen

    def add_primary_image(self, image: ImageName | str) -> None:
        ref = ImageName.parse(image)
        if ref not in self._primary:
            self._primary.append(ref)

    def add_unique_image(self, image: ImageName | str) -> None:
        ref = ImageName.parse(image)
        if ref not in self._unique:
            self._unique.append(ref)

    def add_primary_images(self, images: Sequence[ImageName | str]) -> None:
        for image in images:
            self.add_primary_image(image)


class DockerBuildWorkflow:
    """A build: pull base, edit Dockerfile, build, test, tag, push, clean up.

    :param source: dict, where/how to get the source code (see :mod:`atomic_reactor.source`)
    :param image: str, name for the built image (``[registry/]image_name[:tag]``)
    :param prebuild_plugins: list of plugin requests run before the build
    :param prepublish_plugins: list of plugin requests run after the build (tests, squash)
    :param postbuild_plugins: list of plugin requests run after that (tags, push, …)
    :param exit_plugins: list of plugin requests that always run last
    :param plugin_files: list of str, load plugins also from these files
    :param kwargs: ``tasker`` (a :class:`DockerTasker`), ``retry`` (a :class:`RetryPolicy`
        or ``{"attempts", "delay", "max_delay"}``), ``buildargs``, ``use_cache``,
        ``log_file``, ``reproducible`` (bool) and ``source_date_epoch`` (int: the time
        a reproducible build stamps; default the source commit's time), ``platforms``
        (``["linux/amd64", "linux/arm64"]``: an image per platform and a manifest list
        over them); 1.6's
        ``openshift_build_selflink`` and ``client_version`` are accepted with a warning
        (and kept as attributes); anything else is an error

    ``image`` may be ``""`` (1.6 code did that to run plugins by hand, e.g. to inspect
    the base image): such a workflow can run plugin runners but not
    :meth:`build_container_image`.
    """

    def __init__(
        self,
        source: Mapping[str, Any] | Source,
        image: str | ImageName,
        prebuild_plugins: Sequence[Any] | None = None,
        prepublish_plugins: Sequence[Any] | None = None,
        postbuild_plugins: Sequence[Any] | None = None,
        exit_plugins: Sequence[Any] | None = None,
        plugin_files: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - set(_OPTIONS) - set(LEGACY_OPTIONS))
        if unknown:
            raise InputError(f"unknown build option {unknown[0]!r} "
                             f"(known: {', '.join(_OPTIONS)})")
        legacy = {name: kwargs.pop(name) for name in LEGACY_OPTIONS if name in kwargs}
        for name, value in legacy.items():
            logger.warning("build option %s=%r (atomic-reactor 1.6) has no effect", name, value)
        #: 1.6: link to the OpenShift build and the osbs-client version (informational)
        self.openshift_build_selflink: str | None = legacy.get("openshift_build_selflink")
        self.client_version: str | None = legacy.get("client_version")
        self.kwargs = kwargs
        # "" (1.6 code: a workflow only to run plugins by hand) is a name without parts
        self.image = ImageName() if isinstance(image, str) and image == "" else \
            ImageName.parse(image)
        self.prebuild_plugins_conf = list(prebuild_plugins or [])
        self.prepublish_plugins_conf = list(prepublish_plugins or [])
        self.postbuild_plugins_conf = list(postbuild_plugins or [])
        self.exit_plugins_conf = list(exit_plugins or [])
        self.plugin_files = list(plugin_files or [])

        retry = parse_retry(kwargs.get("retry"))  # a BuildRequest's is a RetryPolicy already
        tasker = kwargs.get("tasker")
        #: the workflow made its tasker (and closes its engine connection when done)
        self._owns_tasker = tasker is None
        if tasker is None:
            from atomic_reactor._engine.select import choose_engine

            tasker = DockerTasker(retry=retry, engine=choose_engine(kwargs.get("engine")))
        elif kwargs.get("engine") not in (None, "auto", getattr(tasker, "engine_name", None)):
            raise InputError(f"engine {kwargs['engine']!r} asked for, but the tasker given "
                             f"uses another one")
        self.tasker: DockerTasker = tasker
        if retry is not None and tasker is not None:
            self.tasker.retry = retry
        self.buildargs: dict[str, str] = dict(kwargs.get("buildargs") or {})
        self.use_cache: bool = bool(kwargs.get("use_cache", True))
        #: build options passed on to the engine as given (validated by BuildRequest)
        self.build_flags: dict[str, Any] = {
            key: kwargs[key] for key in ("labels", "target", "pull", "secrets")
            if kwargs.get(key) is not None}
        self.log_file: str | None = kwargs.get("log_file")
        #: build a reproducible image (see :mod:`atomic_reactor._image.normalize`)
        self.reproducible: bool = bool(kwargs.get("reproducible", False))
        self._given_epoch: int | None = parse_epoch(kwargs.get("source_date_epoch"))
        #: SOURCE_DATE_EPOCH of a reproducible build, known once the source is fetched
        self.source_date_epoch: int | None = None
        #: OCI artifacts (SBOM, provenance) pushed with the image as their subject
        self.attached: list[AttachedArtifact] = []
        #: when the build started (UTC)
        self.started_at: datetime | None = None
        #: the platforms asked for; empty: one image for the engine's own platform
        self.platforms: tuple[Platform, ...] = parse_platforms(kwargs.get("platforms"))
        #: label names whose value differs per platform (add_labels_in_dockerfile adds
        #: "architecture"); the engine sets them on each platform's image
        self.platform_labels: set[str] = set()

        self.plugin_library = PluginLibrary(self.plugin_files)
        # last: a Source owns a temporary directory from here on
        self.source: Source = source if isinstance(source, Source) else \
            get_source_instance_for(source)
        self._requests: dict[str, list[PluginRequest]] = {}
        self._validated = False

        # state of the run
        self._builder: InsideBuilder | None = None
        #: multi-platform builds: each platform's state, in the order asked for
        self.platform_states: list[PlatformState] = []
        self._current: PlatformState | None = None
        #: multi-platform builds: the manifest lists pushed (one per registry/repository)
        self.pushed_lists: list[PushedList] = []
        self.build_result: BuildResult | None = None
        self.plugin_failed = False
        self.autorebuild_canceled = False
        self.plugins_timestamps: dict[str, str] = {}
        self.plugins_durations: dict[str, float] = {}
        self.plugins_errors: dict[str, str] = {}
        self.plugin_results: dict[str, dict[str, Any]] = {}
        self.pulled_base_images: set[str] = set()
        self.tag_conf = TagConf()
        self.pushed_images: list[PushedImage] = []
        #: 1.6: the registries pushed to, with digests (kept in step with pushed_images)
        self.push_conf = PushConf()
        #: images written to files, last one newest; 1.6 plugins may append dicts
        self._exported: ExportedImages = ExportedImages()
        self.files: dict[str, str] = {}
        #: the error that failed the build, if any
        self.error: AtomicReactorError | None = None
        #: set when a signal cancelled the build (exit plugins can look)
        self.cancelled: BuildCancelled | None = None
        self.workdir: str | None = None
        self._cancellation: Cancellation | None = None
        self._started: float | None = None
        self._source_fetched = False

    # -- platforms ---------------------------------------------------------------------
    @property
    def builder(self) -> InsideBuilder | None:
        """The builder; within :meth:`platform_context`, that platform's."""
        if self._current is not None:
            return self._current.builder
        return self._builder

    @builder.setter
    def builder(self, builder: InsideBuilder | None) -> None:
        self._builder = builder

    @property
    def platform(self) -> Platform | None:
        """The platform per-platform plugins are running for now (else None)."""
        return self._current.platform if self._current is not None else None

    @property
    def exported_image_sequence(self) -> ExportedImages:
        """Images written to files; within :meth:`platform_context`, that platform's."""
        if self._current is not None:
            return self._current.exported
        return self._exported

    @contextlib.contextmanager
    def platform_context(self, platform: Platform) -> Iterator[PlatformState]:
        """Make ``builder``, ``image_id``, ``exported_image_sequence``, ``platform`` and
        ``plugin_result()`` that platform's while the block runs."""
        state = next((s for s in self.platform_states if s.platform == platform), None)
        if state is None:
            raise AtomicReactorError(f"{platform} is not a platform of this build")
        previous, self._current = self._current, state
        try:
            yield state
        finally:
            self._current = previous

    @property
    def current_platform_state(self) -> PlatformState | None:
        return self._current

    def record_list_push(self, pushed: PushedList) -> None:
        """tag_and_push calls this for each manifest list it stored."""
        self.pushed_lists.append(pushed)

    # -- views -------------------------------------------------------------------------
    @property
    def build_process_failed(self) -> bool:
        """Has any aspect of the build process failed?"""
        return (self.error is not None or self.plugin_failed
                or (self.build_result is not None and self.build_result.is_failed()))

    @property
    def base_image_inspect(self) -> dict[str, Any] | None:
        if self.builder is None:
            return None
        try:
            return self.builder.inspect_base_image()
        except AtomicReactorError:
            return None

    @property
    def built_image_inspect(self) -> dict[str, Any] | None:
        if self.builder is None or self.builder.image_id is None:
            return None
        return self.builder.inspect_built_image()

    @property
    def prebuild_results(self) -> dict[str, Any]:
        return self.plugin_results.setdefault(PHASE_PREBUILD, {})

    @property
    def prepub_results(self) -> dict[str, Any]:
        return self.plugin_results.setdefault(PHASE_PREPUBLISH, {})

    @property
    def postbuild_results(self) -> dict[str, Any]:
        return self.plugin_results.setdefault(PHASE_POSTBUILD, {})

    @property
    def exit_results(self) -> dict[str, Any]:
        return self.plugin_results.setdefault(PHASE_EXIT, {})

    def plugin_result(self, key: str, default: Any = None) -> Any:
        """The result of the plugin ``key`` from whichever phase ran it (its exception if
        it failed; within :meth:`platform_context`, a per-platform plugin's result for that
        platform). :meth:`result_of` and :meth:`result_items` give it typed."""
        if self._current is not None:
            for phase in PHASES:
                results = self._current.plugin_results.get(phase, {})
                if key in results:
                    return results[key]
        for phase in PHASES:
            results = self.plugin_results.get(phase, {})
            if key in results:
                return results[key]
        return default

    def result_of(self, key: str, result_type: type[T]) -> T | None:
        """The result of plugin ``key`` if it ran and returned a ``result_type``; else None
        (not requested, not run yet, failed)."""
        result = self.plugin_result(key)
        return result if isinstance(result, result_type) else None

    def result_items(self, key: str, item_type: type[T]) -> list[T]:
        """The ``item_type`` items of plugin ``key``'s list result ([] if there is none)."""
        result = self.plugin_result(key)
        if not isinstance(result, (list, tuple)):
            return []
        return [item for item in result if isinstance(item, item_type)]

    def plugin_args(self, key: str) -> Mapping[str, Any] | None:
        """The arguments the request for plugin ``key`` gave (None if not requested)."""
        for phase in PHASES:
            for request in self._requests.get(phase, []):
                if request.name == key:
                    return request.args
        return None

    def requested(self, key: str) -> bool:
        return self.plugin_args(key) is not None

    @property
    def image_id(self) -> str | None:
        return self.builder.image_id if self.builder else None

    def record_push(self, pushed: PushedImage) -> None:
        """Plugins that push call this, so results carry the digest per registry."""
        self.pushed_images.append(pushed)
        registry = self.push_conf.add_docker_registry(pushed.registry)
        if pushed.digest:
            with contextlib.suppress(InputError):
                registry.digests[ImageName.parse(pushed.image).to_str(registry=False)] = \
                    pushed.digest

    def _all_pushed(self) -> tuple[PushedImage, ...]:
        """``pushed_images`` plus the digests 1.6 plugins wrote into ``push_conf``."""
        pushed = list(self.pushed_images)
        known = {(p.registry, ImageName.parse(p.image).to_str(registry=False))
                 for p in pushed if p.digest}
        for registry in self.push_conf.docker_registries:
            for name, digest in registry.digests.items():
                if (registry.uri, name) not in known and isinstance(digest, str):
                    pushed.append(PushedImage(registry=registry.uri,
                                              image=f"{registry.uri}/{name}", digest=digest))
        return tuple(pushed)

    # -- validation --------------------------------------------------------------------
    def _conf(self, phase: str) -> list[Any]:
        return {
            PHASE_PREBUILD: self.prebuild_plugins_conf,
            PHASE_PREPUBLISH: self.prepublish_plugins_conf,
            PHASE_POSTBUILD: self.postbuild_plugins_conf,
            PHASE_EXIT: self.exit_plugins_conf,
        }[phase]

    def validate(self) -> None:
        """Check every plugin request of every phase; nothing is pulled or built.

        Raises :class:`~atomic_reactor.errors.PluginConfigError` naming the plugin and
        argument that is wrong.
        """
        for phase in PHASES:
            requests = parse_requests(self._conf(phase), phase)
            self.plugin_library.resolve(requests, phase)
            self._requests[phase] = requests
        self._validated = True

    def _runner(self, phase: str) -> PluginsRunner:
        return PluginsRunner(self.tasker, self, self._requests.get(phase, []), phase=phase)

    # -- running ---------------------------------------------------------------------------
    def build_docker_image(self) -> BuildResults:
        """Deprecated 1.6 name of :meth:`build_container_image`."""
        warnings.warn("DockerBuildWorkflow.build_docker_image() is deprecated; use "
                      "build_container_image()", DeprecationWarning, stacklevel=2)
        return self.build_container_image()

    def build_container_image(self) -> BuildResults:
        """Run the whole build and return its results.

        Failures (source, build, plugins, pushes) are recorded in the results; see
        :meth:`BuildResults.raise_for_status`. Invalid requests raise before anything
        runs. A cancel (SIGTERM, Ctrl-C) raises :class:`BuildCancelled` after the exit
        plugins ran, with the results attached.
        """
        if self.image.repo is None:
            self.source.cleanup()
            raise InputError("no image name: a workflow made with image \"\" can run "
                             "plugins by hand but cannot build")
        if not self._validated:
            try:
                self.validate()
            except BaseException:
                self.source.cleanup()
                raise
        try:
            build_log = BuildLog.open(self.log_file, str(self.image))
        except BaseException:
            self.source.cleanup()
            raise
        self.log_file = build_log.path if build_log is not None else None
        self._started = time.monotonic()
        self.started_at = datetime.now(UTC)
        cancellation = self._cancellation = Cancellation()
        self.workdir = tempfile.mkdtemp(prefix="atomic-reactor-build-")
        try:
            with cancellation.installed(), \
                    (build_log.active() if build_log else contextlib.nullcontext()):
                try:
                    self._run_phases()
                except BuildCancelled as exc:
                    self.cancelled = exc
                except KeyboardInterrupt:
                    self.cancelled = BuildCancelled(signal.SIGINT)
                except AtomicReactorError as exc:
                    self.error = exc
                if self.cancelled is None and cancellation.signum is not None:
                    # code that swallows errors swallowed the cancel: still a cancel
                    self.cancelled = BuildCancelled(cancellation.signum)
                if self.cancelled is not None:
                    self.error = self.cancelled
                    logger.warning("%s; running exit plugins", self.cancelled)
                self._run_exit_plugins()
            results = self.current_results()
        finally:
            self.source.cleanup()
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            if build_log is not None:
                build_log.close()
            if self._owns_tasker:
                self.tasker.close()  # reconnects if the tasker is used again
        if self.cancelled is not None:
            self.cancelled.results = results
            raise self.cancelled
        return results

    def _timed(self, key: str) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def timer() -> Iterator[None]:
            self.plugins_timestamps[key] = datetime.now(UTC).isoformat()
            begun = time.monotonic()
            try:
                yield
            except (AtomicReactorError, KeyboardInterrupt) as exc:
                self.plugins_errors[key] = str(exc) or type(exc).__name__
                raise
            finally:
                self.plugins_durations[key] = round(time.monotonic() - begun, 6)

        return timer()

    def _run_phases(self) -> None:
        with self._timed(SOURCE_STEP_KEY):
            self.source.get()
            self._source_fetched = True
            if self.reproducible:
                self.source_date_epoch = self._resolve_source_date_epoch()
            self.builder = InsideBuilder(self.source, self.image, tasker=self.tasker,
                                         buildargs=self.buildargs, use_cache=self.use_cache,
                                         timestamp=self.source_date_epoch,
                                         **self.build_flags)
        self._raise_if_cancelled()
        self._runner(PHASE_PREBUILD).run()
        self._raise_if_cancelled()
        prepublish, postbuild = self._runner(PHASE_PREPUBLISH), self._runner(PHASE_POSTBUILD)
        # what the plugins after the build import is imported while the engine builds
        preloading = Preloading(list(dict.fromkeys([*prepublish.preloads(),
                                                    *postbuild.preloads()])),
                                delay=PRELOAD_DELAY)
        try:
            with self._timed(BUILD_STEP_KEY):
                if self.platforms:
                    self._build_platforms(self.builder)
                else:
                    self.build_result = self.builder.build()
                if self.build_result is not None and self.build_result.is_failed():
                    raise BuildFailed(self.build_result.fail_reason or "build failed")
        finally:
            preloading.join()  # no import left running beside the next phase
        self._raise_if_cancelled()
        prepublish.run()
        self._raise_if_cancelled()
        postbuild.run()

    def _resolve_source_date_epoch(self) -> int:
        """The given time, else the commit's, else ``$SOURCE_DATE_EPOCH``."""
        if self._given_epoch is not None:
            return self._given_epoch
        epoch = self.source.source_date_epoch()
        if epoch is not None:
            logger.info("reproducible build: SOURCE_DATE_EPOCH %d (the commit's time)", epoch)
            return epoch
        env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if env.isdigit() and int(env) <= MAX_EPOCH:
            logger.info("reproducible build: SOURCE_DATE_EPOCH %s (from the environment)", env)
            return int(env)
        raise InputError("a reproducible build needs a time to stamp: the source is not a git "
                         "commit, so give --source-date-epoch (or set SOURCE_DATE_EPOCH)")

    def _build_platforms(self, builder: InsideBuilder) -> None:
        """Build each platform; the first platform's builder becomes the workflow's (so
        the single-image fields describe it)."""
        from atomic_reactor._multiplatform import build_platforms, prepare

        pulled = self.plugin_result("pull_base_image")
        records = [p for p in pulled if getattr(p, "platform", None)] \
            if isinstance(pulled, list) else []
        self.platform_states = prepare(self, builder, records)
        failure: str | None = None
        try:
            build_platforms(self, self.platform_states)
        except BuildFailed as exc:
            failure = str(exc)
            raise
        finally:
            done = [s.build_result for s in self.platform_states if s.build_result]
            self.build_result = BuildResult(
                logs=tuple(line for r in done for line in r.logs),
                image_id=self.platform_states[0].builder.image_id,
                fail_reason=failure or next((r.fail_reason for r in done if r.is_failed()),
                                            None),
                duration=sum(r.duration for r in done))
            self._builder = self.platform_states[0].builder

    def _raise_if_cancelled(self) -> None:
        """A signal came but its exception was swallowed: do not start the next phase."""
        if self._cancellation is not None and self._cancellation.signum is not None:
            raise BuildCancelled(self._cancellation.signum)

    def _run_exit_plugins(self) -> None:
        try:
            self._runner(PHASE_EXIT).run()
        except KeyboardInterrupt:
            logger.warning("exit plugins interrupted")
        except AtomicReactorError as exc:
            if self.error is None:
                self.error = exc

    def _base_image_digest(self, base_typed: ImageInfo | None) -> str | None:
        """The manifest digest of the base image: as pulled, else as the engine has it."""
        builder = self.builder
        if builder is None or builder.base_image is None:
            return None
        base = builder.base_image
        digest = _pulled_digest(self.result_items("pull_base_image", PulledBaseImage),
                                str(base))
        if digest is None and base.digest:  # FROM name@sha256:…
            digest = base.digest
        if digest is None and base_typed is not None:
            digest = base_typed.digest_for(base.to_str(tag=False))
            if digest is None and base_typed.digests:
                digest = base_typed.digests[0].partition("@")[2] or None
        return digest

    def current_results(self) -> BuildResults:
        """The results as they stand (exit plugins use this to report on the build)."""
        duration = time.monotonic() - self._started if self._started is not None else 0.0
        builder = self.builder
        dockerfile = None
        base_inspect = base_info = built_inspect = built_info = None
        base_typed: ImageInfo | None = None
        if builder is not None:
            with contextlib.suppress(OSError), open(builder.df_path, encoding="utf-8") as handle:
                dockerfile = handle.read()
            with contextlib.suppress(AtomicReactorError):
                base_typed = builder.base_info()
                base_inspect = builder.inspect_base_image()
                base_info = builder.get_base_image_info()
            if builder.image_id:
                with contextlib.suppress(AtomicReactorError):
                    built_inspect = builder.inspect_built_image()
                    built_info = builder.get_built_image_info()
        build_result = self.build_result
        vcs = self.source.get_vcs_info() if self._source_fetched else None
        source_info: dict[str, Any] = {"provider": self.source.provider,
                                       "uri": _redact(self.source.uri)}
        if vcs is not None:
            source_info.update({"vcs_type": vcs.vcs_type, "vcs_url": _redact(vcs.vcs_url),
                                "vcs_ref": vcs.vcs_ref})
        tags: list[str] = []  # the names the engine gave the built image
        for name in [self.image, *self.tag_conf.images]:
            if str(name.with_default_tag()) not in tags:
                tags.append(str(name.with_default_tag()))
        return BuildResults(
            build_logs=tuple(build_result.logs) if build_result else (),
            dockerfile=dockerfile,
            built_img_inspect=built_inspect,
            built_img_info=built_info,
            base_img_inspect=base_inspect,
            base_img_info=base_info,
            # 1.6's fields, in 1.6's shapes (typed shapes: plugin_results)
            base_plugins_output=legacy_jsonable(self.plugin_results.get(PHASE_PREBUILD, {})),
            built_img_plugins_output=legacy_jsonable(
                self.plugin_results.get(PHASE_POSTBUILD, {})),
            image=str(self.image),
            engine=getattr(self.tasker, "engine_name", None),
            image_id=builder.image_id if builder else None,
            base_image=str(builder.base_image) if builder and builder.base_image else None,
            base_image_id=builder.base_image_id if builder else None,
            base_image_digest=self._base_image_digest(base_typed),
            pushed=self._all_pushed(),
            tags=tuple(tags),
            source=source_info,
            plugin_results=jsonable(self.plugin_results),
            plugins_timestamps=dict(self.plugins_timestamps),
            plugins_durations=dict(self.plugins_durations),
            plugins_errors=dict(self.plugins_errors),
            exported_images=tuple(self._exported) + tuple(
                e for s in self.platform_states for e in s.exported),
            source_date_epoch=self.source_date_epoch,
            attached=tuple(self.attached),
            fail_reason=build_result.fail_reason if build_result else None,
            error=_error_dict(self.error),
            log_file=self.log_file,
            duration=round(duration, 3),
            platforms=tuple(s.result() for s in self.platform_states),
            manifest_lists=tuple(self.pushed_lists),
            _exception=self.error,
        )


def _pulled_digest(pulled: Sequence[PulledBaseImage], image: str) -> str | None:
    for item in pulled:
        if item.image == image and item.digest:
            return item.digest
    return None


def _error_dict(error: AtomicReactorError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    data = dict(error.to_dict())
    data["exit_code"] = error.exit_code
    if isinstance(error, BuildCancelled):
        data["signal"] = error.signum
    return data


def _redact(uri: str) -> str:
    from atomic_reactor._git import redact_uri

    return redact_uri(uri)
