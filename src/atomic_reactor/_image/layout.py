"""Image layouts: docker-archive and OCI image layout, read and written; manifests.

* :class:`ImageArchive` reads an unpacked image archive holding one image, all
  three layouts: ``docker save`` with ``<id>/layer.tar`` (Docker before 25),
  ``docker save`` with ``blobs/sha256/<hex>`` (Docker 25 on) and a plain OCI
  image layout (``index.json`` only, e.g. ``buildah push oci-archive:``), whose
  layers may be compressed (their media types say how).
* :class:`DockerArchiveWriter` writes a ``docker save`` archive as one stream
  (what ``docker load`` reads), layers copied from files or produced on the fly.
* :func:`docker_archive_stream` yields a docker-archive (buildah's layout: config
  first) of a config and layers whose bytes are read as the stream goes (an
  engine's storage read directly).
* :func:`write_oci_layout` writes an OCI image layout directory.
* :func:`image_manifest` makes a Docker schema 2 or OCI image manifest (an OCI one
  may carry a ``subject`` and an ``artifactType``), as canonical JSON bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from atomic_reactor._image.tarstream import (
    END_OF_ARCHIVE,
    ArchiveError,
    copy_file,
    dir_member,
    file_member,
    normalize_member_name,
    padding,
)

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER_GZIP",
    "DOCKER_LAYER_TAR",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_EMPTY_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_TAR",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "Descriptor",
    "DockerArchiveWriter",
    "ImageArchive",
    "ManifestFormat",
    "StreamedLayer",
    "docker_archive_stream",
    "image_manifest",
    "layer_media_type",
    "write_oci_layout",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

ManifestFormat = Literal["docker", "oci"]

_LAYER_TYPES: dict[tuple[str, str], str] = {
    ("docker", "gzip"): DOCKER_LAYER_GZIP,
    ("docker", "none"): DOCKER_LAYER_TAR,
    ("oci", "gzip"): OCI_LAYER_GZIP,
    ("oci", "none"): OCI_LAYER_TAR,
    ("oci", "zstd"): OCI_LAYER_ZSTD,
}

#: a layer media type -> its compression ("gzip", "zstd" or None)
_COMPRESSION_OF: dict[str, str | None] = {
    DOCKER_LAYER_GZIP: "gzip", DOCKER_LAYER_TAR: None, OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_TAR: None, OCI_LAYER_ZSTD: "zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
}


def layer_media_type(manifest_format: ManifestFormat, compression: str) -> str:
    """The layer media type for ``compression`` (gzip, zstd, none) in a manifest format.

    zstd layers exist only in OCI manifests (:class:`ValueError` for Docker's).
    """
    try:
        return _LAYER_TYPES[(manifest_format, compression)]
    except KeyError:
        raise ValueError(f"{compression} layers need an OCI manifest"
                         if compression == "zstd" else
                         f"unknown compression {compression!r} or manifest format "
                         f"{manifest_format!r}") from None


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest (``sha256:<hex>``) and size."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = field(default=None, compare=False)
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                                "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


def image_manifest(manifest_format: ManifestFormat, config: Descriptor,
                   layers: Sequence[Descriptor], *, subject: Descriptor | None = None,
                   artifact_type: str | None = None,
                   annotations: dict[str, str] | None = None) -> bytes:
    """The image manifest's bytes (compact JSON, keys in a fixed order).

    ``subject``, ``artifact_type`` and ``annotations`` exist in OCI manifests only.
    """
    if manifest_format == "docker":
        if subject is not None or artifact_type is not None or annotations:
            raise ValueError("subject, artifactType and annotations need an OCI manifest")
        media_type = DOCKER_MANIFEST
    else:
        media_type = OCI_MANIFEST
    data: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        data["artifactType"] = artifact_type
    data["config"] = config.to_json()
    data["layers"] = [layer.to_json() for layer in layers]
    if subject is not None:
        data["subject"] = subject.to_json()
    if annotations:
        data["annotations"] = dict(annotations)
    return json.dumps(data, separators=(",", ":")).encode()


# -- reading ----------------------------------------------------------------------------------


def _load_json(path: str, what: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        raise ArchiveError(f"image archive has no {what}") from None
    except ValueError as exc:
        raise ArchiveError(f"image archive: {what} is not JSON: {exc}") from None


@dataclass(frozen=True)
class ImageArchive:
    """An unpacked image archive holding one image.

    ``layers`` are the layer paths as the archive names them (bottom first),
    ``layer_files`` the files on disk (links resolved), ``diff_ids`` the config's.
    ``layer_media_types`` says how each layer file is compressed (a docker save's
    layers are plain tars); ``layout`` is ``"docker"`` or ``"oci"``.
    """

    root: str
    config_name: str
    config_bytes: bytes
    config: dict[str, Any]
    layers: tuple[str, ...]
    layer_files: tuple[str, ...]
    repo_tags: tuple[str, ...]
    layer_media_types: tuple[str, ...] = ()
    layout: str = "docker"

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids") or [])

    def layer_compression(self, index: int) -> str | None:
        """How layer ``index`` is compressed according to the archive (None: plain tar)."""
        if not self.layer_media_types:
            return None
        return _COMPRESSION_OF.get(self.layer_media_types[index])

    @classmethod
    def open(cls, root: str) -> ImageArchive:
        real_root = os.path.realpath(root)

        def inside(name: str, what: str) -> str:
            clean = normalize_member_name(name, what=what)
            path = os.path.realpath(os.path.join(real_root, clean))
            if not path.startswith(real_root + os.sep) or not os.path.isfile(path):
                raise ArchiveError(f"image archive: {what} {name!r} is not a file in the archive")
            return path

        if not os.path.exists(os.path.join(real_root, "manifest.json")) \
                and os.path.exists(os.path.join(real_root, "index.json")):
            return cls._open_oci(real_root, inside)
        manifest = _load_json(os.path.join(real_root, "manifest.json"), "manifest.json")
        if not isinstance(manifest, list) or len(manifest) != 1 \
                or not isinstance(manifest[0], dict):
            raise ArchiveError("image archive: manifest.json must describe exactly one image")
        entry = manifest[0]
        config_name = entry.get("Config")
        layers = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layers, list) \
                or not all(isinstance(layer, str) for layer in layers):
            raise ArchiveError("image archive: manifest.json lacks Config or Layers")
        config_bytes, config = cls._config(inside(config_name, "config"))
        layer_files = tuple(inside(layer, "layer") for layer in layers)
        archive = cls(root=real_root, config_name=normalize_member_name(config_name),
                      config_bytes=config_bytes, config=config,
                      layers=tuple(normalize_member_name(layer) for layer in layers),
                      layer_files=layer_files,
                      repo_tags=tuple(str(tag) for tag in entry.get("RepoTags") or ()))
        archive._check_counts()
        return archive

    @staticmethod
    def _config(path: str) -> tuple[bytes, dict[str, Any]]:
        with open(path, "rb") as handle:
            config_bytes = handle.read()
        try:
            config = json.loads(config_bytes)
        except ValueError as exc:
            raise ArchiveError(f"image archive: the config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise ArchiveError("image archive: the config is not a JSON object")
        return config_bytes, config

    def _check_counts(self) -> None:
        if len(self.diff_ids) != len(self.layer_files):
            raise ArchiveError(f"image archive: the config lists {len(self.diff_ids)} "
                               f"layers, the manifest {len(self.layer_files)}")

    @classmethod
    def _open_oci(cls, root: str, inside: Callable[[str, str], str]) -> ImageArchive:
        def blob(digest: Any, what: str) -> str:
            if not isinstance(digest, str) or ":" not in digest:
                raise ArchiveError(f"image archive: {what} has no valid digest")
            algorithm, _, hexdigest = digest.partition(":")
            return inside(f"blobs/{algorithm}/{hexdigest}", what)

        index = _load_json(os.path.join(root, "index.json"), "index.json")
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list) or len(manifests) != 1 \
                or not isinstance(manifests[0], dict):
            raise ArchiveError("image archive: index.json must describe exactly one image")
        entry = manifests[0]
        manifest = _load_json(blob(entry.get("digest"), "manifest"), "the manifest")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
                or not isinstance(manifest.get("layers"), list):
            raise ArchiveError("image archive: the manifest lacks config or layers")
        config_file = blob(manifest["config"].get("digest"), "config")
        config_bytes, config = cls._config(config_file)
        layer_files: list[str] = []
        names: list[str] = []
        media_types: list[str] = []
        for layer in manifest["layers"]:
            if not isinstance(layer, dict):
                raise ArchiveError("image archive: a layer descriptor is not an object")
            path = blob(layer.get("digest"), "layer")
            layer_files.append(path)
            names.append(os.path.relpath(path, root))
            media_types.append(str(layer.get("mediaType") or OCI_LAYER_TAR))
        ref = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        archive = cls(root=root, config_name=os.path.relpath(config_file, root),
                      config_bytes=config_bytes, config=config, layers=tuple(names),
                      layer_files=tuple(layer_files),
                      repo_tags=(str(ref),) if ref else (),
                      layer_media_types=tuple(media_types), layout="oci")
        archive._check_counts()
        return archive


# -- writing -----------------------------------------------------------------------------------


class DockerArchiveWriter:
    """Writes a ``docker save`` archive (legacy layout) as one stream to ``write``.

    Add the layers bottom first (:meth:`add_layer_file`, or :meth:`begin_layer`,
    the layer's bytes through ``write``, then :meth:`end_layer`), then
    :meth:`finish` with the config.
    """

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._dirs: set[str] = set()
        self._written: dict[str, str] = {}
        self._open: tuple[str, int] | None = None
        self.layers: list[str] = []

    def _directory(self, name: str) -> None:
        directory = os.path.dirname(name)
        if directory and directory not in self._dirs:
            self._write(dir_member(directory))
            self._dirs.add(directory)

    def add_layer_file(self, name: str, path: str) -> None:
        """Copy the layer file at ``path`` in as ``name`` (a file added twice is named once)."""
        if path in self._written:
            self.layers.append(self._written[path])
            return
        self._directory(name)
        size = os.path.getsize(path)
        self._write(file_member(name, size))
        copy_file(path, self._write)
        self._write(padding(size))
        self._written[path] = name
        self.layers.append(name)

    def begin_layer(self, name: str, size: int) -> None:
        """Announce layer ``name`` of ``size`` bytes; its bytes follow through ``write``."""
        self._directory(name)
        self._write(file_member(name, size))
        self._open = (name, size)

    def end_layer(self) -> None:
        if self._open is None:
            raise ArchiveError("image archive: no layer was begun")
        name, size = self._open
        self._write(padding(size))
        self.layers.append(name)
        self._open = None

    def finish(self, config_bytes: bytes, repo_tags: Sequence[str]) -> str:
        """Write the config and ``manifest.json``, end the archive; return the image id."""
        image_hex = hashlib.sha256(config_bytes).hexdigest()
        config_name = f"{image_hex}.json"
        manifest = [{"Config": config_name, "RepoTags": list(repo_tags),
                     "Layers": list(self.layers)}]
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        for member, payload in ((config_name, config_bytes), ("manifest.json", manifest_bytes)):
            self._write(file_member(member, len(payload)))
            self._write(payload)
            self._write(padding(len(payload)))
        self._write(END_OF_ARCHIVE)
        return f"sha256:{image_hex}"


@dataclass(frozen=True)
class StreamedLayer:
    """A layer of :func:`docker_archive_stream`: its diff id, its tar's length, and what
    gives its bytes (called when the stream reaches it)."""

    diff_id: str
    size: int
    chunks: Callable[[], Iterator[bytes]]


def docker_archive_stream(config: bytes, layers: Sequence[StreamedLayer],
                          repo_tags: Sequence[str] = ()) -> Iterator[bytes]:
    """A docker-archive as buildah writes one: ``<config digest>.json`` first (a push
    can upload it while the layers come), one ``<diff id>.tar`` per layer (a layer the
    image has twice is in it once) and ``manifest.json``. The image id is the config's
    sha256."""
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    yield file_member(config_name, len(config)) + config + padding(len(config))
    names: list[str] = []
    for layer in layers:
        name = f"{layer.diff_id.removeprefix('sha256:')}.tar"
        if name not in names:
            yield file_member(name, layer.size)
            yield from layer.chunks()
            yield padding(layer.size)
        names.append(name)
    manifest = json.dumps([{"Config": config_name, "RepoTags": list(repo_tags),
                            "Layers": names}]).encode()
    yield file_member("manifest.json", len(manifest)) + manifest + padding(len(manifest)) \
        + END_OF_ARCHIVE


def write_oci_layout(dest: str, manifest_bytes: bytes, blobs: dict[str, str | bytes], *,
                     ref_name: str | None = None) -> Descriptor:
    """Write an OCI image layout in ``dest`` (created): the manifest and its blobs.

    ``blobs`` maps each digest the manifest names to a file path or the bytes.
    Returns the manifest's descriptor (also the only entry of ``index.json``).
    """
    os.makedirs(os.path.join(dest, "blobs", "sha256"), exist_ok=True)

    def put(digest: str, data: str | bytes) -> None:
        algorithm, _, hexdigest = digest.partition(":")
        target = os.path.join(dest, "blobs", algorithm, hexdigest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if isinstance(data, bytes):
            with open(target, "wb") as handle:
                handle.write(data)
        else:
            shutil.copyfile(data, target)

    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    for digest, data in blobs.items():
        put(digest, data)
    put(manifest_digest, manifest_bytes)
    media_type = json.loads(manifest_bytes).get("mediaType") or OCI_MANIFEST
    descriptor = Descriptor(media_type, manifest_digest, len(manifest_bytes),
                            annotations={"org.opencontainers.image.ref.name": ref_name}
                            if ref_name else None)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor.to_json()]}
    with open(os.path.join(dest, "index.json"), "wb") as handle:
        handle.write(json.dumps(index, separators=(",", ":")).encode())
    with open(os.path.join(dest, "oci-layout"), "wb") as handle:
        handle.write(b'{"imageLayoutVersion":"1.0.0"}')
    return descriptor
