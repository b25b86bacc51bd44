"""Container engine backends behind one narrow interface (private)."""

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
