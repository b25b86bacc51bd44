"""An image in buildah's storage (containers/storage) as a ``docker save`` stream, read
straight from the storage's files: no ``buildah push docker-archive:`` (which writes a
full copy of every layer to disk first).

containers/storage keeps, per layer, a *tar-split* file
(``<driver>-layers/<layer id>.tar-split.gz``), from which
:mod:`atomic_reactor._image.tarsplit` puts the layer's exact uncompressed tar back
together with the files of its diff directory; the stream checks it against the diff
id while it goes and fails (an ``EngineError``) if a layer does not match. The
image's config is the big-data item keyed by the image's digest
(``<driver>-images/<image id>/=<base64 key>``).

The storage's read locks (``<driver>-layers/layers.lock``, ``<driver>-images/
images.lock``: fcntl locks, which ``fcntl.lockf`` takes too) are held while reading, so
a concurrent ``buildah rmi`` waits instead of pulling the files away: both while the
image and its layer chain are read, the layers' lock alone while one layer's bytes are
streamed, none between two layers (as containers/storage holds them for one layer's
diff). A build beside a long push then commits between its layers, and an image
removed meanwhile ends the stream with an error naming the missing layer.

Only the overlay and vfs drivers, with options that do not move the files
(``overlay.mount_program``, ``overlay.mountopt``), are read here; anything else is
:class:`StorageUnsupported`, for which the engine falls back to buildah's archive.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from atomic_reactor._engine.storage import StorageUnsupported
from atomic_reactor._image import tarsplit
from atomic_reactor._image.layout import StreamedLayer, docker_archive_stream
from atomic_reactor.errors import EngineError, ImageNotFound

logger = logging.getLogger(__name__)

__all__ = ["ImageStorage", "StorageUnsupported", "StoredImage", "StoredLayer",
           "layer_tar"]

#: containers/storage's default graph root (as root)
DEFAULT_ROOT = "/var/lib/containers/storage"
_DRIVERS = ("overlay", "vfs")
#: storage options that leave the layers' files where this module reads them
_HARMLESS_OPTIONS = ("overlay.mount_program", "overlay.mountopt", "mount_program",
                     "mountopt", "overlay.ignore_chown_errors")
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredLayer:
    """One layer of an image: its storage id, diff id and uncompressed tar size."""

    id: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class StoredImage:
    """An image as the storage keeps it: id, names, config bytes, layers (base first)."""

    id: str
    names: tuple[str, ...]
    config: bytes
    layers: tuple[StoredLayer, ...]


# -- locks ---------------------------------------------------------------------------------

_held_lock = threading.Lock()
#: path -> (fd, count): fcntl locks belong to the process, and closing any descriptor of
#: the file drops them, so one descriptor per file is shared by every reader of this process
_held: dict[str, tuple[int, int]] = {}
#: path -> the lock a thread holds while it waits for that file's fcntl lock: the wait
#: happens outside ``_held_lock``, so another thread can still release what it holds
#: (a buildah writer waiting for that other file must not wait for us for ever)
_taking: dict[str, threading.Lock] = {}


def _acquire(path: str) -> None:
    with _held_lock:
        taking = _taking.setdefault(path, threading.Lock())
    with taking:
        with _held_lock:
            fd, count = _held.get(path, (-1, 0))
            if count:
                _held[path] = (fd, count + 1)
                return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageUnsupported(f"cannot open the storage's lock {path} "
                                     f"({exc.strerror or type(exc).__name__})") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise StorageUnsupported(f"cannot lock {path} "
                                         f"({exc.strerror or type(exc).__name__})") from None
            raise
        with _held_lock:
            _held[path] = (fd, 1)


def _release(path: str) -> None:
    with _held_lock:
        fd, count = _held[path]
        if count == 1:
            del _held[path]
            os.close(fd)  # drops the lock
        else:
            _held[path] = (fd, count - 1)


@contextlib.contextmanager
def _read_locked(paths: Sequence[str]) -> Iterator[None]:
    taken: list[str] = []
    try:
        for path in paths:
            _acquire(path)
            taken.append(path)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


# -- tar-split ------------------------------------------------------------------------

_LABEL = "buildah storage"


def layer_tar(tar_split: str, diff_dir: str) -> Iterator[bytes]:
    """The layer's uncompressed tar, put back together from its tar-split file
    ``tar_split`` and the files of its diff directory ``diff_dir``."""
    return tarsplit.layer_tar(tar_split, diff_dir, label=_LABEL)


def _configured_storage() -> tuple[str, str | None]:
    """The graph root and driver buildah uses when given none (its storage.conf)."""
    import tomllib

    if os.geteuid() != 0:
        raise StorageUnsupported("rootless storage (no graph root given)")
    path = os.environ.get("CONTAINERS_STORAGE_CONF") or "/etc/containers/storage.conf"
    try:
        with open(path, "rb") as handle:
            section = tomllib.load(handle).get("storage") or {}
    except FileNotFoundError:
        return DEFAULT_ROOT, None
    except (OSError, ValueError) as exc:
        raise StorageUnsupported(f"{path}: {exc}") from None
    options = section.get("options") or {}
    if options.get("additionalimagestores") or options.get("imagestore"):
        raise StorageUnsupported(f"{path}: additional image stores")
    driver = section.get("driver") or None
    return str(section.get("graphroot") or DEFAULT_ROOT), str(driver) if driver else None


# -- the storage -------------------------------------------------------------------------


class ImageStorage:
    """Images of one containers/storage graph root and driver, read from its files."""

    def __init__(self, root: str | None, driver: str | None,
                 options: Sequence[str] = ()) -> None:
        if root is None:
            root, configured = _configured_storage()
            driver = driver or configured
        self.root = root
        for option in options:
            key = option.partition("=")[0].strip()
            if key not in _HARMLESS_OPTIONS:
                raise StorageUnsupported(f"storage option {option!r}")
        if driver is None:
            found = [name for name in _DRIVERS
                     if os.path.isdir(os.path.join(self.root, f"{name}-layers"))]
            if len(found) != 1:
                raise StorageUnsupported(f"no single known driver in {self.root}")
            driver = found[0]
        if driver not in _DRIVERS:
            raise StorageUnsupported(f"storage driver {driver!r}")
        self.driver = driver
        self._layers = os.path.join(self.root, f"{driver}-layers")
        self._images = os.path.join(self.root, f"{driver}-images")
        self._locks = (os.path.join(self._layers, "layers.lock"),
                       os.path.join(self._images, "images.lock"))
        for path in self._locks:
            if not os.path.isfile(path):
                raise StorageUnsupported(f"no {path}")

    def diff_dir(self, layer_id: str) -> str:
        if self.driver == "overlay":
            return os.path.join(self.root, "overlay", layer_id, "diff")
        return os.path.join(self.root, "vfs", "dir", layer_id)

    def _tar_split(self, layer_id: str) -> str:
        return os.path.join(self._layers, f"{layer_id}.tar-split.gz")

    @staticmethod
    def _load(path: str) -> list[dict[str, Any]]:
        try:
            with open(path, "rb") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise StorageUnsupported(f"{path}: {exc}") from None
        if not isinstance(data, list):
            raise StorageUnsupported(f"{path} is not a list")
        return [entry for entry in data if isinstance(entry, dict)]

    def _big_data(self, image_id: str, key: str) -> bytes:
        simple = all(c == "." or c.isdigit() or "a" <= c <= "z" for c in key)
        name = key if simple else "=" + base64.b64encode(key.encode()).decode()
        try:
            with open(os.path.join(self._images, image_id, name), "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise StorageUnsupported(f"image {image_id[:12]}: {key}: {exc}") from None

    def _find(self, image: str) -> StoredImage:
        """``image`` (an id, its prefix, or a full name); call with the locks held."""
        wanted = image.removeprefix("sha256:")
        images = self._load(os.path.join(self._images, "images.json"))
        matches = [entry for entry in images if entry.get("id") == wanted]
        if not matches:
            matches = [entry for entry in images if image in (entry.get("names") or ())]
        if not matches and _HEX.fullmatch(wanted.ljust(64, "0")) and len(wanted) >= 12:
            matches = [entry for entry in images if str(entry.get("id", "")).startswith(wanted)]
        if len(matches) != 1:
            raise ImageNotFound(f"image {image} is not in buildah's storage {self.root}"
                                if not matches else f"image {image} is ambiguous")
        entry = matches[0]
        image_id = str(entry["id"])
        if f"sha256:{image_id}" not in (entry.get("big-data-names") or ()):
            raise StorageUnsupported(f"image {image_id[:12]}: no config keyed by its id")
        config = self._big_data(image_id, f"sha256:{image_id}")
        if "sha256:" + hashlib.sha256(config).hexdigest() != f"sha256:{image_id}":
            raise StorageUnsupported(f"image {image_id[:12]}: its config is not its id")
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise StorageUnsupported(f"image {image_id[:12]}: config without diff ids") from None
        layers = {str(layer.get("id")): layer
                  for layer in self._load(os.path.join(self._layers, "layers.json"))}
        chain: list[StoredLayer] = []
        current = entry.get("layer")
        while current:
            layer = layers.get(str(current))
            if layer is None:
                raise StorageUnsupported(f"image {image_id[:12]}: layer {current} is missing")
            if not layer.get("diff-digest") or layer.get("diff-size") is None:
                raise StorageUnsupported(f"layer {current}: no diff digest or size")
            if not os.path.isfile(self._tar_split(str(current))):
                raise StorageUnsupported(f"layer {current}: no tar-split")
            chain.append(StoredLayer(id=str(current), diff_id=str(layer["diff-digest"]),
                                     size=int(layer["diff-size"])))
            current = layer.get("parent")
        chain.reverse()
        if [layer.diff_id for layer in chain] != list(diff_ids):
            raise StorageUnsupported(f"image {image_id[:12]}: its layers are not the "
                                     "config's diff ids")
        return StoredImage(id=image_id, names=tuple(entry.get("names") or ()),
                           config=config, layers=tuple(chain))

    def record(self, image_id: str) -> tuple[dict[str, Any], bytes, bytes]:
        """The image record of ``image_id`` (an id) in ``images.json``, its config and
        its ``manifest`` big-data item, read under the images' read lock;
        :class:`ImageNotFound` if no image has that id, :class:`StorageUnsupported`
        if the config or the manifest is not there (or the config is not the id)."""
        wanted = image_id.removeprefix("sha256:")
        with _read_locked(self._locks[1:]):
            images = self._load(os.path.join(self._images, "images.json"))
            entry = next((one for one in images if one.get("id") == wanted), None)
            if entry is None:
                raise ImageNotFound(f"image {image_id} is not in buildah's storage {self.root}")
            config = self._big_data(wanted, f"sha256:{wanted}")
            manifest = self._big_data(wanted, "manifest")
        if hashlib.sha256(config).hexdigest() != wanted:
            raise StorageUnsupported(f"image {wanted[:12]}: its config is not its id")
        return entry, config, manifest

    def image(self, image: str) -> StoredImage:
        """What the storage keeps of ``image`` (read under the storage's read locks)."""
        with _read_locked(self._locks):
            return self._find(image)

    def layer_stream(self, layer: StoredLayer) -> Iterator[bytes]:
        """``layer``'s tar, checked against its diff id (call with the locks held)."""
        return tarsplit.verified(layer_tar(self._tar_split(layer.id), self.diff_dir(layer.id)),
                                 layer.size, layer.diff_id, layer=layer.id[:12], label=_LABEL)

    def _layers_stamp(self) -> tuple[int, int, int]:
        """What tells a changed ``layers.json``: its inode, size and change time."""
        status = os.stat(os.path.join(self._layers, "layers.json"))
        return status.st_ino, status.st_size, status.st_mtime_ns

    def _still_there(self, layer: StoredLayer, stamp: tuple[int, int, int]) -> None:
        """Check (the layers' lock held) that ``layer`` was not removed since the image
        was read (``stamp``: :meth:`_layers_stamp` then; the file is read again only if
        it changed): ``FileNotFoundError`` if it was."""
        if self._layers_stamp() == stamp:
            return
        for record in self._load(os.path.join(self._layers, "layers.json")):
            if record.get("id") == layer.id and record.get("diff-digest") == layer.diff_id:
                return
        raise FileNotFoundError(f"layer {layer.id[:12]} was removed while the image was read")

    def _layer_chunks(self, layer: StoredLayer, stamp: tuple[int, int, int]
                      ) -> Iterator[bytes]:
        """``layer``'s tar in pieces of about a megabyte (``tarsplit.pieces``), under
        the layers' read lock from the first byte to the last."""
        with _read_locked(self._locks[:1]):
            self._still_there(layer, stamp)
            yield from tarsplit.pieces(self.layer_stream(layer))

    def docker_archive(self, image: str, repo_tags: Sequence[str] = ()
                       ) -> Generator[bytes, None, None]:
        """``image`` as a ``docker save`` tar stream (``<config digest>.json``, one
        ``<diff id>.tar`` per layer, ``manifest.json``), read under the storage's read
        locks (see above). :class:`StorageUnsupported` (raised at once, before the
        stream) says to use buildah's own archive instead."""
        found = self.image(image)  # before any byte: unsupported is known now

        def stream() -> Generator[bytes, None, None]:
            with _read_locked(self._locks):
                stored = self._find(found.id)  # as it is now the stream begins
                stamp = self._layers_stamp()

            def streamed(layer: StoredLayer) -> StreamedLayer:
                return StreamedLayer(layer.diff_id, layer.size,
                                     lambda: self._layer_chunks(layer, stamp))

            yield from docker_archive_stream(
                stored.config, [streamed(layer) for layer in stored.layers], repo_tags)
            logger.debug("image %s: %d layers read from buildah's storage", stored.id[:12],
                         len(stored.layers))

        def translated() -> Generator[bytes, None, None]:
            # once the stream has begun its bytes are on their way: no falling back to
            # buildah's archive, so whatever the storage raises now is the engine's error
            try:
                yield from stream()
            except (StorageUnsupported, OSError) as exc:
                raise EngineError(f"buildah storage: reading image {found.id[:12]}: "
                                  f"{exc}") from None

        return translated()
