"""A small client for the registry HTTP API (distribution spec, v2).

Used where the engine cannot help: reading tags and manifest digests, deleting
manifests. Basic and bearer-token auth; requests' exceptions become
:class:`~atomic_reactor.errors.RegistryError` s here; transient failures retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from atomic_reactor._engine.base import RegistryAuth
from atomic_reactor._reference import is_loopback_registry
from atomic_reactor._registry.auth import resolve_auth
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import AuthenticationError, ImageNotFound, RegistryError

logger = logging.getLogger(__name__)

__all__ = ["MANIFEST_TYPES", "RawManifest", "RegistryClient", "sha256_digest"]

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
#: registries (``host:port``) found answering plain HTTP only, in this process: a new
#: client for one of them skips the https attempt (its TLS set-up and failed handshake
#: cost tens of milliseconds, each time); forgotten when plain HTTP stops answering
_PLAIN_HTTP: set[str] = set()


def sha256_digest(data: bytes) -> str:
    """The content digest (``sha256:<hex>``) of ``data``, as registries compute it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RawManifest:
    """A manifest exactly as the registry stores it (its digest is of ``body``)."""

    body: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.body)


def _tls_refusal(response: requests.Response) -> bool:
    """Is ``response`` (to plain HTTP) a TLS server's refusal of it? Go's servers, the
    registry's among them, answer 400 "Client sent an HTTP request to an HTTPS server",
    nginx 400 "The plain HTTP request was sent to HTTPS port"."""
    if response.status_code != 400:
        return False
    try:
        text = response.text[:512].lower()
    except requests.exceptions.RequestException:
        return True
    return "https" in text


class ManifestNotFound(ImageNotFound):
    """The registry has no such manifest."""


class DeleteNotAllowed(RegistryError):
    """The registry does not allow deleting manifests."""




class RegistryClient:
    """Talks to one registry (``host[:port]``)."""

    def __init__(self, registry: str, insecure: bool = False, auth: RegistryAuth | None = None,
                 secret: str | None = None, retry: RetryPolicy | None = None,
                 timeout: float = 30.0) -> None:
        self.registry = registry
        self.insecure = insecure
        self.auth = auth if auth is not None else resolve_auth(registry, secret)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._session = requests.Session()
        self._tokens: dict[str, str] = {}
        self._base: str | None = None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------
    def _schemes(self) -> list[str]:
        """The base URLs to try, in order, until one answers.

        A registry on this host (loopback) is asked over plain HTTP first: the traffic
        never leaves the host, and a TLS attempt costs tens of milliseconds (the
        context, its CA bundle, a failed handshake) on each client's first call, where
        such registries mostly speak plain HTTP. One that turns out to be TLS-only is
        asked over https next. Another insecure registry is asked https first, plain
        HTTP second (as docker does), and plain HTTP only once it was found so.
        """
        if self._base:
            return [self._base]
        plain, tls = f"http://{self.registry}", f"https://{self.registry}"
        if is_loopback_registry(self.registry):
            return [plain] if self.registry in _PLAIN_HTTP else [plain, tls]
        if self.insecure:
            return [plain] if self.registry in _PLAIN_HTTP else [tls, plain]
        return [tls]

    def _send(self, method: str, path: str, scope: str, *, _authenticated: bool = False,
              **kwargs: Any) -> requests.Response:
        last: Exception | None = None
        given_headers = dict(kwargs.pop("headers", {}) or {})
        schemes = self._schemes()
        for index, base in enumerate(schemes):
            more = index + 1 < len(schemes)
            headers = dict(given_headers)
            token = self._tokens.get(scope)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self._session.request(method, base + path, headers=headers,
                                                 timeout=self.timeout, **kwargs)
            except requests.exceptions.SSLError as exc:
                # a plain-HTTP server's answer to TLS ("wrong version number") after the
                # plain attempt failed: that failure (a reset, say) is what happened
                if not (isinstance(last, requests.exceptions.ConnectionError)
                        and "wrong version number" in str(exc)):
                    last = exc
                continue
            except requests.exceptions.ConnectionError as exc:
                last = exc
                if more:
                    continue
                if self._base is None and self.registry in _PLAIN_HTTP:
                    # remembered as plain HTTP, which does not answer now: next time
                    # both schemes are tried again
                    _PLAIN_HTTP.discard(self.registry)
                raise RegistryError(f"registry {self.registry} is unreachable "
                                    f"({_reason(exc)})", registry=self.registry) from None
            except requests.exceptions.Timeout:
                raise RegistryError(f"registry {self.registry} timed out",
                                    registry=self.registry) from None
            if more and base.startswith("http://") and _tls_refusal(response):
                last = RegistryError(f"{self.registry} wants TLS")
                response.close()
                continue
            self._base = base
            if base.startswith("http://"):
                _PLAIN_HTTP.add(self.registry)
            if response.status_code == 401 and not token and not _authenticated and \
                    self._authenticate(response, scope):
                # once: credentials refused again are the caller's 401
                return self._send(method, path, scope, headers=given_headers,
                                  _authenticated=True, **kwargs)
            return response
        raise RegistryError(f"registry {self.registry} is unreachable ({_reason(last)})",
                            registry=self.registry)

    def _authenticate(self, response: requests.Response, scope: str) -> bool:
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if self.auth is None:
            raise AuthenticationError(f"registry {self.registry} requires credentials and none "
                                      "were found", registry=self.registry)
        if scheme == "basic":
            self._session.auth = (self.auth.username, self.auth.password)
            return True
        if scheme == "bearer":
            params = dict(_CHALLENGE.findall(challenge))
            realm = params.pop("realm", None)
            if not realm:
                return False
            params["scope"] = scope
            try:
                reply = self._session.get(realm, params=params, timeout=self.timeout,
                                          auth=(self.auth.username, self.auth.password))
            except requests.exceptions.RequestException as exc:
                raise RegistryError(f"token service of {self.registry} failed: {_reason(exc)}",
                                    registry=self.registry) from None
            if reply.status_code in (401, 403):
                raise AuthenticationError(f"registry {self.registry} refused the credentials",
                                          registry=self.registry)
            body = reply.json() if reply.ok else {}
            token = body.get("token") or body.get("access_token")
            if not token:
                raise AuthenticationError(f"no token from {self.registry}'s token service",
                                          registry=self.registry)
            self._tokens[scope] = str(token)
            return True
        return False

    def _request(self, method: str, path: str, repo: str, actions: str = "pull",
                 *, retry: bool = True, **kwargs: Any) -> requests.Response:
        scope = f"repository:{repo}:{actions}"

        def attempt() -> requests.Response:
            response = self._send(method, path, scope, **kwargs)
            if response.status_code >= 500:
                raise RegistryError(
                    f"{method} {path} on {self.registry}: status {response.status_code} "
                    f"{response.reason}", registry=self.registry)
            if response.status_code in (401, 403):
                raise AuthenticationError(
                    f"registry {self.registry} refused access to {repo} "
                    f"({response.status_code})", registry=self.registry)
            return response

        if not retry:
            return attempt()
        return self.retry.call(f"{method} {self.registry}{path}", attempt)

    def request(self, method: str, path: str, repo: str, actions: str = "pull", *,
                retry: bool = True, **kwargs: Any) -> requests.Response:
        """One API call (auth, scheme fallback; with ``retry`` the retry policy).

        ``path`` is a path under the registry (``/v2/...``) or an absolute URL the
        registry gave (an upload's ``Location``), which must point at the registry.
        5xx answers raise :class:`RegistryError`, 401/403 :class:`AuthenticationError`;
        other statuses are the caller's to judge.
        """
        return self._request(method, self.path_of(path), repo, actions, retry=retry,
                             **kwargs)

    def path_of(self, location: str) -> str:
        """The path (and query) of ``location``, a path or a URL on this registry."""
        if "://" not in location:
            return location if location.startswith("/") else "/" + location
        parts = urlsplit(location)
        if parts.netloc != self.registry:
            raise RegistryError(f"registry {self.registry} sent a location on another host "
                                f"({parts.netloc}); not following it", registry=self.registry)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # -- API -------------------------------------------------------------------------------
    def ping(self) -> None:
        """Check the registry answers the v2 API (and the credentials, if it asks)."""
        self._request("GET", "/v2/", "", actions="pull")

    def list_tags(self, repo: str) -> list[str]:
        response = self._request("GET", f"/v2/{repo}/tags/list", repo)
        if response.status_code == 404:
            return []
        _expect(response, 200, f"listing tags of {repo}")
        return list(response.json().get("tags") or [])

    def get_manifest(self, repo: str, reference: str,
                     accept: tuple[str, ...] = MANIFEST_TYPES) -> tuple[dict[str, Any], str]:
        """The manifest and its digest."""
        response = self._request("GET", f"/v2/{repo}/manifests/{reference}", repo,
                                 headers={"Accept": ", ".join(accept)})
        if response.status_code == 404:
            raise ManifestNotFound(f"{self.registry}/{repo}:{reference} not found")
        _expect(response, 200, f"reading manifest {repo}:{reference}")
        digest = response.headers.get("Docker-Content-Digest", "")
        return response.json(), digest

    def get_manifest_digest(self, repo: str, reference: str) -> str:
        response = self._request("HEAD", f"/v2/{repo}/manifests/{reference}", repo,
                                 headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            raise ManifestNotFound(f"{self.registry}/{repo}:{reference} not found")
        _expect(response, 200, f"reading manifest {repo}:{reference}")
        return response.headers.get("Docker-Content-Digest", "")

    def get_manifest_raw(self, repo: str, reference: str,
                         accept: tuple[str, ...] = MANIFEST_TYPES) -> RawManifest:
        """The manifest's bytes, media type and digest (computed, and checked against the
        registry's when the reference is a digest)."""
        response = self._request("GET", f"/v2/{repo}/manifests/{reference}", repo,
                                 headers={"Accept": ", ".join(accept)})
        if response.status_code == 404:
            raise ManifestNotFound(f"{self.registry}/{repo}:{reference} not found")
        _expect(response, 200, f"reading manifest {repo}:{reference}")
        body = response.content
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"{self.registry}/{repo}@{reference}: the registry sent a "
                                f"manifest whose digest is {digest}", registry=self.registry)
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_TYPES:
            with contextlib.suppress(ValueError):
                media_type = str(response.json().get("mediaType") or media_type)
        return RawManifest(body=body, media_type=media_type, digest=digest)

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        """Store ``body`` as the manifest ``reference`` (a tag or its digest); return the
        digest, checked against what the registry answered."""
        response = self._request("PUT", f"/v2/{repo}/manifests/{reference}", repo,
                                 actions="pull,push", data=body,
                                 headers={"Content-Type": media_type})
        _expect(response, 201, f"storing manifest {repo}:{reference}")
        digest = sha256_digest(body)
        answered = response.headers.get("Docker-Content-Digest", "")
        if answered and answered != digest:
            raise RegistryError(f"{self.registry}/{repo}:{reference}: the registry stored the "
                                f"manifest as {answered}, not {digest}", registry=self.registry)
        return digest

    def blob_exists(self, repo: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo)
        if response.status_code == 404:
            return False
        _expect(response, 200, f"checking blob {digest}")
        return True

    def upload_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        """Upload ``data`` as a blob of ``repo`` in one request (unless it is there);
        return its digest."""
        digest = digest or sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        started = self._request("POST", f"/v2/{repo}/blobs/uploads/", repo,
                                actions="pull,push")
        _expect(started, 202, f"starting the upload of blob {digest}")
        location = started.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{self.registry} started an upload without a Location",
                                registry=self.registry)
        path = location
        if location.startswith(("http://", "https://")):
            path = "/" + location.split("://", 1)[1].split("/", 1)[1]
        separator = "&" if "?" in path else "?"
        done = self._request("PUT", f"{path}{separator}digest={digest}", repo,
                             actions="pull,push", data=data,
                             headers={"Content-Type": "application/octet-stream"})
        _expect(done, 201, f"uploading blob {digest}")
        return digest

    def get_referrers(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The OCI index of the manifests whose ``subject`` is ``digest``, from the
        registry's referrers API; None when the registry has no referrers API."""
        response = self._request("GET", f"/v2/{repo}/referrers/{digest}", repo,
                                 headers={"Accept": OCI_INDEX})
        if response.status_code in (404, 405):
            return None
        _expect(response, 200, f"listing the referrers of {repo}@{digest}")
        try:
            index = response.json()
        except ValueError:
            return None
        return index if isinstance(index, dict) else None

    def get_blob(self, repo: str, digest: str) -> bytes:
        response = self._request("GET", f"/v2/{repo}/blobs/{digest}", repo)
        _expect(response, 200, f"reading blob {digest}")
        return response.content

    def delete_manifest(self, repo: str, digest: str) -> bool:
        """Delete a manifest by digest; False when it was already gone."""
        response = self._request("DELETE", f"/v2/{repo}/manifests/{digest}", repo,
                                 actions="pull,push,delete")
        if response.status_code == 404:
            return False
        if response.status_code == 405:
            raise DeleteNotAllowed(f"registry {self.registry} does not allow deletes",
                                   registry=self.registry)
        _expect(response, 202, f"deleting {repo}@{digest}")
        return True


def error_detail(response: requests.Response) -> str:
    """``": <message>"`` of the first error a registry's answer lists, else ``""``."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return ""
    return ": " + str(errors[0].get("message", "")) if errors else ""


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RegistryError(f"{what} failed with status {response.status_code}"
                            f"{error_detail(response)}")


def _reason(exc: BaseException | None) -> str:
    text = str(exc) if exc else "unknown"
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "Connection reset", "certificate verify failed", "wrong version number",
                   "Remote end closed connection", "Connection aborted"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__ if exc else "unknown"


