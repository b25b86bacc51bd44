"""An image in dockerd's storage (overlay2) as a docker-archive stream, read straight
from its files: no ``docker save``, which writes a full copy of every layer into
dockerd's temporary directory before it sends the first byte.

dockerd keeps (``<root>`` its data root; the image's inspect names its top layer's
directory, ``<root>/overlay2/<cache id>/diff``):

- the image's config at ``<root>/image/overlay2/imagedb/content/sha256/<id>``, the
  bytes whose sha256 is the image id;
- per layer, under its *chain id* (the first layer's diff id; then the sha256 of
  ``"<parent's chain id> <diff id>"``), ``<root>/image/overlay2/layerdb/sha256/<chain
  hex>/``: ``diff`` (the diff id), ``cache-id`` (the directory of its files,
  ``<root>/overlay2/<cache id>/diff``) and ``tar-split.json.gz``, from which
  :mod:`atomic_reactor._image.tarsplit` puts the layer's exact tar back together; the
  stream checks each against its diff id as it goes.

All that is checked before the first byte (:class:`StorageUnsupported` otherwise: the
engine then asks dockerd for ``docker save``). dockerd takes no lock a reader could
share, so an image removed while it is read ends the stream with an ``EngineError``
naming what went missing; its bytes so far never pass for the layer (the diff id).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from atomic_reactor._engine.storage import StorageUnsupported
from atomic_reactor._image import tarsplit
from atomic_reactor._image.layout import StreamedLayer, docker_archive_stream
from atomic_reactor.errors import EngineError

logger = logging.getLogger(__name__)

__all__ = ["DockerStorage", "StoredLayer", "chain_ids"]

_LABEL = "docker storage"
_DRIVER = "overlay2"


@dataclass(frozen=True)
class StoredLayer:
    """One layer of an image: its diff id, chain id, tar-split file, files, tar length."""

    diff_id: str
    chain_id: str
    tar_split: str
    diff_dir: str
    size: int


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain id of each layer of ``diff_ids`` (base first), as dockerd names them."""
    chain: list[str] = []
    for diff_id in diff_ids:
        chain.append(diff_id if not chain else
                     "sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise StorageUnsupported(f"{what}: {exc.strerror or type(exc).__name__} "
                                 f"({path})") from None


def _hex(digest: str, what: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or value.strip("0123456789abcdef"):
        raise StorageUnsupported(f"{what} {digest!r} is not a sha256 digest")
    return value


class DockerStorage:
    """The overlay2 storage of the dockerd whose data root is ``root``."""

    def __init__(self, root: str, driver: str) -> None:
        if driver != _DRIVER:
            raise StorageUnsupported(f"storage driver {driver!r}")
        self.root = root
        self._images = os.path.join(root, "image", _DRIVER, "imagedb", "content", "sha256")
        self._layers = os.path.join(root, "image", _DRIVER, "layerdb", "sha256")
        if not (os.access(self._images, os.R_OK | os.X_OK)
                and os.access(self._layers, os.R_OK | os.X_OK)):
            raise StorageUnsupported(f"{root} is not a readable {_DRIVER} storage here")

    @classmethod
    def of_inspect(cls, inspect: dict[str, Any]) -> DockerStorage:
        """The storage holding the image dockerd's ``inspect`` describes: its data root is
        where the top layer's directory (``GraphDriver.Data.UpperDir``) lies."""
        driver = inspect.get("GraphDriver") or {}
        upper = str((driver.get("Data") or {}).get("UpperDir") or "")
        parts = upper.rstrip("/").split("/")
        if not upper.startswith("/") or len(parts) < 4 or parts[-1] != "diff" \
                or parts[-3] != _DRIVER:
            raise StorageUnsupported(f"no {_DRIVER} layer directory in the image's inspect")
        return cls("/".join(parts[:-3]) or "/", str(driver.get("Name") or ""))

    def layers(self, image_id: str) -> tuple[bytes, tuple[StoredLayer, ...]]:
        """The config of ``image_id`` (``sha256:<hex>``) and its layers, base first, each
        checked to be there; :class:`StorageUnsupported` when any is not."""
        image_hex = _hex(image_id, "image id")
        config = _read(os.path.join(self._images, image_hex), f"image {image_hex[:12]}")
        if hashlib.sha256(config).hexdigest() != image_hex:
            raise StorageUnsupported(f"image {image_hex[:12]}: its config is not its id")
        try:
            diff_ids = [str(one) for one in json.loads(config)["rootfs"]["diff_ids"]]
        except (ValueError, KeyError, TypeError):
            raise StorageUnsupported(f"image {image_hex[:12]}: config without diff ids") \
                from None
        found: list[StoredLayer] = []
        for diff_id, chain_id in zip(diff_ids, chain_ids(diff_ids), strict=True):
            layer_dir = os.path.join(self._layers, _hex(chain_id, "chain id"))
            what = f"layer {chain_id.removeprefix('sha256:')[:12]}"
            recorded = _read(os.path.join(layer_dir, "diff"), what).decode().strip()
            if recorded != diff_id:
                raise StorageUnsupported(f"{what}: its diff is {recorded}, not {diff_id}")
            cache_id = _read(os.path.join(layer_dir, "cache-id"), what).decode().strip()
            if not cache_id or "/" in cache_id or cache_id in (".", ".."):
                raise StorageUnsupported(f"{what}: cache id {cache_id!r}")
            diff_dir = os.path.join(self.root, _DRIVER, cache_id, "diff")
            tar_split = os.path.join(layer_dir, "tar-split.json.gz")
            if not os.path.isdir(diff_dir) or not os.path.isfile(tar_split):
                raise StorageUnsupported(f"{what}: no files or no tar-split")
            try:
                size = tarsplit.tar_size(tar_split, label=_LABEL)
            except (OSError, EngineError) as exc:
                raise StorageUnsupported(f"{what}: {exc}") from None
            found.append(StoredLayer(diff_id, chain_id, tar_split, diff_dir, size))
        return config, tuple(found)

    def docker_archive(self, image_id: str, repo_tags: Sequence[str] = ()) -> Iterator[bytes]:
        """``image_id`` as a docker-archive stream (the layout of
        :func:`~atomic_reactor._image.layout.docker_archive_stream`). Everything is
        checked now (:class:`StorageUnsupported`); what fails once the stream has begun
        is an ``EngineError``."""
        config, layers = self.layers(image_id)

        def chunks(layer: StoredLayer) -> Iterator[bytes]:
            return tarsplit.verified(
                tarsplit.pieces(tarsplit.layer_tar(layer.tar_split, layer.diff_dir, label=_LABEL)),
                layer.size, layer.diff_id, layer=layer.chain_id.removeprefix("sha256:")[:12],
                label=_LABEL)

        def translated() -> Iterator[bytes]:
            try:
                yield from docker_archive_stream(
                    config, [StreamedLayer(layer.diff_id, layer.size,
                                           functools.partial(chunks, layer))
                             for layer in layers], repo_tags)
            except OSError as exc:
                raise EngineError(f"{_LABEL}: reading image {image_id[7:19]}: {exc}") \
                    from None
            logger.debug("image %s: %d layers read from dockerd's storage", image_id[7:19],
                         len(layers))

        return translated()

