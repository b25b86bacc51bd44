"""Manifest lists (Docker schema 2) and OCI image indexes: reading, choosing, pushing.

A multi-platform image is one manifest per platform plus a list that names each
by digest and platform. :func:`push_manifest_list` stores such a list under tags,
from per-platform manifests already in the repository (pushed by the engine or by
other builders); :func:`select_platform` picks one platform's manifest out of a list
(for pulling a multi-arch base). Everything goes through
:class:`~atomic_reactor._registry.client.RegistryClient`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from atomic_reactor._engine.types import Platform
from atomic_reactor._registry.client import ManifestNotFound, RawManifest, RegistryClient
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import InputError, RegistryError

logger = logging.getLogger(__name__)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "LIST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ManifestListEntry",
    "PushedManifestList",
    "list_document",
    "list_entries",
    "push_manifest_list",
    "select_platform",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: the media types of a list of manifests
LIST_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
#: the media types of one image's manifest
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)


@dataclass(frozen=True)
class ManifestListEntry:
    """One platform's manifest in a list.

    ``media_type`` and ``size`` may be left out: :func:`push_manifest_list` reads
    them from the registry (where the manifest must already be).
    """

    digest: str
    platform: Platform
    media_type: str | None = None
    size: int | None = None

    def descriptor(self) -> dict[str, Any]:
        platform: dict[str, Any] = {"architecture": self.platform.architecture,
                                    "os": self.platform.os}
        if self.platform.variant:
            platform["variant"] = self.platform.variant
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest,
                "platform": platform}


@dataclass(frozen=True)
class PushedManifestList:
    """A list stored in one registry's repository under ``tags``."""

    registry: str
    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    entries: tuple[ManifestListEntry, ...]

    @property
    def references(self) -> tuple[str, ...]:
        """``registry/repository:tag`` for every tag."""
        return tuple(f"{self.registry}/{self.repository}:{tag}" for tag in self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "repository": self.repository,
                "digest": self.digest, "media_type": self.media_type,
                "tags": list(self.tags),
                "references": list(self.references),
                "platforms": {str(e.platform): e.digest for e in self.entries}}


def _platform_of(descriptor: Mapping[str, Any]) -> Platform | None:
    data = descriptor.get("platform")
    if not isinstance(data, Mapping) or not data.get("architecture") or not data.get("os"):
        return None
    variant = data.get("variant") or None
    return Platform(str(data["os"]), str(data["architecture"]),
                    str(variant) if variant else None)


def list_entries(document: Mapping[str, Any]) -> list[ManifestListEntry]:
    """The entries of a manifest list / OCI index that name a platform (attestation
    manifests and the like, without one, are left out)."""
    entries: list[ManifestListEntry] = []
    for descriptor in document.get("manifests") or ():
        if not isinstance(descriptor, Mapping):
            continue
        platform = _platform_of(descriptor)
        if platform is None or platform.architecture == "unknown":
            continue
        entries.append(ManifestListEntry(
            digest=str(descriptor.get("digest", "")), platform=platform,
            media_type=descriptor.get("mediaType"), size=descriptor.get("size")))
    return entries


def _matches(wanted: Platform, offered: Platform) -> bool:
    if (wanted.os, wanted.architecture) != (offered.os, offered.architecture):
        return False
    if wanted.variant is None:
        return True
    # arm64 images are v8 whether or not the list says so
    default = "v8" if wanted.architecture == "arm64" else None
    return (offered.variant or default) == wanted.variant


def select_platform(document: Mapping[str, Any], platform: Platform
                    ) -> ManifestListEntry | None:
    """The entry of the list ``document`` for ``platform`` (None when it has none).

    A platform without a variant matches any variant of its architecture; the first
    match wins, as engines choose.
    """
    for entry in list_entries(document):
        if _matches(platform, entry.platform):
            return entry
    return None


def list_document(entries: Sequence[ManifestListEntry]) -> tuple[bytes, str]:
    """The list's bytes and media type: a Docker schema 2 list when every entry is a
    Docker manifest, an OCI image index otherwise."""
    if not entries:
        raise InputError("a manifest list needs at least one entry")
    missing = [e.digest for e in entries if not e.media_type or e.size is None]
    if missing:
        raise InputError(f"manifest list entry {missing[0]} has no media type or size")
    seen: dict[Platform, str] = {}
    for entry in entries:
        if entry.platform in seen:
            raise InputError(f"manifest list: two entries for {entry.platform} "
                             f"({seen[entry.platform]} and {entry.digest})")
        seen[entry.platform] = entry.digest
    docker = all(e.media_type == DOCKER_MANIFEST for e in entries)
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    document = {"schemaVersion": 2, "mediaType": media_type,
                "manifests": [e.descriptor() for e in entries]}
    return json.dumps(document, indent=3).encode("utf-8"), media_type


def _complete(client: RegistryClient, repository: str, entry: ManifestListEntry
              ) -> ManifestListEntry:
    """``entry`` with the media type and size of the manifest the registry holds (which
    must be an image manifest, not another list)."""
    try:
        raw: RawManifest = client.get_manifest_raw(repository, entry.digest)
    except ManifestNotFound:
        raise RegistryError(f"the {entry.platform} manifest {entry.digest} is not in "
                            f"{client.registry}/{repository}: push it first",
                            registry=client.registry) from None
    if raw.media_type not in IMAGE_TYPES:
        raise RegistryError(f"{client.registry}/{repository}@{entry.digest} is a "
                            f"{raw.media_type or 'manifest of unknown type'}, not an image "
                            "manifest", registry=client.registry)
    return replace(entry, media_type=raw.media_type, size=raw.size)


def push_manifest_list(
    registry: str,
    repository: str,
    tags: Sequence[str],
    entries: Sequence[ManifestListEntry],
    *,
    insecure: bool = False,
    secret: str | None = None,
    retry: RetryPolicy | None = None,
    client: RegistryClient | None = None,
) -> PushedManifestList:
    """Store a list of the per-platform manifests ``entries`` as ``repository:tag`` for
    every tag in ``registry``; return what was stored.

    Every entry's manifest must already be in ``repository`` (by its digest); its
    media type and size are read from there. The list is a Docker schema 2 manifest
    list when every entry is a Docker manifest, else an OCI image index. ``secret``
    is a docker config (directory or file) with credentials for ``registry``.
    Raises :class:`~atomic_reactor.errors.RegistryError` (exit 4) when the registry
    fails or lacks an entry, :class:`~atomic_reactor.errors.InputError` for no tags,
    no entries or two entries of one platform.
    """
    if not tags:
        raise InputError("a manifest list needs at least one tag")
    own = client is None
    active = client or RegistryClient(registry, insecure=insecure, secret=secret, retry=retry)
    try:
        complete = tuple(_complete(active, repository, e) for e in entries)
        body, media_type = list_document(complete)
        digest = ""
        for tag in tags:
            digest = active.put_manifest(repository, tag, body, media_type)
            logger.info("pushed manifest list %s/%s:%s (%s)", registry, repository, tag, digest)
    finally:
        if own:
            active.close()
    return PushedManifestList(registry=registry, repository=repository, digest=digest,
                              media_type=media_type, tags=tuple(tags), entries=complete)
