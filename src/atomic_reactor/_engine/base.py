"""The narrow interface every container engine backend implements.

Plugins and the workflow never talk to an engine directly: they go through
:class:`atomic_reactor.core.DockerTasker`, which delegates to a
:class:`ContainerEngine`. The protocol speaks the project's own typed values
(:mod:`atomic_reactor._engine.types`, re-exported here): :class:`ImageInfo`,
:class:`ContainerState`, :class:`BuildOptions`, :class:`TransferOptions`. Docker's
inspect dicts are produced by every backend only for the names the 1.6 API
contract has (``inspect_image``, ``inspect_container``); nothing above the seam
reads them to decide anything.

Backends are found by name through the ``atomic_reactor.engines`` entry-point
group (see :mod:`atomic_reactor._engine.registry`); the built-in Docker backend
is registered there like any third-party one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from atomic_reactor._engine.types import (
    BuildOptions,
    BuildSecret,
    ContainerState,
    EngineCapabilities,
    ImageInfo,
    Platform,
    TransferOptions,
)
from atomic_reactor._secrets import register_auth_token

__all__ = [
    "ArchiveFormat",
    "BuildOptions",
    "BuildSecret",
    "ContainerEngine",
    "ContainerSpec",
    "ContainerState",
    "EngineCapabilities",
    "EngineEvent",
    "ImageInfo",
    "Platform",
    "RegistryAuth",
    "TransferOptions",
]

#: the archive formats :meth:`ContainerEngine.save_image` writes
ArchiveFormat = Literal["docker-archive", "oci-archive"]


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry. The password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    registry: str = ""

    def __post_init__(self) -> None:
        register_auth_token(self.username, self.password)  # masked in all output from now on

    def as_docker_auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password,
                "serveraddress": self.registry}


@dataclass(frozen=True)
class EngineEvent:
    """One decoded message of a streamed engine operation (build, pull, push).

    ``message`` is a line for humans (empty for pure progress updates); progress
    updates carry ``layer``, ``current`` and ``total`` bytes. The final event of a
    successful build has ``image_id``; of a push, ``digest`` and ``size``; a pull may
    end with one naming the pulled image (``image_id``; with ``digest`` only when
    ``image_info`` will give that digest for the pulled repository), which spares the
    tasker a look-up. An event with ``error`` means the operation failed.
    ``intermediate_image`` names an image a build step made and the engine keeps
    (Docker's legacy builder keeps one per step as its cache; not for steps taken from
    the cache): what removes the build's images removes these too.
    """

    message: str = ""
    layer: str | None = None
    status: str | None = None
    current: int | None = None
    total: int | None = None
    error: str | None = None
    image_id: str | None = None
    digest: str | None = None
    size: int | None = None
    intermediate_image: str | None = None

    @property
    def is_progress(self) -> bool:
        return self.layer is not None and self.current is not None


@dataclass(frozen=True)
class ContainerSpec:
    """What to run in a container, independent of the engine's API shape."""

    image: str
    command: Sequence[str] | str | None = None
    name: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    #: host path -> (container path, mode "rw"/"ro")
    binds: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    privileged: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    security_opt: Sequence[str] = ()
    user: str | None = None
    working_dir: str | None = None
    network_mode: str | None = None
    entrypoint: Sequence[str] | str | None = None
    #: extra engine-specific keyword arguments (escape hatch for the 1.6 ``run`` API)
    create_extra: Mapping[str, Any] = field(default_factory=dict)
    host_extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ContainerEngine(Protocol):
    """Operations the build pipeline needs from an engine.

    Every method raises the project's own errors
    (:class:`~atomic_reactor.errors.EngineError` and its subclasses,
    :class:`~atomic_reactor.errors.PullError`/``PushError`` for registry failures of
    a pull or push, :class:`~atomic_reactor.errors.InputError` for a request this
    engine cannot do); never an SDK's or a subprocess's exception.
    """

    #: the engine's registered name ("docker", "buildah"), in results and metadata
    name: str
    #: where the engine is reached (socket path, URL, storage root), for messages
    address: str
    #: what the engine does well (the choices above the seam read this, never ``name``)
    capabilities: EngineCapabilities

    # -- images ------------------------------------------------------------------
    def build(self, context_dir: str, tag: str, options: BuildOptions
              ) -> Iterator[EngineEvent]:
        """Build ``context_dir`` and tag the result ``tag``.

        Events carry the log lines; the last event of a successful build has
        ``image_id``; an event with ``error`` ends a failed build. Closing the
        iterator early cancels the build and removes what it left behind.
        """
        ...

    def pull(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        """Pull ``reference`` (a name with a tag or digest); raises ``PullError``."""
        ...

    def push(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        """Push ``reference``; an event carries the registry's manifest ``digest``."""
        ...

    def tag(self, image: str, target: str, force: bool = False) -> None: ...

    def image_info(self, image: str) -> ImageInfo:
        """What the engine knows of ``image`` (name or id); ``ImageNotFound`` if missing."""
        ...

    def inspect_image(self, image: str) -> dict[str, Any]:
        """``docker inspect`` of an image, in Docker's shape, for the 1.6 contract only."""
        ...

    def image_exists(self, image: str) -> bool: ...

    def list_images(self, name: str | None = None) -> list[ImageInfo]:
        """Local images; with ``name`` (a repository, no tag) only those named so.

        Entries carry at least ``id``, ``names``, ``digests``, ``labels``, ``created``
        and ``size``; a backend may leave the config fields (env, layers, platform)
        empty here: :meth:`image_info` has them all.
        """
        ...

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None: ...

    def save_image(self, image: str, format: ArchiveFormat = "docker-archive"
                   ) -> Iterator[bytes]:
        """``image`` as a ``docker save`` (or OCI layout) tar stream."""
        ...

    def read_image(self, image: str) -> Iterator[bytes]:
        """``image`` as a docker-archive tar stream for atomic-reactor's own reading
        (its push): the fastest the engine has, e.g. its storage read straight from its
        files; the layout may differ from :meth:`save_image`'s (``ImageArchive`` and
        the push read either). What users are given stays :meth:`save_image`'s."""
        ...

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        """Load a ``docker save`` tar stream; return the names (or ids) loaded."""
        ...

    # -- containers ----------------------------------------------------------------
    def create_container(self, spec: ContainerSpec) -> str: ...

    def start_container(self, container_id: str) -> None: ...

    def wait_container(self, container_id: str, timeout: float | None = None) -> int: ...

    def container_logs(
        self, container_id: str, stderr: bool = True, follow: bool = True
    ) -> Iterator[str]: ...

    def stop_container(self, container_id: str, timeout: int = 10) -> None: ...

    def kill_container(self, container_id: str) -> None: ...

    def remove_container(self, container_id: str, force: bool = False) -> None: ...

    def container_state(self, container_id: str) -> ContainerState:
        """Status and exit code of a container; ``EngineError`` if there is none."""
        ...

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``docker inspect`` of a container, in Docker's shape, for the 1.6 contract only."""
        ...

    def commit_container(
        self,
        container_id: str,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: Sequence[str] | None = None,
    ) -> str: ...

    def export_container(self, container_id: str) -> Iterator[bytes]: ...

    # -- the engine itself ---------------------------------------------------------
    def info(self) -> dict[str, Any]: ...

    def version(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Drop connections and cancel streams in flight; the engine reconnects on use."""
        ...
