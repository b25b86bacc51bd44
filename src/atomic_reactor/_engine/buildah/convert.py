"""buildah's JSON (``inspect``, ``images --json``) to the seam's typed values, and to
Docker's inspect shape for the 1.6 contract names (``inspect_image``,
``inspect_container``). Nothing else reads buildah's JSON."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from atomic_reactor._engine.types import ContainerState, ImageInfo

__all__ = ["docker_container_inspect", "docker_image_inspect", "familiar", "image_info",
           "parse_size", "parse_time", "qualified", "repo_digests", "repository",
           "stored_inspect"]

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


_DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
#: RFC 3339 as Go writes a time back (buildah re-encodes the config it inspects):
#: no trailing zeros in the fraction, at most nanoseconds
_GO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)")
_PLAIN_STRINGS = ("Hostname", "Domainname", "User", "Image", "WorkingDir")
_FLAGS = ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce")
_LISTS = ("Env", "Cmd", "Entrypoint", "OnBuild")
_SETS = ("Volumes",)
#: keys buildah's Docker config type leaves out when empty
_OMITTED_EMPTY = {"ExposedPorts": dict, "Shell": list, "StopSignal": str, "ArgsEscaped": bool}


def _string_list(value: object) -> bool:
    return value is None or (isinstance(value, list)
                             and all(isinstance(item, str) for item in value))


def _string_set(value: object) -> bool:
    return value is None or (isinstance(value, dict) and all(
        isinstance(key, str) and item == {} for key, item in value.items()))


def _as_buildah_config(config: object) -> dict[str, Any] | None:
    """A Docker container config as ``buildah inspect`` shows it (decoded into Go
    types and encoded again), or None where that could change it in a way not
    reproduced here (keys or values outside what is checked)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        return None
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if key in _OMITTED_EMPTY:
            kind = _OMITTED_EMPTY[key]
            if value is None or value == kind():
                continue
            if not isinstance(value, kind) or \
                    (kind is dict and not _string_set(value)) or \
                    (kind is list and not _string_list(value)):
                return None
        elif key in _PLAIN_STRINGS:
            if not isinstance(value, str) and value is not None:
                return None
        elif key in _FLAGS:
            if not isinstance(value, bool) and value is not None:
                return None
        elif key in _LISTS:
            if not _string_list(value):
                return None
        elif key in _SETS:
            if not _string_set(value):
                return None
        elif key == "Labels":
            if value is not None and not (isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                return None
        else:
            return None  # Healthcheck, StopTimeout, ...: not reproduced here
        shown[key] = value
    return shown


def stored_inspect(record: Mapping[str, Any], config: bytes, manifest: bytes
                   ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """What ``buildah images --json`` (its entry: id, names, digest) and ``buildah
    inspect --type image`` (the part :func:`image_info` and :func:`docker_image_inspect`
    read) say of an image, from its storage record (``images.json``), its config and
    its ``manifest`` item; None where this cannot be sure to say the same (an image
    other than Docker schema 2, a config buildah would show differently)."""
    try:
        document = json.loads(config)
        parsed = json.loads(manifest)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(parsed, dict) or \
            parsed.get("mediaType") != _DOCKER_V2S2 or not isinstance(parsed.get("layers"), list):
        return None
    if not isinstance(document.get("config"), dict):
        return None  # buildah would show the OCI config instead
    shown = dict(document)
    for key in ("config", "container_config"):
        converted = _as_buildah_config(document.get(key))
        if converted is None:
            return None
        shown[key] = converted
    if shown["container_config"] != shown["config"] or not document.get("architecture") or \
            not document.get("os"):
        return None  # buildah fills these in from the config: checked only where equal
    for key in ("created", "author", "architecture", "os", "variant"):
        if not isinstance(document.get(key) or "", str):
            return None
    created = document.get("created")
    if created and not _GO_TIME.fullmatch(str(created)):
        return None
    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict) or not _string_list(rootfs.get("diff_ids")):
        return None
    history = document.get("history")
    if not _string_list([entry.get("comment") or "" if isinstance(entry, dict) else 0
                         for entry in history or ()]) or \
            not isinstance(history or [], list):
        return None
    names = record.get("names") or []
    digest = record.get("digest") or ""
    if not _string_list(names) or not isinstance(digest, str) or not record.get("id"):
        return None
    entry = {"id": f"sha256:{record['id']}", "names": list(names), "digest": digest}
    inspect = {"FromImageID": str(record["id"]),
               "FromImageDigest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
               "Manifest": manifest.decode("utf-8", "replace"), "Docker": shown}
    return entry, inspect


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
