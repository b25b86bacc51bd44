"""SLSA provenance v1 of a build, as an in-toto Statement v1 (JSON).

``subject``: the image (repository and manifest digest). ``buildDefinition``: the
source (uri without credentials, commit), the Dockerfile path, the build arguments
(values that are registered secrets are left out, their names listed in
``secretBuildArgs``), whether the build was reproducible and its
SOURCE_DATE_EPOCH; ``resolvedDependencies``: the source commit and the base image by
digest. ``runDetails``: atomic-reactor and the engine with their versions, the start
and end of the build. The whole document is passed through the secrets register
last, so no registered secret can be in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from atomic_reactor import __version__
from atomic_reactor._git import strip_credentials
from atomic_reactor._secrets import redact_data, registered_secrets

__all__ = ["BUILD_TYPE", "PREDICATE_TYPE", "PROVENANCE_MEDIA_TYPE", "STATEMENT_TYPE",
           "ProvenanceInputs", "make_provenance"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PROVENANCE_MEDIA_TYPE = "application/vnd.in-toto+json"
#: what the external parameters below mean (a URI naming this build template)
BUILD_TYPE = "urn:atomic-reactor:build-type:container-image:v1"


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ProvenanceInputs:
    """What the provenance says of one build."""

    image: str
    image_digest: str
    source_provider: str
    source_uri: str
    source_commit: str | None
    dockerfile_path: str
    base_image: str | None
    base_image_digest: str | None
    engine: str
    engine_version: str
    started: datetime
    finished: datetime
    buildargs: Mapping[str, str] = field(default_factory=dict)
    reproducible: bool = False
    source_date_epoch: int | None = None
    invocation_id: str | None = None


def _split_buildargs(buildargs: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    secrets = [s for s in registered_secrets() if s]
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for key in sorted(buildargs):
        value = str(buildargs[key])
        if any(secret in value for secret in secrets):
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def provenance_statement(inputs: ProvenanceInputs) -> dict[str, Any]:
    buildargs, secret_args = _split_buildargs(inputs.buildargs)
    source_uri = strip_credentials(inputs.source_uri)
    external: dict[str, Any] = {
        "source": {"provider": inputs.source_provider, "uri": source_uri,
                   **({"commit": inputs.source_commit} if inputs.source_commit else {})},
        "dockerfile": inputs.dockerfile_path,
        "image": inputs.image,
        "buildArgs": buildargs,
        "reproducible": inputs.reproducible,
    }
    if secret_args:
        external["secretBuildArgs"] = secret_args
    if inputs.source_date_epoch is not None:
        external["sourceDateEpoch"] = inputs.source_date_epoch
    dependencies: list[dict[str, Any]] = []
    if inputs.source_commit:
        dependencies.append({"uri": f"git+{source_uri}",
                             "digest": {"gitCommit": inputs.source_commit}})
    if inputs.base_image:
        base: dict[str, Any] = {"uri": f"oci://{inputs.base_image}", "name": "base-image"}
        if inputs.base_image_digest and ":" in inputs.base_image_digest:
            algorithm, _, hexdigest = inputs.base_image_digest.partition(":")
            base["digest"] = {algorithm: hexdigest}
            base["uri"] = f"oci://{inputs.base_image.split('@', 1)[0]}@" \
                          f"{inputs.base_image_digest}"
        dependencies.append(base)
    algorithm, _, hexdigest = inputs.image_digest.partition(":")
    metadata: dict[str, Any] = {"startedOn": _time(inputs.started),
                                "finishedOn": _time(inputs.finished)}
    if inputs.invocation_id:
        metadata["invocationId"] = inputs.invocation_id
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": inputs.image, "digest": {algorithm: hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"engine": inputs.engine},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": f"urn:atomic-reactor:builder:{inputs.engine}",
                    "version": {"atomic-reactor": __version__,
                                inputs.engine: inputs.engine_version},
                },
                "metadata": metadata,
            },
        },
    }
    return redact_data(statement)  # type: ignore[no-any-return]


def make_provenance(inputs: ProvenanceInputs) -> bytes:
    """The statement as JSON bytes (sorted keys, compact)."""
    return json.dumps(provenance_statement(inputs), sort_keys=True,
                      separators=(",", ":")).encode()
