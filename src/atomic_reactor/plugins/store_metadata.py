"""``store_metadata``: a validated JSON metadata document describing the build."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._files import write_text_atomic
from atomic_reactor._reference import ImageName
from atomic_reactor._results import BuildResults, jsonable
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import ExitPlugin
from atomic_reactor.plugins.pull_base_image import PulledBaseImage

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["METADATA_VERSION", "StoreMetadataPlugin", "StoredMetadata", "metadata_schema"]

#: ``metadata_version`` of the documents this plugin writes
METADATA_VERSION = 1
_SCHEMA_RESOURCE = "schemas/metadata.json"


@cache
def _schema_text() -> str:
    return resources.files("atomic_reactor").joinpath(_SCHEMA_RESOURCE).read_text("utf-8")


def metadata_schema() -> dict[str, Any]:
    """The JSON Schema the metadata document follows (``schemas/metadata.json``)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@dataclass(frozen=True)
class StoredMetadata:
    """Where the metadata went and what it says about the build."""

    path: str
    size: int
    status: str


def build_status(workflow: DockerBuildWorkflow) -> str:
    """``succeeded``, ``failed`` or ``cancelled`` for the build as it stands."""
    if workflow.cancelled is not None:
        return "cancelled"
    if workflow.build_process_failed:
        return "failed"
    return "succeeded"


def _repo_digest(info: ImageInfo | None, wanted: ImageName | None) -> str | None:
    """The manifest digest of ``wanted`` among the digests the engine has for an image."""
    if info is None:
        return None
    repo_digests = [d for d in info.digests if "@" in d]
    if wanted is not None:
        repository = wanted.to_str(tag=False)
        for repo_digest in repo_digests:
            name, digest = repo_digest.split("@", 1)
            if name == repository or name.rsplit("/", 1)[-1] == repository.rsplit("/", 1)[-1]:
                return digest
    return repo_digests[0].split("@", 1)[1] if len(repo_digests) == 1 else None


class StoreMetadataPlugin(ExitPlugin):
    """Write a metadata document for the build to a JSON file: status and error,
    the final Dockerfile, the image and its id, tags, the source (commit), the base
    image with its id and manifest digest, every pushed reference with its digest
    per registry, exported image files, plugin timings and errors, the log file,
    the built image's labels, (when ``all_rpm_packages`` ran) the package list and
    (``--sbom``/``--provenance``) the artifacts attached to the pushed image: per
    registry and kind (``sbom``, ``provenance``) the artifact manifest's digest, its
    subject (the image's manifest digest), artifact type, size, how clients find it
    (``referrers-api`` or ``tag-schema``) and the digest of the document inside.

    The document is validated against the JSON Schema shipped as
    ``atomic_reactor/schemas/metadata.json`` before it is written; it is written
    atomically (temporary file in the same directory, then renamed) with mode 0644,
    creating missing parent directories. It runs after success, failure and cancel.

    Result: a :class:`StoredMetadata` (absolute path, size in bytes, build status).
    """

    key = "store_metadata"
    is_allowed_to_fail = True

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, path: str) -> None:
        """
        :param path: the file to write the metadata to (absolute, or relative to the
            working directory)
        """
        super().__init__(tasker, workflow)
        if not path or not path.strip() or "\0" in path or path.endswith(("/", os.sep)):
            raise PluginConfigError(f"plugin {self.key}: argument path must name a file",
                                    plugin=self.key, argument="path")
        self.path = os.path.abspath(path)

    # -- pieces --------------------------------------------------------------------
    def _base_image(self, results: BuildResults) -> dict[str, Any] | None:
        if results.base_image is None:
            return None
        name = ImageName.parse(results.base_image)
        pulled = [item for item in self.workflow.result_items("pull_base_image",
                                                              PulledBaseImage)
                  if item.image == results.base_image]
        entry = pulled[-1] if pulled else None
        digest = (entry.digest if entry else None) or results.base_image_digest
        pulled_from = entry.pulled_from if entry else None
        if not digest:
            source = ImageName.parse(pulled_from) if pulled_from else name
            digest = _repo_digest(self._image_info(base=True), source)
        return {
            "name": results.base_image,
            "id": results.base_image_id or (entry.image_id if entry else None),
            "digest": digest or None,
            "pulled_from": pulled_from or None,
        }

    def _image_info(self, base: bool) -> ImageInfo | None:
        """The base (or built) image as the engine knows it; None if it does not."""
        builder = self.workflow.builder
        if builder is None or (not base and builder.image_id is None):
            return None
        with contextlib.suppress(AtomicReactorError):
            return builder.base_info() if base else builder.built_info()
        return None

    def _parent_images(self) -> list[dict[str, Any]]:
        return [{"name": item.image, "pulled_from": item.pulled_from, "id": item.image_id,
                 "digest": item.digest}
                for item in self.workflow.result_items("pull_base_image", PulledBaseImage)]

    def _registries(self, results: BuildResults) -> dict[str, list[dict[str, Any]]]:
        registries: dict[str, list[dict[str, Any]]] = {}
        for pushed in results.pushed:
            ref = ImageName.parse(pushed.image)
            registries.setdefault(pushed.registry, []).append({
                "reference": pushed.image,
                "repository": ref.to_str(registry=False, tag=False),
                "tag": ref.tag,
                "digest": pushed.digest,
                "size": pushed.size,
            })
        return registries

    def _repositories(self, results: BuildResults) -> dict[str, list[str]]:
        tag_conf = self.workflow.tag_conf
        registries = sorted({pushed.registry for pushed in results.pushed})

        def names(images: list[ImageName]) -> list[str]:
            out: list[str] = []
            for registry in registries:
                for image in images:
                    name = str(image.copy(registry=registry).with_default_tag())
                    if name not in out:
                        out.append(name)
            return out

        return {"primary": names(tag_conf.primary_images),
                "unique": names([self.workflow.image, *tag_conf.unique_images])}

    def _packages(self) -> dict[str, Any] | None:
        result = self.workflow.plugin_result("all_rpm_packages")
        if result is None or isinstance(result, BaseException):
            return None
        data = jsonable(result)
        if not isinstance(data, dict):
            return None
        packages = [p for p in data.get("packages") or [] if isinstance(p, dict)]
        return {
            "manager": data.get("manager"),
            "count": len(packages),
            "packages": [_nvra(p) for p in packages],
        }

    # -- the document ------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """The metadata document (not yet validated)."""
        results = self.workflow.current_results()
        status = build_status(self.workflow)
        built = self._image_info(base=False)
        labels = dict(built.labels) if built is not None else {}
        error = results.error
        if error is None and status == "failed":
            error = {"type": "BuildFailed", "category": "build",
                     "message": results.fail_reason or "a plugin failed"}
        return {
            "metadata_version": METADATA_VERSION,
            "created": datetime.now(UTC).isoformat(),
            "status": status,
            "error": jsonable(error),
            "image": results.image or str(self.workflow.image),
            "engine": str(getattr(self.tasker, "engine_name", "") or ""),
            "image_id": results.image_id,
            "dockerfile": results.dockerfile,
            "labels": {str(k): str(v) for k, v in labels.items()},
            "source": jsonable(results.source),
            "base_image": self._base_image(results),
            "parent_images": self._parent_images(),
            "tags": list(results.tags),
            "repositories": self._repositories(results),
            "registries": self._registries(results),
            "digests": results.digests,
            "exported_images": jsonable(list(results.exported_images)),
            "packages": self._packages(),
            "plugins": {
                "timestamps": dict(results.plugins_timestamps),
                "durations": dict(results.plugins_durations),
                "errors": dict(results.plugins_errors),
            },
            "logs": {"log_file": results.log_file,
                     "build_log_lines": len(results.build_logs)},
            "duration": results.duration,
            "platforms": [{
                "platform": p.platform, "image_id": p.image_id,
                "architecture": p.architecture, "base_image_id": p.base_image_id,
                "base_image_digest": p.base_image_digest, "digests": p.digests,
                "fail_reason": p.fail_reason} for p in results.platforms],
            "manifest_lists": [{
                "registry": m.registry, "repository": m.repository, "digest": m.digest,
                "media_type": m.media_type, "tags": list(m.tags),
                "platforms": dict(m.platforms)} for m in results.manifest_lists],
            "attached": [{
                "kind": a.kind, "registry": a.registry, "repository": a.repository,
                "digest": a.digest, "subject": a.subject, "artifact_type": a.artifact_type,
                "size": a.size, "via": a.via, "document_digest": a.document_digest}
                for a in results.attached],
        }

    def validate(self, document: Mapping[str, Any]) -> None:
        """Raise :class:`AtomicReactorError` when ``document`` does not fit the schema."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(metadata_schema())
        problems = sorted(validator.iter_errors(dict(document)), key=lambda e: list(e.path))
        if problems:
            first = problems[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(document)"
            raise AtomicReactorError(
                f"{self.key}: the metadata does not match its schema at {where}: "
                f"{first.validator} {first.validator_value!r}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))

    def run(self) -> StoredMetadata:
        document = self.document()
        self.validate(document)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        if os.path.isdir(self.path):
            raise AtomicReactorError(f"{self.key}: {self.path} is a directory")
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_text_atomic(self.path, text, mode=0o644)
        except OSError as exc:
            raise AtomicReactorError(
                f"{self.key}: cannot write {self.path}: {exc.strerror or exc}") from None
        size = len(text.encode("utf-8"))
        self.log.info("metadata (%s build) written to %s", document["status"], self.path)
        return StoredMetadata(path=self.path, size=size, status=str(document["status"]))


def _nvra(package: Mapping[str, Any]) -> str:
    name = str(package.get("name"))
    version = package.get("version")
    release = package.get("release")
    arch = package.get("arch")
    text = name
    if version:
        text += f"-{version}"
    if release:
        text += f"-{release}"
    if arch:
        text += f".{arch}"
    return text
