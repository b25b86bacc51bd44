"""``DockerTasker``: the engine operations atomic-reactor's pipeline uses.

The tasker is what plugins receive as ``tasker``. It speaks in
:class:`~atomic_reactor.util.ImageName` s (or strings), records the logs of the
last streamed operation in :attr:`DockerTasker.last_logs`, retries network
operations by its :class:`RetryPolicy`, and delegates to a
:class:`~atomic_reactor._engine.base.ContainerEngine` chosen by name
(``DockerTasker(engine="buildah")``; Docker by default).

Plugins and the workflow reach the engine only through the tasker, and only
through its typed methods (:meth:`DockerTasker.image_info`,
:meth:`~DockerTasker.container_state`, :meth:`~DockerTasker.save_image_stream`,
...); the Docker-shaped dicts of :meth:`~DockerTasker.inspect_image` and the
``get_image_info_by_*`` methods are there for the 1.6 API contract.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast, overload

from atomic_reactor._buildlog import write_output
from atomic_reactor._engine.base import (
    ArchiveFormat,
    BuildOptions,
    BuildSecret,
    ContainerEngine,
    ContainerSpec,
    ContainerState,
    EngineCapabilities,
    EngineEvent,
    ImageInfo,
    Platform,
    RegistryAuth,
    TransferOptions,
)
from atomic_reactor._engine.errors import insecure_hint
from atomic_reactor._engine.registry import load_engine
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.auth import resolve_auth
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import (
    AtomicReactorError,
    BuildFailed,
    ImageNotFound,
    PullError,
    PushError,
)

logger = logging.getLogger(__name__)

__all__ = ["BuiltImage", "DockerTasker", "EngineHost", "PulledImage", "PushResult",
           "RetryPolicy", "TransferProgress"]

ImageLike = ImageName | str
EventCallback = Callable[[EngineEvent], None]


@dataclass(frozen=True)
class TransferProgress:
    """What a pull or push is doing, for progress displays (see
    :meth:`DockerTasker.add_progress_listener`).

    ``state`` is ``"start"`` when an attempt begins (again after a retry),
    ``"event"`` for each engine event (``event``: layer, status, current/total bytes),
    and ``"done"`` or ``"failed"`` once at the end.
    """

    operation: Literal["pull", "push"]
    reference: str
    state: Literal["start", "event", "done", "failed"]
    event: EngineEvent | None = None
    attempt: int = 1


ProgressListener = Callable[[TransferProgress], None]


@dataclass(frozen=True)
class EngineHost:
    """The machine the engine builds on: its name and native platform, and the
    engine's version."""

    name: str
    platform: Platform
    version: str = ""


@dataclass(frozen=True)
class BuiltImage:
    """What a successful build produced."""

    image: ImageName
    image_id: str
    logs: tuple[str, ...]
    #: images the build's steps made that the engine keeps (e.g. Docker's step cache);
    #: the final image is not among them
    intermediate_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PulledImage:
    """One pulled reference: the local image it is now, and (when the engine said so
    with the pull) the manifest digest ``image_info`` reports for its repository."""

    image: ImageName
    image_id: str
    attempts: int = 1
    digest: str | None = None


@dataclass(frozen=True)
class PushResult:
    """One pushed reference: the registry's manifest digest for it."""

    image: ImageName
    digest: str | None
    size: int | None
    attempts: int = 1
    logs: tuple[str, ...] = field(default=(), repr=False)

    @property
    def registry(self) -> str | None:
        return self.image.registry


def _name(image: ImageLike) -> str:
    """What the engine gets: a name tagged ``latest`` when it has no tag, or the string
    as given (an image id, or a name the engine resolves itself)."""
    return str(image.with_default_tag()) if isinstance(image, ImageName) else str(image)


def _ref(image: ImageLike) -> ImageName:
    """``image`` as the engine pulls, pushes, tags or builds it: ``latest`` when untagged
    (never changing the caller's name)."""
    return ImageName.parse(image).with_default_tag()


class DockerTasker:
    """Engine operations with atomic-reactor's 1.6 signatures.

    :param base_url: engine address (default ``$DOCKER_HOST``, else the local socket)
    :param timeout: seconds to wait for an engine response
    :param retry: policy for pulls and pushes (default: 4 attempts, backoff from 1 s)
    :param engine: the engine: a registered name (``"docker"``, the default, or
        ``"buildah"``; see :func:`atomic_reactor._engine.registry.engine_names`) made
        with ``base_url``, ``timeout`` and ``kwargs``, or a ready
        :class:`~atomic_reactor._engine.base.ContainerEngine`
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: int = 120,
        *,
        retry: RetryPolicy | None = None,
        engine: str | ContainerEngine | None = None,
        **kwargs: Any,
    ) -> None:
        if engine is None or isinstance(engine, str):
            options: dict[str, Any] = dict(kwargs, timeout=timeout)
            if base_url is not None:
                options["base_url"] = base_url
            engine = load_engine(engine or "docker", **options)
        #: the backend; plugins use the tasker's typed methods, not this
        self.engine: ContainerEngine = engine
        self.retry = retry or RetryPolicy()
        # per thread: builds sharing a tasker must not read each other's logs
        self._local = threading.local()
        self._logins: dict[str, RegistryAuth] = {}
        self._progress_listeners: list[ProgressListener] = []

    def add_progress_listener(self, listener: ProgressListener) -> None:
        """Call ``listener`` with a :class:`TransferProgress` for everything a pull or
        push of this tasker does (the command line draws progress bars with it)."""
        self._progress_listeners.append(listener)

    def remove_progress_listener(self, listener: ProgressListener) -> None:
        if listener in self._progress_listeners:
            self._progress_listeners.remove(listener)

    def report_progress(self, update: TransferProgress) -> None:
        """Tell the progress listeners about a transfer this tasker's engine does not make
        itself (the push over the registry API)."""
        self._progress(update)

    def _progress(self, update: TransferProgress) -> None:
        for listener in tuple(self._progress_listeners):
            try:
                listener(update)
            except Exception:  # a display failing must not fail the transfer
                logger.debug("progress listener failed", exc_info=True)

    @property
    def last_logs(self) -> list[str]:
        """The logs of the last build, pull or push this thread ran."""
        logs: list[str] = getattr(self._local, "logs", [])
        return logs

    @last_logs.setter
    def last_logs(self, logs: list[str]) -> None:
        self._local.logs = logs

    @property
    def d(self) -> Any:
        """The engine SDK's client (``docker.APIClient`` for Docker; None for engines
        without one), created (and the SDK imported) when this is first read: the
        docker backend's own calls do not use it."""
        return getattr(self.engine, "client", None)

    @property
    def engine_name(self) -> str:
        """The engine's registered name (``"docker"``, ``"buildah"``)."""
        return str(getattr(self.engine, "name", type(self.engine).__name__.lower()))

    @property
    def engine_capabilities(self) -> EngineCapabilities:
        """What the engine does well (the engine's ``capabilities``; an engine that
        declares none gets the defaults)."""
        declared = getattr(self.engine, "capabilities", None)
        return declared if isinstance(declared, EngineCapabilities) else EngineCapabilities()

    @property
    def engine_address(self) -> str:
        """Where the engine is reached, for messages."""
        return str(getattr(self.engine, "address", ""))

    def close(self) -> None:
        """Drop the engine's connections and streams in flight (it reconnects on use)."""
        self.engine.close()

    def engine_host(self) -> EngineHost:
        """Where the engine builds: host name and native platform (from the engine's
        ``info``/``version``, which every backend gives in Docker's shape)."""
        info = self.engine.info()
        version = self.engine.version()
        arch = str(version.get("Arch") or info.get("Architecture") or "")
        os_name = str(info.get("OSType") or "linux")
        try:
            platform = Platform.parse(f"{os_name}/{arch}") if arch else Platform.host()
        except ValueError:
            platform = Platform.host()
        return EngineHost(name=str(info.get("Name") or ""), platform=platform,
                          version=str(version.get("Version") or ""))

    # -- helpers ---------------------------------------------------------------------
    def _auth_for(self, image: ImageName, dockercfg: str | None = None) -> RegistryAuth | None:
        if image.registry is None:
            return None
        if dockercfg:
            return resolve_auth(image.registry, dockercfg)
        return self._logins.get(image.registry) or resolve_auth(image.registry)

    def _consume(self, events: Iterator[EngineEvent], logs: list[str],
                 on_event: EventCallback | None,
                 transfer: tuple[Literal["pull", "push"], str, int] | None = None
                 ) -> list[EngineEvent]:
        finals = []
        with _closing(events):
            for event in events:
                if event.message:
                    logs.append(event.message)
                    if transfer is not None:
                        write_output(f"{transfer[0]} {transfer[1]}: {event.message}\n")
                if on_event is not None:
                    on_event(event)
                if transfer is not None and self._progress_listeners:
                    self._progress(TransferProgress(transfer[0], transfer[1], "event", event,
                                                    attempt=transfer[2]))
                if event.image_id or event.digest:
                    finals.append(event)
        return finals

    # -- building --------------------------------------------------------------------
    def build_image(
        self,
        path: str,
        image: ImageLike,
        options: BuildOptions | None = None,
        *,
        dockerfile: str | None = None,
        use_cache: bool | None = None,
        remove_im: bool | None = None,
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        target: str | None = None,
        pull: bool | None = None,
        secrets: Sequence[BuildSecret] | None = None,
        platform: Platform | None = None,
        on_event: EventCallback | None = None,
    ) -> BuiltImage:
        """Build the context at ``path`` and tag it ``image``; :class:`BuildFailed` on error.

        ``options`` says how (default :class:`BuildOptions()`); a keyword given here
        replaces the same field of ``options``. The logs so far are in
        :attr:`last_logs` either way.
        """
        overrides: dict[str, Any] = {
            "dockerfile": dockerfile, "use_cache": use_cache, "remove_intermediate": remove_im,
            "buildargs": buildargs, "labels": labels, "target": target, "pull": pull,
            "secrets": tuple(secrets) if secrets is not None else None, "platform": platform,
        }
        options = replace(options or BuildOptions(),
                          **{key: value for key, value in overrides.items() if value is not None})
        built = _ref(image)
        self.last_logs = logs = []
        image_id = None
        intermediates: list[str] = []
        events = self.engine.build(path, str(built), options)
        with _closing(events):
            for event in events:
                if event.message:
                    logs.append(event.message)
                if on_event is not None:
                    on_event(event)
                if event.error:
                    raise BuildFailed(event.error.strip())
                if event.image_id:
                    image_id = event.image_id
                if event.intermediate_image:
                    intermediates.append(event.intermediate_image)
        if image_id is None:
            image_id = self.engine.image_info(str(built)).id
        bare = image_id.removeprefix("sha256:")
        return BuiltImage(image=built, image_id=image_id, logs=tuple(logs),
                          intermediate_ids=tuple(i for i in intermediates
                                                 if not bare.startswith(i.removeprefix("sha256:"))))

    @overload
    def build_image_from_path(self, path: str, image: ImageLike, stream: Literal[True],
                              use_cache: bool = ..., remove_im: bool = ...) -> Iterator[str]: ...

    @overload
    def build_image_from_path(self, path: str, image: ImageLike, stream: Literal[False] = ...,
                              use_cache: bool = ..., remove_im: bool = ...) -> str: ...

    def build_image_from_path(
        self,
        path: str,
        image: ImageLike,
        stream: bool = False,
        use_cache: bool = False,
        remove_im: bool = True,
    ) -> Iterator[str] | str:
        """Build the directory ``path`` and tag it ``image``.

        With ``stream=True`` return a generator of log lines (consume it to wait);
        otherwise wait and return the whole log. A failing step raises
        :class:`~atomic_reactor.errors.BuildFailed` (after its lines were yielded).
        """
        generator = self._build_lines(path, image, use_cache=use_cache, remove_im=remove_im)
        return generator if stream else "".join(generator)

    def _build_lines(self, path: str, image: ImageLike, *, use_cache: bool, remove_im: bool,
                     dockerfile: str | None = None) -> Iterator[str]:
        self.last_logs = logs = []
        events = self.engine.build(path, str(_ref(image)), BuildOptions(
            dockerfile=dockerfile, use_cache=use_cache, remove_intermediate=remove_im))
        with _closing(events):
            for event in events:
                if event.message:
                    logs.append(event.message)
                    yield event.message
                if event.error:
                    raise BuildFailed(event.error.strip())

    def build_image_from_git(
        self,
        url: str,
        image: ImageLike,
        git_path: str | None = None,
        git_commit: str | None = None,
        copy_dockerfile_to: str | None = None,
        stream: bool = False,
        use_cache: bool = False,
    ) -> Iterator[str] | str:
        """Clone ``url`` (at ``git_commit``), build the Dockerfile at ``git_path``, tag it.

        ``copy_dockerfile_to`` receives a copy of the Dockerfile that was built.
        """
        from atomic_reactor.source import GitSource

        source = GitSource("git", url, dockerfile_path=git_path or "./",
                           provider_params={"git_commit": git_commit} if git_commit else None)

        def lines() -> Iterator[str]:
            try:
                df_path, df_dir = source.get_dockerfile_path()
                if copy_dockerfile_to:
                    shutil.copyfile(df_path, copy_dockerfile_to)
                yield from self._build_lines(df_dir, image, use_cache=use_cache, remove_im=True,
                                             dockerfile=os.path.relpath(df_path, df_dir))
            finally:
                source.cleanup()

        generator = lines()
        return generator if stream else "".join(generator)

    # -- images ----------------------------------------------------------------------
    def pull_image(self, image: ImageLike, insecure: bool = False) -> str:
        """Pull ``image``; return its name (``reg.com/img:v1``)."""
        return str(self.pull(image, insecure=insecure).image)

    def _transfer(self, kind: Literal["pull", "push"], ref: ImageName,
                  options: TransferOptions, auth: RegistryAuth | None,
                  on_event: EventCallback | None
                  ) -> tuple[list[EngineEvent], int, list[str]]:
        """One pull or push with retries and progress events.

        Returns the events that carry a result (digest), the number of attempts and the
        last attempt's log lines. A registry error gets a hint for plain-HTTP registries.
        """
        name = str(ref)
        open_stream = self.engine.pull if kind == "pull" else self.engine.push
        error_type = PullError if kind == "pull" else PushError
        attempts = 0
        logs: list[str] = []

        def attempt() -> list[EngineEvent]:
            nonlocal attempts, logs
            attempts += 1
            self.last_logs = logs = []
            self._progress(TransferProgress(kind, name, "start", attempt=attempts))
            return self._consume(open_stream(name, auth, options), logs, on_event,
                                 (kind, name, attempts))

        verb = "pulling" if kind == "pull" else "pushing"
        try:
            finals = self.retry.call(f"{verb} {ref}", attempt)
        except error_type as exc:
            self._progress(TransferProgress(kind, name, "failed", attempt=attempts))
            hint = insecure_hint(str(exc), ref.registry, options.insecure)
            raise type(exc)(hint, registry=exc.registry) from None
        except BaseException:
            self._progress(TransferProgress(kind, name, "failed", attempt=attempts))
            raise
        self._progress(TransferProgress(kind, name, "done", attempt=attempts))
        return finals, attempts, logs

    def pull(self, image: ImageLike, insecure: bool = False, *, dockercfg: str | None = None,
             platform: Platform | None = None,
             on_event: EventCallback | None = None) -> PulledImage:
        """Pull ``image`` with retries (for ``platform``, default the engine's own);
        return the typed result."""
        ref = _ref(image)
        finals, attempts, _ = self._transfer("pull", ref, TransferOptions(insecure, platform),
                                             self._auth_for(ref, dockercfg), on_event)
        # an engine that names the pulled image (buildah prints it) saves a look-up
        named = next((event for event in reversed(finals) if event.image_id), None)
        if named is not None and named.image_id:
            return PulledImage(image=ref, image_id=named.image_id, attempts=attempts,
                               digest=named.digest)
        try:
            image_id = self.engine.image_info(str(ref)).id
        except ImageNotFound:
            raise PullError(f"pulling {ref} reported success but the engine has no such image",
                            registry=ref.registry) from None
        return PulledImage(image=ref, image_id=image_id, attempts=attempts)

    def push_image(self, image: ImageLike, insecure: bool = False) -> str:
        """Push ``image`` to its registry; return the push log."""
        result = self.push(image, insecure=insecure)
        return "".join(result.logs)

    def push(self, image: ImageLike, insecure: bool = False, *, dockercfg: str | None = None,
             on_event: EventCallback | None = None) -> PushResult:
        """Push ``image`` with retries; return its digest as the registry reported it."""
        ref = _ref(image)
        if ref.registry is None:
            raise PushError(f"cannot push {ref}: the name has no registry")
        finals, attempts, logs = self._transfer("push", ref, TransferOptions(insecure),
                                                self._auth_for(ref, dockercfg), on_event)
        digest = size = None
        for event in finals:
            if event.digest:
                digest, size = event.digest, event.size
        return PushResult(image=ref, digest=digest, size=size, attempts=attempts, logs=tuple(logs))

    def tag_image(self, image: ImageLike, target_image: ImageLike, force: bool = False) -> str:
        """Tag ``image`` as ``target_image``; return the new name."""
        target = _ref(target_image)
        self.engine.tag(_name(image), str(target), force=force)
        return str(target)

    def tag_and_push_image(
        self,
        image: ImageLike,
        target_image: ImageLike,
        insecure: bool = False,
        force: bool = False,
        dockercfg: str | None = None,
    ) -> str:
        """Tag ``image`` as ``target_image`` and push it; return the pushed name."""
        target = self.tag_image(image, target_image, force=force)
        self.push(target, insecure=insecure, dockercfg=dockercfg)
        return target

    def inspect_image(self, image_id: ImageLike) -> dict[str, Any]:
        """Detailed metadata of an image in ``docker inspect``'s shape (1.6 contract;
        use :meth:`image_info` to decide anything)."""
        return self.engine.inspect_image(_name(image_id))

    def image_info(self, image: ImageLike) -> ImageInfo:
        """What the engine knows of ``image`` (name or id); :class:`ImageNotFound` if none."""
        return self.engine.image_info(_name(image))

    def find_image(self, image: ImageLike) -> ImageInfo | None:
        """:meth:`image_info`, or None when the engine has no such image."""
        try:
            return self.image_info(image)
        except ImageNotFound:
            return None

    def list_images(self, name: ImageLike | None = None) -> list[ImageInfo]:
        """Local images (``name``: only those of this repository, any tag)."""
        repository = None if name is None else _ref(name).to_str(tag=False)
        return self.engine.list_images(name=repository)

    def image_exists(self, image_id: ImageLike) -> bool:
        return self.engine.image_exists(_name(image_id))

    def get_image_info_by_image_id(self, image_id: str) -> dict[str, Any] | None:
        """The ``docker images`` entry of ``image_id`` (full or short id), or None."""
        wanted = image_id.removeprefix("sha256:")
        if not wanted:
            return None
        info = self.find_image(image_id)
        if info is None or not info.id.removeprefix("sha256:").startswith(wanted):
            return None
        return _images_entry(info)

    def get_image_info_by_image_name(self, image: ImageLike, exact_tag: bool = True
                                     ) -> list[dict[str, Any]]:
        """``docker images`` entries for ``image`` (any tag unless ``exact_tag``)."""
        ref = _ref(image)
        infos = self.list_images(ref)
        if exact_tag:
            wanted = str(ref)
            infos = [info for info in infos if wanted in info.names]
        return [_images_entry(info) for info in infos]

    def remove_image(self, image_id: ImageLike, force: bool = False, noprune: bool = False
                     ) -> None:
        self.engine.remove_image(_name(image_id), force=force, noprune=noprune)

    def login(self, registry: str, docker_secret_path: str) -> None:
        """Use the credentials in ``docker_secret_path`` for ``registry`` from now on."""
        auth = resolve_auth(registry, docker_secret_path)
        if auth is not None:
            self._logins[registry] = auth

    # -- containers --------------------------------------------------------------------
    def run(
        self,
        image: ImageLike,
        command: str | list[str] | None = None,
        create_kwargs: Mapping[str, Any] | None = None,
        start_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a container from ``image`` and start it; return its id.

        ``create_kwargs`` go to the engine's container creation, ``start_kwargs`` to its
        host configuration (binds, privileged, …), both in the Docker SDK's words
        (``create_container``/``create_host_config``): the docker backend does not
        translate them itself but has the SDK's types (imported then, for that call
        only) make the request's body of them.
        """
        spec = ContainerSpec(image=_name(image), command=command,
                             create_extra=dict(create_kwargs or {}),
                             host_extra=dict(start_kwargs or {}))
        return self.run_container(spec)

    def run_container(self, spec: ContainerSpec) -> str:
        """Create and start a container described by ``spec``; return its id."""
        container_id = self.engine.create_container(spec)
        try:
            self.engine.start_container(container_id)
        except AtomicReactorError:
            self.engine.remove_container(container_id, force=True)
            raise
        return container_id

    def wait(self, container_id: str) -> int:
        """Wait for the container to finish; return its exit code."""
        return self.engine.wait_container(container_id)

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        """Wait at most ``timeout`` seconds (then an
        :class:`~atomic_reactor.errors.EngineError`); return the exit code."""
        return self.engine.wait_container(container_id, timeout=timeout)

    def container_state(self, container_id: str) -> ContainerState:
        """Status and exit code of a container."""
        return self.engine.container_state(container_id)

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """A container in ``docker inspect``'s shape (for callers of the 1.6 API)."""
        return self.engine.inspect_container(container_id)

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self.engine.stop_container(container_id, timeout=timeout)

    def kill_container(self, container_id: str) -> None:
        self.engine.kill_container(container_id)

    def export_container(self, container_id: str) -> Iterator[bytes]:
        """The container's file system as a tar stream."""
        return self.engine.export_container(container_id)

    def logs(self, container_id: str, stderr: bool = True, stream: bool = True
             ) -> Iterator[str] | list[str]:
        """Output of a container: a generator (``stream``) or a list of lines."""
        lines = self.engine.container_logs(container_id, stderr=stderr, follow=stream)
        return lines if stream else list(lines)

    def commit_container(self, container_id: str, image: ImageLike | None = None,
                         message: str | None = None) -> str:
        """Create an image from a container; return the image id."""
        if image is None:
            return self.engine.commit_container(container_id, message=message)
        ref = _ref(image)
        return self.engine.commit_container(container_id, repository=ref.to_str(tag=False),
                                            tag=ref.tag, message=message)

    def remove_container(self, container_id: str, force: bool = False) -> None:
        self.engine.remove_container(container_id, force=force)

    # -- engine --------------------------------------------------------------------------
    def get_info(self) -> dict[str, Any]:
        """``docker info``."""
        return self.engine.info()

    def get_version(self) -> dict[str, Any]:
        """``docker version``."""
        return self.engine.version()

    def save_image_stream(self, image: ImageLike, format: ArchiveFormat = "docker-archive"
                          ) -> Iterator[bytes]:
        """``image`` as a tar stream (``docker save`` layout, or an OCI archive)."""
        return self.engine.save_image(_name(image), format)

    def read_image_stream(self, image: ImageLike) -> Iterator[bytes]:
        """``image`` as a docker-archive tar stream to read (not to hand out): the
        engine's fastest, its storage read straight from its files where it can; the
        layout may differ from :meth:`save_image_stream`'s (``ImageArchive`` reads both).
        A third-party backend written before ``read_image`` is read by its save."""
        read = getattr(self.engine, "read_image", None)
        if read is None:
            return self.engine.save_image(_name(image), "docker-archive")
        return cast(Iterator[bytes], read(_name(image)))

    def save_image_to(self, image: ImageLike, directory: str | None = None,
                      format: ArchiveFormat = "docker-archive") -> str:
        """Save ``image`` as a tarball (``docker save`` by default); return its path."""
        target_dir = directory or tempfile.mkdtemp(prefix="atomic-reactor-save-")
        path = f"{target_dir}/image.tar"
        with open(path, "wb") as out:
            for chunk in self.save_image_stream(image, format):
                out.write(chunk)
        return path

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        """Load a ``docker save`` tar stream; return the names (or ids) it held."""
        return self.engine.load_image(data)


def _images_entry(info: ImageInfo) -> dict[str, Any]:
    """An :class:`ImageInfo` in the shape of a ``docker images`` entry (1.6 contract)."""
    return {
        "Id": info.id,
        "RepoTags": list(info.names),
        "RepoDigests": list(info.digests),
        "Created": int(info.created.timestamp()) if info.created else 0,
        "Size": info.size,
        "VirtualSize": info.size,
        "Labels": dict(info.labels),
    }


@contextlib.contextmanager
def _closing(events: Iterator[EngineEvent]) -> Iterator[None]:
    """Close the engine's event stream at once when the loop over it stops early.

    A cancel (SIGTERM, Ctrl-C) or an error raised while handling an event must not
    leave the stream open until garbage collection: closing it is what makes the
    engine stop the build, pull or push (and reap a cancelled build's containers).
    """
    try:
        yield
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()

