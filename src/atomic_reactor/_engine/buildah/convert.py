"""buildah's JSON (``inspect``, ``images --json``) to the seam's typed values, and to
Docker's inspect shape for the 1.6 contract names (``inspect_image``,
``inspect_container``). Nothing else reads buildah's JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from atomic_reactor._engine.types import ContainerState, ImageInfo

__all__ = ["docker_container_inspect", "docker_image_inspect", "familiar", "image_info",
           "parse_size", "parse_time", "qualified", "repo_digests", "repository"]

_FRACTION = re.compile(r"(\.\d{6})\d+")
_LOCAL = "localhost/"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (nanoseconds allowed) as an aware datetime; None if unparsable."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def familiar(name: str) -> str:
    """A name as the user wrote it: buildah's ``localhost/`` prefix of local names off."""
    return name[len(_LOCAL):] if name.startswith(_LOCAL) else name


def _has_registry(name: str) -> bool:
    first, slash, _ = name.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def shown_as_is(name: str) -> bool:
    """Whether an image pulled as ``name`` is shown under that same repository: the
    name has a registry (not a short name buildah resolves) other than ``localhost``
    (which :func:`familiar` takes off)."""
    return _has_registry(name) and not name.startswith(_LOCAL)


def qualified(name: str) -> str:
    """A reference buildah resolves in local storage without any registry lookup:
    unqualified names get ``localhost/`` (where buildah keeps local builds)."""
    if name.startswith("sha256:") or re.fullmatch(r"[0-9a-f]{12,64}", name):
        return name
    return name if _has_registry(name) else _LOCAL + name


def repository(name: str) -> str:
    """``reg/ns/name`` of ``reg/ns/name:tag`` or ``...@digest``."""
    base = name.split("@", 1)[0]
    slash = base.rfind("/")
    colon = base.rfind(":")
    return base[:colon] if colon > slash else base


def _config(inspect: Mapping[str, Any]) -> dict[str, Any]:
    """The image configuration document (Docker's when buildah has it, else OCI's)."""
    docker = inspect.get("Docker")
    if isinstance(docker, dict) and isinstance(docker.get("config"), dict):
        return docker
    oci = inspect.get("OCIv1")
    if isinstance(oci, dict):
        return oci
    raw = inspect.get("Config")
    if isinstance(raw, str) and raw:
        try:
            loaded = json.loads(raw)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _manifest_size(inspect: Mapping[str, Any]) -> int:
    raw = inspect.get("Manifest")
    if not isinstance(raw, str) or not raw:
        return 0
    try:
        manifest = json.loads(raw)
    except ValueError:
        return 0
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return 0
    return sum(int(layer.get("size") or 0) for layer in layers if isinstance(layer, dict))


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    if isinstance(value, str):
        return (value,)
    return None


def image_info(inspect: Mapping[str, Any], names: Sequence[str] = (), digest: str = "",
               pushed: Mapping[str, str] | None = None) -> ImageInfo:
    """:class:`ImageInfo` from ``buildah inspect --type image`` plus the image's names
    (``buildah images``) and manifest digest; ``pushed`` maps repositories to the
    digests this process pushed them as (those win over the stored one)."""
    document = _config(inspect)
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    assert isinstance(config, dict)
    image_id = str(inspect.get("FromImageID") or "")
    if image_id and not image_id.startswith("sha256:"):
        image_id = f"sha256:{image_id}"
    shown = tuple(dict.fromkeys(familiar(name) for name in names))
    stored = digest or str(inspect.get("FromImageDigest") or "")
    rootfs = document.get("rootfs") if isinstance(document.get("rootfs"), dict) else {}
    assert isinstance(rootfs, dict)
    labels = config.get("Labels") or {}
    return ImageInfo(
        id=image_id,
        names=shown,
        digests=repo_digests(shown, stored, pushed or {}),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        env=tuple(str(item) for item in config.get("Env") or ()),
        architecture=str(document.get("architecture") or ""),
        os=str(document.get("os") or ""),
        variant=str(document["variant"]) if document.get("variant") else None,
        created=parse_time(document.get("created")),
        layers=tuple(str(d) for d in rootfs.get("diff_ids") or ()),
        size=_manifest_size(inspect),
        user=str(config.get("User") or ""),
        workdir=str(config.get("WorkingDir") or ""),
        entrypoint=_strings(config.get("Entrypoint")),
        cmd=_strings(config.get("Cmd")),
    )


def repo_digests(names: Sequence[str], stored: str, pushed: Mapping[str, str]
                 ) -> tuple[str, ...]:
    """``repo@digest`` references: the digest this process pushed a repository as, else
    the stored manifest digest for names with a registry (what was pulled)."""
    recorded: dict[str, None] = {}  # what this process pulled or pushed: first
    stored_refs: dict[str, None] = {}
    for name in names:
        repo = repository(name)
        if repo in pushed:
            recorded[f"{repo}@{pushed[repo]}"] = None
        elif stored and _has_registry(name):
            stored_refs[f"{repo}@{stored}"] = None
    digests = {**recorded, **stored_refs}
    return tuple(digests)


_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def parse_size(value: object) -> int:
    """``buildah images``' human size (``2.14 MB``) in bytes, roughly; 0 if unknown."""
    if isinstance(value, int):
        return value
    found = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgGtT]?[bB])\s*", str(value or ""))
    if not found:
        return 0
    return int(float(found.group(1)) * _UNITS[found.group(2).lower()])


def _docker_config(config: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
            "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal",
            "Shell")
    shaped: dict[str, Any] = dict.fromkeys(keys)
    shaped.update({"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                   "AttachStdout": False, "AttachStderr": False, "Tty": False,
                   "OpenStdin": False, "StdinOnce": False, "Image": "", "WorkingDir": ""})
    shaped.update({key: value for key, value in config.items() if value is not None})
    return shaped


def docker_image_inspect(inspect: Mapping[str, Any], info: ImageInfo,
                         driver: str = "overlay") -> dict[str, Any]:
    """``docker inspect`` of an image, from buildah's inspect and the typed info."""
    document = _config(inspect)
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    assert isinstance(config, dict)
    container_config = document.get("container_config")
    history = document.get("history") if isinstance(document.get("history"), list) else []
    assert isinstance(history, list)
    comment = ""
    if history and isinstance(history[-1], dict):
        comment = str(history[-1].get("comment") or "")
    return {
        "Id": info.id,
        "RepoTags": [name for name in info.names if "@" not in name],
        "RepoDigests": list(info.digests),
        "Parent": "",
        "Comment": comment,
        "Created": str(document.get("created") or ""),
        "Container": "",
        "ContainerConfig": _docker_config(container_config
                                          if isinstance(container_config, dict) else {}),
        "DockerVersion": "",
        "Author": str(document.get("author") or ""),
        "Config": _docker_config(config),
        "Architecture": info.architecture,
        "Os": info.os,
        **({"Variant": info.variant} if info.variant else {}),
        "Size": info.size,
        "VirtualSize": info.size,
        "GraphDriver": {"Name": driver, "Data": None},
        "RootFS": {"Type": "layers", "Layers": list(info.layers)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "0001-01-01T00:00:00Z"


def docker_container_inspect(state: ContainerState, name: str,
                             command: Sequence[str]) -> dict[str, Any]:
    """``docker inspect`` of a container, in the part the 1.6 API callers read."""
    return {
        "Id": state.id,
        "Name": f"/{name}",
        "Image": state.image,
        "Path": command[0] if command else "",
        "Args": list(command[1:]),
        "State": {
            "Status": state.status,
            "Running": state.running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": state.oom_killed,
            "Dead": state.status == "dead",
            "Pid": 0,
            "ExitCode": state.exit_code if state.exit_code is not None else 0,
            "Error": state.error,
            "StartedAt": _iso(state.started_at),
            "FinishedAt": _iso(state.finished_at),
        },
        "Config": {"Image": state.image, "Cmd": list(command)},
    }
