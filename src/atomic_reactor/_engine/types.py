"""Typed values that cross the engine seam.

Every backend turns its own data (Docker's inspect JSON, buildah's ``inspect``
output, ...) into these frozen dataclasses; nothing above the seam reads an
engine's raw JSON to make a decision. They are re-exported by
:mod:`atomic_reactor._engine.base`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "BuildOptions",
    "BuildSecret",
    "ContainerState",
    "EngineCapabilities",
    "ImageInfo",
    "Platform",
    "TransferOptions",
]

#: Python/uname machine names -> OCI architecture names
_MACHINE_TO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    "i386": "386", "i686": "386",
}


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]`` (``linux/arm64``, ``linux/arm/v7``)."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64``, ``linux/arm/v7`` or a bare architecture (``arm64``).

        Raises :class:`ValueError` for anything else (the caller turns it into bad input).
        """
        parts = text.strip().split("/")
        if not all(parts) or len(parts) > 3:
            raise ValueError(f"invalid platform {text!r} (expected os/arch[/variant])")
        if len(parts) == 1:
            return cls("linux", _MACHINE_TO_ARCH.get(parts[0], parts[0]))
        variant = parts[2] if len(parts) == 3 else None
        return cls(parts[0], _MACHINE_TO_ARCH.get(parts[1], parts[1]), variant)

    @classmethod
    def host(cls) -> Platform:
        """The platform this machine runs natively."""
        machine = os.uname().machine
        return cls("linux", _MACHINE_TO_ARCH.get(machine, machine))

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @property
    def slug(self) -> str:
        """A file-name and tag-safe form: ``linux-arm64``."""
        return str(self).replace("/", "-")


@dataclass(frozen=True)
class ImageInfo:
    """What the pipeline needs to know of one local image, engine-neutral.

    ``names`` are its ``repo:tag`` references, ``digests`` its ``repo@sha256:..``
    references (manifest digests it was pulled or pushed as), ``layers`` the
    uncompressed layer digests (diff ids) from the bottom up.
    """

    id: str
    names: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    architecture: str = ""
    os: str = ""
    variant: str | None = None
    created: datetime | None = None
    layers: tuple[str, ...] = ()
    size: int = 0
    user: str = ""
    workdir: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None

    @property
    def platform(self) -> Platform:
        return Platform(self.os or "linux", self.architecture, self.variant)

    @property
    def environment(self) -> dict[str, str]:
        """``env`` as a mapping (``KEY=VALUE`` entries; a later entry wins)."""
        found: dict[str, str] = {}
        for entry in self.env:
            key, _, value = entry.partition("=")
            found[key] = value
        return found

    def digest_for(self, repository: str) -> str | None:
        """The manifest digest recorded for ``repository`` (``reg/ns/name``), if any."""
        for reference in self.digests:
            name, _, digest = reference.partition("@")
            if name == repository and digest:
                return digest
        return None


@dataclass(frozen=True)
class ContainerState:
    """A container as the engine sees it (after or during a run)."""

    id: str
    image: str = ""
    status: Literal["created", "running", "exited", "dead", "unknown"] = "unknown"
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class BuildSecret:
    """A ``RUN --mount=type=secret,id=ID`` source: a file (``src``) or a variable (``env``).

    Only the reference is kept; the value is read by the engine at build time.
    ``registered`` says the value was read once already, when the build request was
    validated, and registered as a secret (masked in every output): the engine does not
    read it again. A secret made without it is read and registered by the engine.
    """

    id: str
    src: str | None = None
    env: str | None = None
    registered: bool = field(default=False, compare=False, repr=False)

    def to_dict(self) -> dict[str, str]:
        """``{"id": ..., "src"|"env": ...}``, as a build json names it (never the value)."""
        return {"id": self.id, **({"src": self.src} if self.src else {}),
                **({"env": self.env} if self.env else {})}


@dataclass(frozen=True)
class BuildOptions:
    """How to build, engine-neutral (what ``docker build`` / ``buildah bud`` users set)."""

    dockerfile: str | None = None
    use_cache: bool = True
    remove_intermediate: bool = True
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    pull: bool = False
    secrets: Sequence[BuildSecret] = ()
    platform: Platform | None = None
    #: SOURCE_DATE_EPOCH for reproducible builds (engines that can clamp times use it)
    timestamp: int | None = None


@dataclass(frozen=True)
class TransferOptions:
    """Per-call settings of a pull or push."""

    insecure: bool = False
    platform: Platform | None = None


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine does well, for the choices made above the seam (which never
    look at an engine's name). Every backend declares its own as ``capabilities``;
    the defaults suit an engine about which nothing is known."""

    fast_push: bool = False
    """The engine's own push compresses and uploads as fast as atomic-reactor's push
    over the registry API (and needs no archive of the image first): ``tag_and_push``
    then pushes with the engine by default (gzip layers, Docker schema 2, a build
    that need not be reproducible), unless ``direct_save`` lets ours be faster."""
    parallel_builds: bool = False
    """Several builds (a multi-platform build's platforms) can run at the same time."""
    direct_save: bool = False
    """``read_image`` streams the image straight from the engine's storage (no archive
    written first), so atomic-reactor's push, which starts uploading while it reads,
    compresses once and uploads to every registry at the same time, beats the engine's
    push (measured for buildah to one registry and more): ``tag_and_push`` then pushes
    by itself by default. (dockerd's overlay2 storage is read so too where this process
    can, but its push is ours by default anyway: ``fast_push`` is False.)"""
