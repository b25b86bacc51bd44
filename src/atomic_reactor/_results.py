"""Typed build results and their JSON form."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsIndex, overload

from atomic_reactor import errors
from atomic_reactor._reference import ImageName
from atomic_reactor._secrets import redact_data

__all__ = ["AttachedArtifact", "BuildResults", "BuildResultsEncoder", "BuildResultsJSONDecoder",
           "ExportedImage", "ExportedImages", "PlatformResult", "PushedImage", "PushedList",
           "jsonable", "legacy_jsonable"]

RESULTS_VERSION = 1


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (plugin results can be anything)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, ImageName):
        return str(value)
    if isinstance(value, errors.AtomicReactorError):
        return {"error": value.to_dict()}
    if isinstance(value, BaseException):
        return {"error": {"type": type(value).__name__, "message": str(value)}}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.repr}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def legacy_jsonable(value: Any) -> Any:
    """``value`` in the shape atomic-reactor 1.6 gave it, for 1.6 consumers of the
    results JSON: a result object with a ``to_1_6()`` method becomes what that
    returns (``tag_from_config``: the list of tags); everything else as :func:`jsonable`.
    """
    to_1_6 = getattr(value, "to_1_6", None)
    if callable(to_1_6) and not isinstance(value, type):
        return jsonable(to_1_6())
    if isinstance(value, Mapping):
        return {str(k): legacy_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [legacy_jsonable(v) for v in value]
    return jsonable(value)


@dataclass(frozen=True)
class PushedImage:
    """One reference pushed to one registry."""

    registry: str
    image: str
    digest: str | None
    size: int | None = None
    attempts: int = 1

    @property
    def tag(self) -> str | None:
        return ImageName.parse(self.image).tag

    def to_1_6(self) -> str:
        """1.6's ``tag_and_push`` result listed the pushed names."""
        return self.image


@dataclass(frozen=True)
class ExportedImage:
    """An image written to a file (``docker save`` tarball, squashed, compressed).

    Also readable as the dict 1.6 kept in ``exported_image_sequence``:
    ``entry["path"]``, ``entry.get("md5sum")``, ``dict(entry)``.
    """

    path: str
    size: int
    sha256sum: str
    md5sum: str | None = None
    type: str = "docker-archive"
    compression: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportedImage:
        """From a 1.6-style dict (``{"path", "size", "md5sum", "sha256sum"}``); size and
        sha256sum are read from the file when the dict leaves them out."""
        if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
            raise errors.AtomicReactorError(
                "an exported image must be an ExportedImage or a dict with a 'path'")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        path = values["path"]
        if values.get("size") is None:
            values["size"] = os.path.getsize(path) if os.path.isfile(path) else 0
        if not values.get("sha256sum"):
            values["sha256sum"] = _sha256(path) if os.path.isfile(path) else ""
        return cls(**values)

    # -- 1.6: read like a dict ------------------------------------------------------
    def _as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __getitem__(self, key: str) -> Any:
        return self._as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._as_dict().get(key, default)

    def keys(self) -> Iterable[str]:
        return self._as_dict().keys()

    def __contains__(self, key: object) -> bool:
        return key in self._as_dict()


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ExportedImages(list[ExportedImage]):
    """``workflow.exported_image_sequence``: a list of :class:`ExportedImage` that also
    takes the dicts 1.6 plugins append (turned into :class:`ExportedImage`)."""

    def __init__(self, items: Iterable[ExportedImage | Mapping[str, Any]] = ()) -> None:
        super().__init__(_exported(item) for item in items)

    def append(self, item: ExportedImage | Mapping[str, Any]) -> None:
        super().append(_exported(item))

    def insert(self, index: SupportsIndex,
               item: ExportedImage | Mapping[str, Any]) -> None:
        super().insert(index, _exported(item))

    def extend(self, items: Iterable[ExportedImage | Mapping[str, Any]]) -> None:
        super().extend(_exported(item) for item in items)

    def __iadd__(self, items: Iterable[ExportedImage | Mapping[str, Any]]  # type: ignore[override,misc]
                 ) -> ExportedImages:
        self.extend(items)
        return self

    @overload
    def __setitem__(self, index: SupportsIndex, item: ExportedImage | Mapping[str, Any]
                    ) -> None: ...

    @overload
    def __setitem__(self, index: slice,
                    item: Iterable[ExportedImage | Mapping[str, Any]]) -> None: ...

    def __setitem__(self, index: Any, item: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [_exported(i) for i in item])
        else:
            super().__setitem__(index, _exported(item))

    def __iter__(self) -> Iterator[ExportedImage]:
        return super().__iter__()


def _exported(item: ExportedImage | Mapping[str, Any]) -> ExportedImage:
    return item if isinstance(item, ExportedImage) else ExportedImage.from_dict(item)


@dataclass(frozen=True)
class AttachedArtifact:
    """An OCI artifact (SBOM, provenance) pushed to a registry with the image as subject.

    ``kind`` is ``sbom`` or ``provenance``; ``digest`` the artifact manifest's digest in
    ``repository`` of ``registry``; ``subject`` the image manifest's digest; ``via``
    how clients find it: ``referrers-api`` (the registry indexes it) or ``tag-schema``
    (the ``sha256-<hex>`` tag holding an index of the referrers, also updated).
    """

    kind: str
    registry: str
    repository: str
    digest: str
    subject: str
    artifact_type: str
    size: int
    via: str
    document_digest: str | None = None


@dataclass(frozen=True)
class PushedList:
    """A manifest list (or OCI index) stored in one registry under ``tags``."""

    registry: str
    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...] = ()
    #: platform (``linux/arm64``) -> the manifest digest the list names for it
    platforms: dict[str, str] = field(default_factory=dict)

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(f"{self.registry}/{self.repository}:{tag}" for tag in self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "repository": self.repository,
                "digest": self.digest, "media_type": self.media_type, "tags": list(self.tags),
                "references": list(self.references), "platforms": dict(self.platforms)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PushedList:
        return cls(registry=str(data["registry"]), repository=str(data["repository"]),
                   digest=str(data["digest"]), media_type=str(data.get("media_type", "")),
                   tags=tuple(data.get("tags") or ()),
                   platforms=dict(data.get("platforms") or {}))


@dataclass(frozen=True)
class PlatformResult:
    """One platform's part of a multi-platform build."""

    platform: str
    image_id: str | None = None
    #: the architecture the engine reports for the built image
    architecture: str | None = None
    base_image_id: str | None = None
    base_image_digest: str | None = None
    #: this platform's image pushed by digest (its per-platform tag), per registry
    pushed: tuple[PushedImage, ...] = ()
    #: the per-platform plugins' results, by phase and plugin key
    plugin_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    exported_images: tuple[ExportedImage, ...] = ()
    fail_reason: str | None = None
    build_duration: float | None = None

    @property
    def digests(self) -> dict[str, str]:
        """``{registry: manifest digest}`` of this platform's image."""
        return {p.registry: p.digest for p in self.pushed if p.digest}

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        data["digests"] = self.digests
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlatformResult:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["pushed"] = tuple(PushedImage(**p) for p in values.get("pushed") or ())
        values["exported_images"] = tuple(
            ExportedImage(**e) for e in values.get("exported_images") or ())
        return cls(**values)


def _error_from_dict(data: Mapping[str, Any] | None) -> errors.AtomicReactorError | None:
    if not data:
        return None
    kind = getattr(errors, str(data.get("type", "")), None)
    message = str(data.get("message", "build failed"))
    if isinstance(kind, type) and issubclass(kind, errors.AtomicReactorError):
        if issubclass(kind, errors.PluginFailed):
            cause_kind = getattr(errors, str(data.get("cause", "")), None)
            cause = None
            if isinstance(cause_kind, type) and issubclass(cause_kind, errors.AtomicReactorError) \
                    and cause_kind not in (errors.PluginFailed, errors.BuildCancelled):
                cause = cause_kind.__new__(cause_kind)
                errors.AtomicReactorError.__init__(cause, message)
            return errors.PluginFailed(message, plugin=str(data.get("plugin", "")), cause=cause)
        if issubclass(kind, errors.BuildCancelled):
            return errors.BuildCancelled(int(data.get("signal", 15)))
        if issubclass(kind, errors.AutoRebuildCanceled) and "plugin" in data:
            return errors.AutoRebuildCanceled(str(data["plugin"]), str(data.get("reason", "")))
        error = kind.__new__(kind)
        errors.AtomicReactorError.__init__(error, message)
        return error
    return errors.AtomicReactorError(message)


@dataclass(frozen=True)
class BuildResults:
    """What a build produced, succeeded or not.

    The first fields are atomic-reactor 1.6's; ``digests`` maps each registry to
    ``{pushed reference: manifest digest}``.
    """

    build_logs: tuple[str, ...] = ()
    dockerfile: str | None = None
    built_img_inspect: dict[str, Any] | None = None
    built_img_info: dict[str, Any] | None = None
    base_img_inspect: dict[str, Any] | None = None
    base_img_info: dict[str, Any] | None = None
    base_plugins_output: dict[str, Any] = field(default_factory=dict)
    built_img_plugins_output: dict[str, Any] = field(default_factory=dict)
    container_id: str | None = None
    return_code: int | None = None
    # -- beyond 1.6 --
    image: str | None = None
    image_id: str | None = None
    base_image: str | None = None
    base_image_id: str | None = None
    #: manifest digest of the base image (as pulled; else from its RepoDigests)
    base_image_digest: str | None = None
    pushed: tuple[PushedImage, ...] = ()
    tags: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    plugin_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins_timestamps: dict[str, str] = field(default_factory=dict)
    plugins_durations: dict[str, float] = field(default_factory=dict)
    plugins_errors: dict[str, str] = field(default_factory=dict)
    exported_images: tuple[ExportedImage, ...] = ()
    #: SOURCE_DATE_EPOCH of a reproducible build (None: not reproducible)
    source_date_epoch: int | None = None
    #: SBOM and provenance artifacts pushed with the image as their subject
    attached: tuple[AttachedArtifact, ...] = ()
    #: ``--check-reproducible``: how the two builds' images compare
    reproducibility: dict[str, Any] | None = None
    fail_reason: str | None = None
    error: dict[str, Any] | None = None
    log_file: str | None = None
    duration: float | None = None
    #: the container engine that built the image ("docker", "buildah")
    engine: str | None = None
    #: build container methods: the committed build container pushed for
    #: ``push_buildroot_to`` (``image``, ``image_id``, ``digest`` or ``error``)
    buildroot: dict[str, Any] | None = None
    #: multi-platform builds: each platform's image, pushes and plugin results, in the
    #: order requested (empty for a build without ``platforms``)
    platforms: tuple[PlatformResult, ...] = ()
    #: multi-platform builds: the manifest list pushed to each registry
    manifest_lists: tuple[PushedList, ...] = ()
    _exception: errors.AtomicReactorError | None = field(default=None, repr=False, compare=False)

    @property
    def list_digests(self) -> dict[str, dict[str, str]]:
        """Multi-platform builds: ``{registry: {reference: manifest list digest}}``."""
        out: dict[str, dict[str, str]] = {}
        for pushed in self.manifest_lists:
            for reference in pushed.references:
                out.setdefault(pushed.registry, {})[reference] = pushed.digest
        return out

    @property
    def digests(self) -> dict[str, dict[str, str]]:
        """``{registry: {reference: digest}}`` of every push that reported a digest (for a
        multi-platform build: the list's digest under each of its tags)."""
        out: dict[str, dict[str, str]] = {}
        for pushed in self.pushed:
            if pushed.digest:
                out.setdefault(pushed.registry, {})[pushed.image] = pushed.digest
        return out

    def is_failed(self) -> bool:
        """Did anything that matters fail (build, a required plugin, a push)?"""
        if self.error is not None or self.fail_reason is not None:
            return True
        return self.return_code is not None and self.return_code != 0

    @property
    def exception(self) -> errors.AtomicReactorError | None:
        if self._exception is not None:
            return self._exception
        if self.error is not None:
            return _error_from_dict(self.error)
        if self.is_failed():
            return errors.BuildFailed(self.fail_reason or
                                      f"build container exited with {self.return_code}")
        return None

    def raise_for_status(self) -> BuildResults:
        """Raise the error that failed the build; return ``self`` when it succeeded."""
        exc = self.exception
        if exc is not None:
            raise exc
        return self

    @property
    def exit_code(self) -> int:
        exc = self.exception
        return 0 if exc is None else exc.exit_code

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": RESULTS_VERSION}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            data[f.name] = jsonable(getattr(self, f.name))
        data["digests"] = self.digests
        if self.manifest_lists:
            data["list_digests"] = self.list_digests
        data["failed"] = self.is_failed()
        return redact_data(data)  # type: ignore[no-any-return]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildResults:
        known = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        values = {k: v for k, v in data.items() if k in known}
        values["build_logs"] = tuple(values.get("build_logs") or ())
        values["tags"] = tuple(values.get("tags") or ())
        values["pushed"] = tuple(PushedImage(**p) for p in values.get("pushed") or ())
        values["exported_images"] = tuple(
            ExportedImage(**e) for e in values.get("exported_images") or ())
        values["attached"] = tuple(AttachedArtifact(**a) for a in values.get("attached") or ())
        values["platforms"] = tuple(PlatformResult.from_dict(p)
                                    for p in values.get("platforms") or ())
        values["manifest_lists"] = tuple(PushedList.from_dict(m)
                                         for m in values.get("manifest_lists") or ())
        return cls(**values)

    def replace(self, **changes: Any) -> BuildResults:
        return dataclasses.replace(self, **changes)


#: the fields 1.6's ``BuildResults`` had; 1.6 code makes ``BuildResults()`` and assigns
#: them one by one, so these (and only these) can be assigned
LEGACY_FIELDS = ("build_logs", "dockerfile", "built_img_inspect", "built_img_info",
                 "base_img_inspect", "base_img_info", "base_plugins_output",
                 "built_img_plugins_output", "container_id", "return_code")
_frozen_setattr = BuildResults.__setattr__


def _legacy_setattr(self: BuildResults, name: str, value: Any) -> None:
    if name not in LEGACY_FIELDS:
        _frozen_setattr(self, name, value)  # raises FrozenInstanceError
        return
    if name == "build_logs":
        value = tuple(value or ())
    elif name in ("base_plugins_output", "built_img_plugins_output") and value is None:
        value = {}
    object.__setattr__(self, name, value)


BuildResults.__setattr__ = _legacy_setattr  # type: ignore[method-assign,assignment]


class BuildResultsEncoder(json.JSONEncoder):
    """JSON encoder for :class:`BuildResults` (``json.dumps(results, cls=BuildResultsEncoder)``),
    as in 1.6; the output is :meth:`BuildResults.to_dict`."""

    def default(self, o: Any) -> Any:
        if isinstance(o, BuildResults):
            return o.to_dict()
        return super().default(o)


class BuildResultsJSONDecoder(json.JSONDecoder):
    """JSON decoder giving a :class:`BuildResults`
    (``json.loads(text, cls=BuildResultsJSONDecoder)``), as in 1.6."""

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        data = super().decode(s, *args, **kwargs)
        if not isinstance(data, Mapping):
            raise errors.BuildJsonError("build results JSON must be an object")
        return BuildResults.from_dict(data)
