"""Uploading blobs and manifests over the registry HTTP API (distribution spec v2).

:class:`BlobUploader` puts blobs into one registry's repositories:

* ``HEAD /v2/<repo>/blobs/<digest>`` first: a blob the repository has is skipped;
* a blob this registry has in another repository is mounted
  (``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>``); a registry that
  refuses the mount answers with a new upload session, which is then used;
* anything else is uploaded in chunks (``PATCH`` with ``Content-Range``, then
  ``PUT ...?digest=``); a small blob goes in one ``PUT``;
* a chunk that fails (a reset connection, a 5xx) is followed by a
  ``GET`` of the upload's status: when the registry kept the session, the upload
  resumes at the offset its ``Range`` names; when it dropped it (the Debian
  registry cancels a session a broken chunk wrote into), the blob starts again.
  Both are bounded by the retry policy (:mod:`atomic_reactor._retry`).

:meth:`BlobUploader.put_manifest` puts a manifest under a tag or digest and checks
the digest the registry computed. :func:`push_artifact` uploads an artifact's blobs
and its manifest (e.g. an OCI manifest with a ``subject``: an SBOM or a provenance
attached to an image) in one call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from atomic_reactor._image.hashing import sha256_digest
from atomic_reactor._registry.client import RegistryClient, error_detail
from atomic_reactor._retry import RetryPolicy, is_transient
from atomic_reactor.errors import AtomicReactorError, RegistryError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CHUNK_SIZE", "Blob", "BlobUploader", "UploadStats", "push_artifact"]

#: bytes per PATCH of a chunked upload
DEFAULT_CHUNK_SIZE = 32 << 20
#: blobs up to this size go in one PUT
_MONOLITHIC = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A blob to upload: its digest, size and where its bytes are (a file or in memory)."""

    digest: str
    size: int
    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    media_type: str = "application/octet-stream"

    @classmethod
    def of_bytes(cls, data: bytes, media_type: str = "application/octet-stream") -> Blob:
        return cls(digest=sha256_digest(data), size=len(data), data=data,
                   media_type=media_type)

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end)."""
        if self.data is not None:
            return self.data[offset:offset + length]
        if self.path is None:
            raise ValueError("a blob needs a path or data")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)


@dataclass
class UploadStats:
    """What an uploader did (counts are per blob and repository)."""

    uploaded: int = 0
    mounted: int = 0
    skipped: int = 0
    bytes_sent: int = 0
    retries: int = 0
    resumed: int = 0
    restarted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class _Interrupted(Exception):
    """A chunk did not arrive; the upload's status says how to go on."""

    def __init__(self, error: AtomicReactorError) -> None:
        super().__init__(str(error))
        self.error = error


def _failure(response: requests.Response, what: str, registry: str) -> RegistryError:
    return RegistryError(f"{what} on {registry} failed with status "
                         f"{response.status_code}{error_detail(response)}", registry=registry)


class BlobUploader:
    """Uploads blobs and manifests to repositories of one registry.

    Thread safety: one uploader per thread (the client's HTTP session is not shared).
    """

    def __init__(self, client: RegistryClient, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 retry: RetryPolicy | None = None, stats: UploadStats | None = None,
                 on_progress: Callable[[str, int], None] | None = None) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.client = client
        self.registry = client.registry
        self.chunk_size = chunk_size
        self.retry = retry or client.retry
        self.stats = stats if stats is not None else UploadStats()
        self.on_progress = on_progress

    # -- plumbing ------------------------------------------------------------------------
    def _call(self, method: str, location: str, repo: str, **kwargs: Any
              ) -> requests.Response:
        """One request, one attempt (callers retry through :meth:`_retrying`)."""
        return self.client.request(method, location, repo, "pull,push", retry=False,
                                   **kwargs)

    def _retrying(self, what: str, func: Callable[[], requests.Response]
                  ) -> requests.Response:
        def counted(attempt: int, error: BaseException) -> None:
            self.stats.add(retries=1)

        return self.retry.call(what, func, on_retry=counted)

    # -- blobs ---------------------------------------------------------------------------
    def exists(self, repo: str, digest: str) -> bool:
        """Does ``repo`` have the blob ``digest``?"""
        response = self._retrying(f"HEAD of {digest} in {self.registry}/{repo}",
                                  lambda: self._call("HEAD", f"/v2/{repo}/blobs/{digest}",
                                                     repo))
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise _failure(response, f"HEAD of blob {digest} in {repo}", self.registry)

    def _start(self, repo: str, mount: tuple[str, str] | None = None
               ) -> tuple[str | None, requests.Response]:
        """Open an upload session; ``(None, response)`` when a mount made the blob."""
        params = {"mount": mount[0], "from": mount[1]} if mount else None
        response = self._retrying(f"starting an upload to {self.registry}/{repo}",
                                  lambda: self._call("POST", f"/v2/{repo}/blobs/uploads/",
                                                     repo, params=params))
        if response.status_code == 201 and mount is not None:
            return None, response
        if response.status_code != 202:
            raise _failure(response, f"starting an upload to {repo}", self.registry)
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"registry {self.registry} opened an upload to {repo} "
                                "without a Location", registry=self.registry)
        return location, response

    def upload(self, repo: str, blob: Blob, *, mount_from: str | None = None,
               check: bool = True) -> str:
        """Put ``blob`` into ``repo``: ``"skipped"``, ``"mounted"`` or ``"uploaded"``.

        ``mount_from``: a repository of this registry that has the blob.
        With ``check`` (default) a HEAD comes first. A blob without bytes here (neither
        path nor data: a base image's layer known by its descriptor) is mounted from
        ``mount_from``, or, where the registry refuses that, read from there and
        uploaded.
        """
        if check and self.exists(repo, blob.digest):
            self.stats.add(skipped=1)
            logger.debug("%s/%s has %s", self.registry, repo, blob.digest)
            return "skipped"
        mount = (blob.digest, mount_from) if mount_from and mount_from != repo else None
        if blob.path is None and blob.data is None and mount is None:
            raise RegistryError(f"blob {blob.digest} is not in {self.registry}/{repo} and "
                                "there is no repository to take it from",
                                registry=self.registry)
        restarts = 0
        fetched: str | None = None
        try:
            while True:
                location, _ = self._start(repo, mount)
                if location is None:
                    self.stats.add(mounted=1)
                    logger.debug("mounted %s into %s/%s from %s", blob.digest,
                                 self.registry, repo, mount_from)
                    return "mounted"
                if mount is not None and blob.path is None and blob.data is None:
                    assert mount_from is not None
                    fetched = self._fetch(mount_from, blob)
                    blob = dataclasses.replace(blob, path=fetched)
                mount = None  # refused (or not allowed): the session is a plain upload
                if self._upload_into(repo, blob, location, restarts):
                    break
                restarts += 1
        finally:
            if fetched is not None:
                with contextlib.suppress(OSError):
                    os.unlink(fetched)
        self.stats.add(uploaded=1)
        return "uploaded"

    def _fetch(self, source: str, blob: Blob) -> str:
        """The bytes of ``blob`` read from repository ``source`` of this registry into a
        temporary file (its path), checked against the digest."""
        what = f"reading {blob.digest} from {self.registry}/{source}"
        response = self._retrying(what, lambda: self._call(
            "GET", f"/v2/{source}/blobs/{blob.digest}", source, stream=True))
        if response.status_code != 200:
            raise _failure(response, what, self.registry)
        hasher = hashlib.sha256()
        fd, path = tempfile.mkstemp(prefix="atomic-reactor-blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                for piece in response.iter_content(1 << 20):
                    hasher.update(piece)
                    out.write(piece)
            if f"sha256:{hasher.hexdigest()}" != blob.digest:
                raise RegistryError(f"{what}: the bytes are not the digest",
                                    registry=self.registry)
        except BaseException:
            os.unlink(path)
            raise
        finally:
            response.close()
        logger.debug("read %s from %s/%s to upload it again", blob.digest, self.registry,
                     source)
        return path

    def _upload_into(self, repo: str, blob: Blob, location: str, restarts: int) -> bool:
        """Send ``blob`` into the session at ``location``: True when done, False when
        the upload was lost and is to start again (``restarts`` so far)."""
        try:
            self._send(repo, blob, location)
        except _Interrupted as interrupted:
            restarts += 1
            if restarts >= self.retry.attempts or not is_transient(interrupted.error):
                raise interrupted.error from None
            logger.warning("upload of %s to %s/%s was lost (%s); starting it again",
                           blob.digest, self.registry, repo, interrupted.error)
            self.stats.add(restarted=1)
            self.retry.sleep(self.retry.backoff(restarts))
            return False
        return True

    def _send(self, repo: str, blob: Blob, location: str) -> None:
        """Send the blob's bytes into the session at ``location`` and close it."""
        what = f"upload of {blob.digest} to {self.registry}/{repo}"
        params = {"digest": blob.digest}
        headers = {"Content-Type": "application/octet-stream"}
        if blob.size <= min(_MONOLITHIC, self.chunk_size):
            data = blob.read(0, blob.size)
            response = self._retrying(what, lambda: self._call(
                "PUT", location, repo, params=params, data=data, headers=headers))
            self._finished(repo, blob, response, what, blob.size)
            return
        offset = 0
        failures = 0
        while offset < blob.size:
            length = min(self.chunk_size, blob.size - offset)
            chunk = blob.read(offset, length)
            if len(chunk) != length:
                raise RegistryError(f"{what}: the blob file is shorter than {blob.size} bytes")
            try:
                response = self._call("PATCH", location, repo, data=chunk,
                                      headers={**headers, "Content-Range":
                                               f"{offset}-{offset + length - 1}"})
                if response.status_code != 202:
                    raise _failure(response, what, self.registry)
            except AtomicReactorError as exc:
                failures += 1
                if failures >= self.retry.attempts or not is_transient(exc):
                    raise
                self.stats.add(retries=1)
                self.retry.sleep(self.retry.backoff(failures))
                location, offset = self._status(repo, location, exc)
                self.stats.add(resumed=1)
                logger.warning("%s: a chunk failed (%s); resuming at byte %d", what, exc,
                               offset)
                continue
            location = response.headers.get("Location") or location
            offset += length
            self.stats.add(bytes_sent=length)
            if self.on_progress is not None:
                self.on_progress(blob.digest, offset)
        response = self._retrying(what, lambda: self._call(
            "PUT", location, repo, params=params, headers={"Content-Length": "0"}))
        self._finished(repo, blob, response, what, 0)

    def _status(self, repo: str, location: str, error: AtomicReactorError) -> tuple[str, int]:
        """Where the session at ``location`` stands; :class:`_Interrupted` when it is gone."""
        try:
            response = self._retrying(f"status of an upload to {self.registry}/{repo}",
                                      lambda: self._call("GET", location, repo))
        except AtomicReactorError:
            raise _Interrupted(error) from None
        if response.status_code != 204:
            raise _Interrupted(error)
        ranged = response.headers.get("Range", "")
        _, _, end = ranged.partition("-")
        try:
            last = int(end)
        except ValueError:
            raise _Interrupted(error) from None
        # "0-0" is what a registry says for an empty session, too
        offset = last + 1 if last > 0 else 0
        return response.headers.get("Location") or location, offset

    def _finished(self, repo: str, blob: Blob, response: requests.Response, what: str,
                  sent: int) -> None:
        if response.status_code != 201:
            # a retried PUT whose first attempt went through finds no session any more
            if response.status_code == 404 and self.exists(repo, blob.digest):
                return
            raise _failure(response, what, self.registry)
        self.stats.add(bytes_sent=sent)

    # -- a session fed as data is made (the digest is known only at the end) ------------
    def open_session(self, repo: str) -> str:
        """Open an upload session in ``repo``; return its location."""
        location, _ = self._start(repo)
        if location is None:  # pragma: no cover - only a mount answers 201
            raise RegistryError(f"registry {self.registry} closed a new upload at once",
                                registry=self.registry)
        return location

    def send_stream(self, repo: str, location: str, pieces: Iterable[bytes | memoryview]
                    ) -> str:
        """Send ``pieces`` into the session at ``location`` as one ``PATCH`` (chunked
        transfer encoding: the length need not be known); one attempt; the next location.

        One request for the whole blob: the registry writes and hashes as the bytes
        arrive and saves its hash state once (a registry saves it after each ``PATCH``).
        """
        sent = 0

        def counted() -> Iterator[bytes | memoryview]:
            nonlocal sent
            for piece in pieces:
                yield piece
                sent += len(piece)

        response = self._call("PATCH", location, repo, data=counted(),
                              headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 202:
            raise _failure(response, f"upload to {self.registry}/{repo}", self.registry)
        self.stats.add(bytes_sent=sent)
        return response.headers.get("Location") or location

    def close_session(self, repo: str, location: str, digest: str) -> None:
        """Finish the session as blob ``digest`` (the registry checks it)."""
        response = self._call("PUT", location, repo, params={"digest": digest},
                              headers={"Content-Length": "0"})
        if response.status_code != 201:
            raise _failure(response, f"finishing the upload of {digest} to "
                           f"{self.registry}/{repo}", self.registry)

    def cancel_session(self, repo: str, location: str) -> None:
        """Cancel the session at ``location`` (``DELETE``; one attempt, best effort: a
        registry purges sessions left open itself)."""
        try:
            self._call("DELETE", location, repo)
        except AtomicReactorError as exc:
            logger.debug("cancelling an upload to %s/%s: %s", self.registry, repo, exc)

    # -- manifests -------------------------------------------------------------------------
    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str
                     ) -> str:
        """PUT ``manifest`` as ``repo:reference`` (a tag or its digest); return its digest."""
        digest = sha256_digest(manifest)
        what = f"PUT of manifest {repo}:{reference}"
        response = self._retrying(what, lambda: self._call(
            "PUT", f"/v2/{repo}/manifests/{reference}", repo, data=manifest,
            headers={"Content-Type": media_type}))
        if response.status_code not in (200, 201):
            raise _failure(response, what, self.registry)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry says the manifest is {answered}, "
                                f"its bytes are {digest}", registry=self.registry)
        return digest


def push_artifact(client: RegistryClient, repo: str, blobs: Sequence[Blob], manifest: bytes,
                  media_type: str, *, tag: str | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """Upload ``blobs`` into ``repo`` and PUT ``manifest``; return the manifest's digest.

    For artifacts attached to an image (SBOM, provenance): build the manifest with
    :func:`atomic_reactor._image.layout.image_manifest` (``"oci"``, ``subject=`` the
    image's manifest descriptor, ``artifact_type=``), pass its config and layer
    blobs here (blobs the repository has are skipped). The manifest is PUT under
    ``tag`` when given (e.g. the referrers tag schema's ``sha256-<hex>``), else
    under its own digest.
    """
    uploader = BlobUploader(client, chunk_size=chunk_size)
    for blob in blobs:
        uploader.upload(repo, blob)
    digest = sha256_digest(manifest)
    return uploader.put_manifest(repo, tag or digest, manifest, media_type)
