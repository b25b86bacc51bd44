"""``tag_and_push``: push every name of the built image to every target registry."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atomic_reactor._engine.types import EngineCapabilities
from atomic_reactor._locks import name_lock
from atomic_reactor._reference import ImageName
from atomic_reactor._results import PushedImage, PushedList
from atomic_reactor.errors import AtomicReactorError, PluginConfigError, PushError
from atomic_reactor.plugin import REGISTRIES_ARG_SCHEMA, PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor._image.layout import Descriptor
    from atomic_reactor._image.push import PushSettings, RegistryTarget
    from atomic_reactor._multiplatform import PlatformState
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["PUSH_METHODS", "TagAndPushPlugin"]

#: ``registry``: our own push over the registry API; ``engine``: the engine's push
PUSH_METHODS = ("registry", "engine")
#: the layer compressions of our own push (``atomic_reactor._image.push.COMPRESSIONS``,
#: which is only imported when our push runs: it needs the registry client)
COMPRESSIONS = ("gzip", "zstd", "none")


def default_push_method(capabilities: EngineCapabilities, *, plain: bool, reproducible: bool
                        ) -> str:
    """``engine`` when the engine's own push is as fast as ours (it compresses and
    uploads as fast and needs no archive of the image first), ours does not read the
    image straight from the engine's storage (``direct_save``), and nothing asks for
    more than the engine's push does (``plain``: gzip layers, Docker schema 2); else
    ``registry``.

    Where our push reads the storage itself it is the faster one to any number of
    registries (buildah, a 40 MB layer, one registry: 0.33 s against buildah's push
    0.47 s for random bytes, 0.38 s against 0.51 s for text; to three it compresses once
    where the engine compresses again for each; see docs/architecture.md, "Speed").

    A reproducible image must get one digest in every registry: an engine's push may
    reuse whatever compressed blobs each registry already has, ours compresses once.
    """
    if not capabilities.fast_push or not plain or reproducible or capabilities.direct_save:
        return "registry"
    return "engine"


class TagAndPushPlugin(PostBuildPlugin):
    """Tag the built image for each registry and push it.

    ``registries`` maps ``host[:port]`` to ``{"insecure": bool, "secret": path}``;
    ``secret`` is a directory (or file) with docker credentials for that registry,
    otherwise the docker config docker itself would use is read. The names pushed
    are the workflow's image plus every name in ``workflow.tag_conf``.

    With ``push_method`` ``registry`` (the default, except with an engine whose own
    push is as fast, ``EngineCapabilities.fast_push``, and whose storage our push cannot
    read without an archive; buildah's it reads, ``direct_save``, so there ours is the
    default too) atomic-reactor pushes by itself: the image is read from the
    engine once, every layer is compressed once on every core, and the same blobs
    go to all registries at the same time over the registry HTTP API (existing
    blobs skipped, cross-repository mounts, chunked uploads that resume or restart
    after a failure). ``engine`` uses the engine's own push, one name after the
    other. ``compression`` (gzip, zstd or none) and ``compression_level`` choose the
    layers' compression, and
    ``manifest_format`` (docker: schema 2, oci) the manifest; zstd needs (and
    defaults to) an OCI manifest. These three apply to the registry method only.

    Result: a list of :class:`~atomic_reactor._results.PushedImage` (registry,
    reference, manifest digest, manifest size, attempts).

    Multi-platform builds (two or more platforms; a build for one platform pushes its
    image like any other): in each registry, every platform's image is pushed first,
    by digest (the registry method stores its manifest by digest only; the engine
    method, which needs a tag, as ``name:tag-<os>-<arch>``), recorded with that
    platform's results; then a manifest list over them (a Docker schema 2 list when
    every image is a Docker manifest, else an OCI index) is stored under every name
    through the registry client. The result then lists the names with the list's
    digest. Nothing is stored under the names unless every platform's image was
    pushed.
    """

    key = "tag_and_push"
    is_allowed_to_fail = False
    args_schema = {
        "type": "object",
        "properties": {
            "registries": REGISTRIES_ARG_SCHEMA,
            "push_method": {"enum": list(PUSH_METHODS)},
            "compression": {"enum": list(COMPRESSIONS)},
            "compression_level": {"type": ["integer", "null"]},
            "manifest_format": {"enum": ["docker", "oci", None]},
        },
        "required": ["registries"],
        "additionalProperties": False,
    }

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 registries: dict[str, dict[str, Any]], push_method: str | None = None,
                 compression: str = "gzip", compression_level: int | None = None,
                 manifest_format: str | None = None) -> None:
        """
        :param registries: registry (``host[:port]``) -> ``{"insecure": bool, "secret":
            path}``; every name of the image is pushed to each
        :param push_method: ``registry`` (our own push; the default with docker and buildah) or ``engine`` (the engine's push; the default with an engine whose push is as fast and whose storage our push cannot read, unless the build is reproducible)
        :param compression: layer compression for the registry method: ``gzip`` (default), ``zstd`` or ``none``
        :param compression_level: the compression level (gzip 1-9, default 6; zstd 1-19, default 3)
        :param manifest_format: ``docker`` (schema 2) or ``oci``; default docker, oci for zstd
        """  # noqa: E501
        super().__init__(tasker, workflow)
        if push_method is None:
            push_method = self._default_method(tasker, workflow, compression,
                                               compression_level, manifest_format)
        if push_method not in PUSH_METHODS:
            raise PluginConfigError(f"plugin tag_and_push: argument 'push_method': unknown "
                                    f"method {push_method!r} ({', '.join(PUSH_METHODS)})",
                                    plugin=self.key, argument="push_method")
        self._settings_args: dict[str, Any] = {
            "compression": compression, "level": compression_level,
            "manifest_format": manifest_format, "retry": getattr(tasker, "retry", None),
            "portable": bool(getattr(workflow, "reproducible", False))}
        self._settings: PushSettings | None = None
        self.registries = registries
        self.push_method = push_method
        if push_method == "registry" or compression != "gzip" or \
                compression_level is not None or manifest_format is not None:
            self._settings = self.settings  # checked now (the defaults are valid)

    @staticmethod
    def _default_method(tasker: DockerTasker, workflow: DockerBuildWorkflow,
                        compression: Any, level: Any, manifest_format: Any) -> str:
        return default_push_method(
            getattr(tasker, "engine_capabilities", EngineCapabilities()),
            plain=compression == "gzip" and level is None and manifest_format in (None, "docker"),
            reproducible=bool(getattr(workflow, "reproducible", False)))

    @classmethod
    def preload(cls, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                args: Mapping[str, Any]) -> tuple[str, ...]:
        """Our own push's toolkit (with the registry client and requests, ~0.1 s to
        import), when this push is ours."""
        method = args.get("push_method") or cls._default_method(
            tasker, workflow, args.get("compression", "gzip"), args.get("compression_level"),
            args.get("manifest_format"))
        return ("atomic_reactor._image.push",) if method == "registry" else ()

    @property
    def settings(self) -> PushSettings:
        """How our own push compresses (the push toolkit is imported when needed)."""
        if self._settings is None:
            from atomic_reactor._image.push import PushSettings

            try:
                self._settings = PushSettings(**self._settings_args)
            except PluginConfigError as exc:
                raise PluginConfigError(
                    f"plugin tag_and_push: argument '{exc.argument}': {exc}",
                    plugin=self.key, argument=exc.argument) from None
        return self._settings

    def _names(self) -> list[ImageName]:
        names: list[ImageName] = []
        for image in [self.workflow.image, *self.workflow.tag_conf.images]:
            local = image.copy(registry=None).with_default_tag()
            if local not in names:
                names.append(local)
        return names

    def _untag(self, targets: Iterable[ImageName]) -> None:
        """Drop the registry names a failed push leaves (the built image stays)."""
        for target in targets:
            try:
                self.tasker.remove_image(target, noprune=True)
            except AtomicReactorError as exc:
                self.log.debug("could not remove tag %s: %s", target, exc)

    def run(self) -> list[PushedImage]:
        states = list(getattr(self.workflow, "platform_states", None) or ())
        if len(states) > 1:
            return self._push_platforms()
        pushed = self._engine_push() if self.push_method == "engine" else self._registry_push()
        if states:  # one platform asked for: its image, pushed as any single image
            states[0].pushed.extend(pushed)
        return pushed

    # -- the engine's push ---------------------------------------------------------------
    def _engine_push(self) -> list[PushedImage]:
        image_id = self.image_id
        pushed: list[PushedImage] = []
        for registry, settings in self.registries.items():
            conf = settings or {}
            for name in self._names():
                target = name.copy(registry=registry)
                with name_lock(str(target)):
                    self.tasker.tag_image(image_id, target, force=True)
                    try:
                        result = self.tasker.push(target, insecure=bool(conf.get("insecure")),
                                                  dockercfg=conf.get("secret"))
                    except AtomicReactorError:
                        self._untag([target])
                        raise
                record = PushedImage(registry=registry, image=str(target), digest=result.digest,
                                     size=result.size, attempts=result.attempts)
                self.log.info("pushed %s (%s)", target, result.digest)
                self.workflow.record_push(record)
                pushed.append(record)
        return pushed

    # -- our own push ----------------------------------------------------------------------
    def _saved(self) -> Iterable[bytes]:
        from atomic_reactor._image.push import engine_archive

        return engine_archive(self.tasker, self.image_id)

    def _registry_push(self) -> list[PushedImage]:
        from atomic_reactor._image.push import ImagePush, LaterMapping, RegistryTarget

        image_id = self.image_id
        names = self._names()
        targets = [RegistryTarget(registry=registry,
                                  names=tuple(name.copy(registry=registry) for name in names),
                                  insecure=bool((conf or {}).get("insecure")),
                                  secret=(conf or {}).get("secret"))
                   for registry, conf in self.registries.items()]
        every = [name for target in targets for name in target.names]
        with contextlib.ExitStack() as locks:
            for locked in sorted({str(name) for name in every}):
                locks.enter_context(name_lock(locked))
            tagged: list[ImageName] = []
            try:
                for name in every:
                    self.tasker.tag_image(image_id, name, force=True)
                    tagged.append(name)
                bases = self._base_images()
                mount_repos = {registry: base.get_repo() for registry, base in bases.items()}
                # looked up while the push begins (needed once the first layer comes)
                reuse = LaterMapping(lambda: self._reused_base_layers(targets, bases))
                push = ImagePush(saved=self._saved, settings=self.settings,
                                 workdir=self.workflow.workdir,
                                 progress=self.tasker.report_progress,
                                 mount_repos=mount_repos, reuse=reuse)
                prepared, results = push.run(targets)
            except AtomicReactorError:
                self._untag(tagged)
                raise
        self.log.info("image %s: %d layers compressed once (%s, %s manifest), pushed to %d "
                      "registries", image_id, len(prepared.layers), prepared.compression,
                      self.settings.format, len(results))
        pushed: list[PushedImage] = []
        for result in results:
            self.log.info("%s: %d blobs uploaded, %d mounted, %d already there, %d bytes, "
                          "%.2f s", result.registry, result.uploaded, result.mounted,
                          result.skipped, result.bytes_sent, result.seconds)
            for tag in result.tags:
                record = PushedImage(registry=tag.registry, image=tag.image, digest=tag.digest,
                                     size=tag.size, attempts=tag.attempts)
                self.log.info("pushed %s (%s)", tag.image, tag.digest)
                self.workflow.record_push(record)
                pushed.append(record)
        return pushed

    # -- multi-platform builds ----------------------------------------------------------------
    def _repositories(self) -> dict[str, list[ImageName]]:
        """The names, grouped by repository (a list and its images share one)."""
        grouped: dict[str, list[ImageName]] = {}
        for name in self._names():
            grouped.setdefault(name.to_str(tag=False), []).append(name)
        return grouped

    def _platform_engine_push(self, state: PlatformState, registry: str, conf: dict[str, Any]
                              ) -> dict[str, PushedImage]:
        from atomic_reactor._multiplatform import platform_image

        """Push one platform's image with the engine (under its platform tag, which the
        engine needs) to every repository; its record per repository."""
        image_id = state.builder.image_id
        assert image_id is not None
        records: dict[str, PushedImage] = {}
        for repository, names in self._repositories().items():
            target = platform_image(names[0], state.platform).copy(registry=registry)
            with name_lock(str(target)):
                self.tasker.tag_image(image_id, target, force=True)
                try:
                    result = self.tasker.push(target, insecure=bool(conf.get("insecure")),
                                              dockercfg=conf.get("secret"))
                finally:
                    self._untag([target])
            if not result.digest:
                raise PushError(f"pushing {target} ({state.platform}) reported no digest",
                                registry=registry)
            records[repository] = PushedImage(registry=registry, image=str(target),
                                              digest=result.digest, size=result.size,
                                              attempts=result.attempts)
        return records

    def _reused_base_layers(self, targets: Sequence[RegistryTarget],
                            bases: Mapping[str, ImageName]) -> dict[str, Descriptor]:
        """diff id -> the base image's blob of that layer, when every target is the
        registry the base image was pulled from and layers are gzip: those layers are
        mounted from the base's repository as they are, not compressed and uploaded
        again (as the engines' own pushes do). Nothing when the base cannot be read."""
        from atomic_reactor._image.push import base_layer_blobs
        from atomic_reactor._registry.client import RegistryClient

        registries = {target.registry for target in targets}
        if self.settings.compression != "gzip" or len(registries) != 1:
            return {}
        (registry,) = registries
        base = bases.get(registry)
        if base is None:
            return {}
        target = targets[0]
        try:
            info = self.tasker.image_info(self.image_id)
            with RegistryClient(registry, insecure=target.insecure, secret=target.secret,
                                retry=self.settings.retry) as client:
                found = base_layer_blobs(client, base, info.architecture, info.os)
        except (AtomicReactorError, ValueError, TypeError) as exc:
            self.log.debug("the layers of %s are not reused: %s", base, exc)
            return {}
        self.log.debug("%d layers of %s may be mounted as they are", len(found), base)
        return found

    def _base_images(self) -> dict[str, ImageName]:
        """Per registry, the base image pulled from it (its layers can be mounted from
        its repository instead of uploaded)."""
        bases: dict[str, ImageName] = {}
        for pulled in sorted(self.workflow.pulled_base_images):
            name = ImageName.parse(pulled)
            if name.registry:
                bases.setdefault(name.registry, name)
        return bases

    def _platform_registry_push(self, state: PlatformState
                                ) -> dict[str, dict[str, PushedImage]]:
        """Push one platform's image ourselves, by digest only, to every registry and
        repository at once; its record per registry and repository."""
        from atomic_reactor._image.push import (
            RegistryTarget,
            engine_archive,
            prepare_image,
            upload_prepared,
        )

        image_id = state.builder.image_id
        assert image_id is not None
        scratch = tempfile.mkdtemp(prefix="push-", dir=self.workflow.workdir or None)
        try:
            prepared = prepare_image(engine_archive(self.tasker, image_id), scratch,
                                     self.settings)
            repositories = self._repositories()
            targets = [RegistryTarget(
                registry=registry,
                names=tuple(names[0].copy(registry=registry, tag=None, digest=prepared.digest)
                            for names in repositories.values()),
                insecure=bool((conf or {}).get("insecure")), secret=(conf or {}).get("secret"))
                for registry, conf in self.registries.items()]
            results = upload_prepared(prepared, targets, self.settings,
                                      progress=self.tasker.report_progress)
        except OSError as exc:
            raise AtomicReactorError(f"push: {exc}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        records: dict[str, dict[str, PushedImage]] = {}
        for result in results:
            for tag, repository in zip(result.tags, repositories, strict=True):
                records.setdefault(result.registry, {})[repository] = PushedImage(
                    registry=result.registry, image=tag.image, digest=tag.digest,
                    size=tag.size, attempts=tag.attempts)
        return records

    def _push_platforms(self) -> list[PushedImage]:
        from atomic_reactor._registry.manifest_list import ManifestListEntry, push_manifest_list

        states: list[PlatformState] = list(self.workflow.platform_states)
        for state in states:
            if state.builder.image_id is None:
                raise PushError(f"nothing was built for {state.platform}")
        # every platform's image first, everywhere: no list unless all of them are there
        per_state: list[dict[str, dict[str, PushedImage]]] = []
        for state in states:
            if self.push_method == "engine":
                records = {registry: self._platform_engine_push(state, registry, conf or {})
                           for registry, conf in self.registries.items()}
            else:
                records = self._platform_registry_push(state)
            for registry_records in records.values():
                for record in registry_records.values():
                    self.log.info("pushed %s for %s (%s)", record.image, state.platform,
                                  record.digest)
                    state.pushed.append(record)
            per_state.append(records)
        pushed: list[PushedImage] = []
        for registry, settings in self.registries.items():
            conf = settings or {}
            for repository, names in self._repositories().items():
                entries = [ManifestListEntry(str(records[registry][repository].digest),
                                             state.platform)
                           for state, records in zip(states, per_state, strict=True)]
                tags = [name.tag or "latest" for name in names]
                with name_lock(f"{registry}/{repository}"):
                    stored = push_manifest_list(
                        registry, names[0].to_str(registry=False, tag=False), tags, entries,
                        insecure=bool(conf.get("insecure")), secret=conf.get("secret"),
                        retry=self.tasker.retry)
                self.workflow.record_list_push(PushedList(
                    registry=registry, repository=stored.repository, digest=stored.digest,
                    media_type=stored.media_type, tags=stored.tags,
                    platforms={str(e.platform): e.digest for e in stored.entries}))
                for name in names:
                    record = PushedImage(registry=registry,
                                         image=str(name.copy(registry=registry)),
                                         digest=stored.digest, size=None)
                    self.workflow.record_push(record)
                    pushed.append(record)
                self.log.info("pushed manifest list %s/%s (%s, %s) under %s", registry,
                              stored.repository, stored.media_type.rsplit(".", 2)[-2],
                              stored.digest, ", ".join(tags))
        return pushed
