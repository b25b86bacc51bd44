"""Documents attached to an image in a registry as OCI artifacts (``subject``).

An artifact is an OCI image manifest with ``artifactType``, the empty config
(``application/vnd.oci.empty.v1+json``, ``{}``), the document as its one layer, and
``subject``: the descriptor of the image's manifest. It is stored by digest. A
registry with the referrers API (``GET /v2/<name>/referrers/<digest>``) indexes it
by itself; for one without (Debian's registry 2.8), the referrers tag schema of the
distribution spec is kept up to date too: the tag ``sha256-<hex of the subject>``
holds an OCI index of every referrer, read first and extended (never replaced by
an index of only the new artifact).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from atomic_reactor._image.layout import (
    OCI_EMPTY_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    image_manifest,
)
from atomic_reactor._registry.client import ManifestNotFound, RegistryClient, sha256_digest

logger = logging.getLogger(__name__)

__all__ = ["EMPTY_CONFIG", "EMPTY_MEDIA_TYPE", "OCI_INDEX", "OCI_MANIFEST", "Attached",
           "artifact_manifest", "attach_artifact", "fallback_tag", "list_referrers"]

EMPTY_MEDIA_TYPE = OCI_EMPTY_CONFIG
EMPTY_CONFIG = b"{}"


@dataclass(frozen=True)
class Attached:
    """One artifact stored in ``repository``: its manifest digest and size, how it is found."""

    digest: str
    size: int
    document_digest: str
    via: str


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest`` (``sha256-<hex>``)."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def artifact_manifest(*, artifact_type: str, document: bytes, document_type: str,
                      subject: Mapping[str, Any],
                      annotations: Mapping[str, str] | None = None) -> bytes:
    """The artifact manifest (bytes) for ``document`` referring to ``subject``."""
    return image_manifest(
        "oci", Descriptor(EMPTY_MEDIA_TYPE, sha256_digest(EMPTY_CONFIG), len(EMPTY_CONFIG)),
        [Descriptor(document_type, sha256_digest(document), len(document))],
        subject=Descriptor(str(subject["mediaType"]), str(subject["digest"]),
                           int(subject["size"])),
        artifact_type=artifact_type, annotations=dict(annotations) if annotations else None)


def list_referrers(client: RegistryClient, repo: str, digest: str,
                   artifact_type: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The referrers of ``digest`` and where they were found (``referrers-api`` or
    ``tag-schema``); filtered by ``artifact_type`` when given."""
    index = client.get_referrers(repo, digest)
    via = "referrers-api"
    if index is None:
        via = "tag-schema"
        try:
            raw = client.get_manifest_raw(repo, fallback_tag(digest), accept=(OCI_INDEX,))
        except ManifestNotFound:
            return [], via
        index = json.loads(raw.body)
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if artifact_type is not None:
        manifests = [m for m in manifests if m.get("artifactType") == artifact_type]
    return manifests, via


def _update_fallback_tag(client: RegistryClient, repo: str, subject_digest: str,
                         descriptor: Mapping[str, Any]) -> None:
    tag = fallback_tag(subject_digest)
    try:
        raw = client.get_manifest_raw(repo, tag, accept=(OCI_INDEX,))
        index = json.loads(raw.body)
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ValueError("not an index")
    except ManifestNotFound:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    except ValueError:
        logger.warning("%s/%s:%s is not an OCI index; replacing it", client.registry, repo, tag)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if any(isinstance(m, dict) and m.get("digest") == descriptor["digest"]
           for m in index["manifests"]):
        return
    index["manifests"].append(dict(descriptor))
    client.put_manifest(repo, tag, _dumps(index), OCI_INDEX)


def attach_artifact(client: RegistryClient, repo: str, subject_digest: str, *,
                    artifact_type: str, document: bytes, document_type: str,
                    annotations: Mapping[str, str] | None = None) -> Attached:
    """Push ``document`` as an artifact of ``repo`` whose subject is ``subject_digest``."""
    subject = client.get_manifest_raw(repo, subject_digest)
    subject_descriptor = {"mediaType": subject.media_type, "digest": subject.digest,
                          "size": subject.size}
    client.upload_blob(repo, EMPTY_CONFIG)
    document_digest = client.upload_blob(repo, document)
    body = artifact_manifest(artifact_type=artifact_type, document=document,
                             document_type=document_type, subject=subject_descriptor,
                             annotations=annotations)
    digest = client.put_manifest(repo, sha256_digest(body), body, OCI_MANIFEST)
    descriptor: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest,
                                  "size": len(body), "artifactType": artifact_type}
    if annotations:
        descriptor["annotations"] = dict(annotations)
    if client.get_referrers(repo, subject_digest) is not None:
        via = "referrers-api"
    else:
        _update_fallback_tag(client, repo, subject_digest, descriptor)
        via = "tag-schema"
    logger.info("attached %s %s to %s/%s@%s (%s)", artifact_type, digest[:19],
                client.registry, repo, subject_digest[:19], via)
    return Attached(digest=digest, size=len(body), document_digest=document_digest, via=via)
