"""The narrow interface every container engine backend implements.

Plugins and the workflow never talk to an engine SDK directly: they go through
:class:`atomic_reactor.core.DockerTasker`, which delegates to a
:class:`ContainerEngine`. A second backend (buildah, podman) implements this
protocol and nothing above it changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["ContainerEngine", "ContainerSpec", "EngineEvent", "RegistryAuth"]


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry. The password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    registry: str = ""

    def __post_init__(self) -> None:
        from atomic_reactor._secrets import register_auth_token

        register_auth_token(self.username, self.password)  # masked in all output from now on

    def as_docker_auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password,
                "serveraddress": self.registry}


@dataclass(frozen=True)
class EngineEvent:
    """One decoded message of a streamed engine operation (build, pull, push).

    ``message`` is a line for humans (empty for pure progress updates); progress
    updates carry ``layer``, ``current`` and ``total`` bytes. The final event of a
    successful build has ``image_id``; of a push, ``digest`` and ``size``. An event
    with ``error`` means the operation failed.
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
    """Operations the build pipeline needs from an engine."""

    #: where the engine is reached (socket path or URL), for messages
    address: str

    # -- images ------------------------------------------------------------------
    def build(
        self,
        context_dir: str,
        tag: str,
        *,
        dockerfile: str | None = None,
        use_cache: bool = True,
        remove_intermediate: bool = True,
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Iterator[EngineEvent]: ...

    def pull(self, reference: str, auth: RegistryAuth | None = None) -> Iterator[EngineEvent]: ...

    def push(self, reference: str, auth: RegistryAuth | None = None) -> Iterator[EngineEvent]: ...

    def tag(self, image: str, target: str, force: bool = False) -> None: ...

    def inspect_image(self, image: str) -> dict[str, Any]: ...

    def image_exists(self, image: str) -> bool: ...

    def list_images(self, name: str | None = None) -> list[dict[str, Any]]: ...

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None: ...

    def save_image(self, image: str) -> Iterator[bytes]: ...

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]: ...

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

    def inspect_container(self, container_id: str) -> dict[str, Any]: ...

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

    def close(self) -> None: ...
