"""The Docker Engine backend: :mod:`._transport` speaks HTTP to dockerd (the
connection, streams, frames), :mod:`.engine` makes the resource calls of the engine
seam with it."""

from __future__ import annotations

from atomic_reactor._engine.docker.engine import (
    DockerEngine,
    _intermediates,
    _oci_archive,
    build_params,
    container_config,
    container_state_from_inspect,
    default_address,
    image_info_from_inspect,
    image_info_from_list_entry,
)

__all__ = [
    "DockerEngine",
    "_intermediates",
    "_oci_archive",
    "build_params",
    "container_config",
    "container_state_from_inspect",
    "default_address",
    "image_info_from_inspect",
    "image_info_from_list_entry",
]
