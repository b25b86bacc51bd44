"""The Docker Engine backend: the engine seam's calls as Docker Engine API requests.

The requests go through :mod:`._transport` (HTTP over dockerd's socket, ours), not
the Docker SDK for Python: importing the SDK (with requests and urllib3) cost more
than the rest of the start of a build. Every exception a request raises goes
through :func:`atomic_reactor._engine.errors.docker_error`, which translates it into
the project's own types. The SDK is imported only for :attr:`DockerEngine.client`
(``DockerTasker.d`` of the 1.6 API), for a container whose creation passes SDK
keyword arguments (``create_kwargs``/``start_kwargs`` of ``DockerTasker.run``) and
for credential helpers (a context's ``.dockerignore`` is matched by
:mod:`atomic_reactor._engine.dockerignore`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from atomic_reactor._engine.base import (
    ArchiveFormat,
    BuildOptions,
    ContainerSpec,
    ContainerState,
    EngineCapabilities,
    EngineEvent,
    ImageInfo,
    RegistryAuth,
    TransferOptions,
)
from atomic_reactor._engine.context import stream_context
from atomic_reactor._engine.docker._transport import (
    STDERR,
    STDOUT,
    Response,
    Transport,
    encode_auth,
    path_quote,
    tls_from_env,
)
from atomic_reactor._engine.errors import (
    docker_error,
    docker_unavailable,
    registry_of,
    transfer_error,
)
from atomic_reactor._engine.storage import StorageUnsupported
from atomic_reactor.errors import (
    ArchiveError,
    AuthenticationError,
    EngineConfigError,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
)

logger = logging.getLogger(__name__)

__all__ = ["DockerEngine", "default_address"]

T = TypeVar("T")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")
_RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})")
_REMOVED = re.compile(r"Removing intermediate container ([0-9a-f]{12,64})")
_STEP = re.compile(r"^Step \d+/\d+ : (\S+)", re.IGNORECASE)
_STEP_RESULT = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$")
#: seconds dockerd gets to kill and remove a cancelled build's container before we do
REAP_GRACE = 3.0
REAP_TIMEOUT = 15.0
#: keyword arguments of the engine that the transport honours itself (the SDK's names)
_TRANSPORT_OPTIONS = ("version", "tls", "user_agent", "max_pool_size", "credstore_env")
_SAVE_CHUNK = 2 * 1024 * 1024
_NO_AUTH = encode_auth({})


def default_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


class DockerEngine:
    """A :class:`~atomic_reactor._engine.base.ContainerEngine` talking to dockerd.

    ``base_url`` is dockerd's address (``DOCKER_HOST``, else its default socket);
    ``timeout`` the seconds any socket operation may take (a build's stream has none,
    a pull's stream fails after that long without progress). Of the Docker SDK's
    client options, ``version`` (pins the API version; default: dockerd's own, as
    ``"auto"``) and ``tls`` (True, or an ``ssl.SSLContext``) are honoured; all of them
    reach the SDK client of :attr:`client`.
    """

    name = "docker"
    #: dockerd's push is slower than ours; its legacy builder builds one thing at a time
    capabilities = EngineCapabilities(fast_push=False, parallel_builds=False)

    def __init__(self, base_url: str | None = None, timeout: int = 120, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_TRANSPORT_OPTIONS) - {"use_ssh_client"})
        if unknown:
            raise EngineConfigError(f"the docker engine takes no option {', '.join(unknown)}")
        self._base_url = base_url
        self.address = base_url or default_address()
        self.timeout = timeout
        self._kwargs = kwargs
        self._client: Any = None
        self._transport: Transport | None = None
        self._lock = threading.Lock()

    # -- connection -----------------------------------------------------------------
    @property
    def api(self) -> Transport:
        """The transport to dockerd, made on first use (it connects on the first call)."""
        with self._lock:
            if self._transport is None:
                self._transport = self._make_transport()
            return self._transport

    def _make_transport(self) -> Transport:
        version = self._kwargs.get("version")
        if version in (None, "auto"):
            version = None
        tls = self._kwargs.get("tls")
        context = None
        if tls is True or (tls is None and self._base_url is None):
            context = tls_from_env()
            if tls is True and context is None:
                import ssl

                context = ssl.create_default_context()
        elif tls not in (None, False):
            context = tls if hasattr(tls, "wrap_socket") else None
            if context is None:
                raise EngineConfigError("the docker engine's tls option must be True or "
                                        "an ssl.SSLContext")
        try:
            return Transport(self.address, self.timeout, version=version, tls=context)
        except ValueError as exc:
            raise EngineConfigError(f"docker engine address {self.address}: {exc}") from None

    @property
    def client(self) -> Any:
        """The Docker SDK's low-level client (``docker.APIClient``), created (and the
        SDK imported) on first use: for callers of ``DockerTasker.d``; the backend's
        own calls do not use it."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        import docker
        import docker.errors
        import requests.exceptions

        kwargs: dict[str, Any] = {}
        if self._base_url is None:
            kwargs.update(docker.utils.kwargs_from_env())
        else:
            kwargs["base_url"] = self._base_url
        kwargs.setdefault("base_url", DEFAULT_SOCKET)
        kwargs.update(self._kwargs)
        kwargs.setdefault("version", "auto")
        kwargs["timeout"] = self.timeout
        try:
            return docker.APIClient(**kwargs)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise docker_unavailable(exc, self.address) from None

    def reset(self) -> None:
        """Drop the connections (shutting any stream in flight); reconnect on next use.

        Closing the connection is how an in-flight build, pull or push is cancelled:
        the engine stops the work when its client goes away (dockerd 20.10 kills and
        removes a legacy build's RUN container within a second).
        """
        with self._lock:
            transport = self._transport
            client, self._client = self._client, None
        if transport is not None:
            transport.close()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        self.reset()

    def _call(self, action: str, func: Callable[[], T], streaming: bool = False) -> T:
        """Run a request; translate its exceptions (``streaming``: reading a stream)."""
        try:
            return func()
        except Exception as exc:
            error = docker_error(action, exc, self, streaming)
            if error is None:
                raise
            raise error from None

    def _stream(
        self, action: str, open_stream: Callable[[], Response],
        error_type: Callable[[str], Exception] | None = None,
    ) -> Iterator[EngineEvent]:
        """Decode a JSON message stream into events; close the connection if abandoned."""
        finished = False
        response: Response | None = None
        try:
            try:
                response = self._call(action, open_stream)
            except EngineError as exc:
                # a registry failure the engine reports before streaming (e.g. 404)
                if error_type is None or isinstance(exc, EngineUnavailable):
                    raise
                detail = str(exc).removeprefix(f"{action} failed: ").removeprefix(f"{action}: ")
                if "(timed out)" in detail:  # the engine waits for a stalled registry
                    detail = f"no progress in {self.timeout} s (timed out)"
                raise error_type(detail) from None
            messages = response.json_messages()
            while True:
                try:
                    message = self._call(action, lambda: next(messages, None), streaming=True)
                except EngineUnavailable:
                    raise
                except EngineError as exc:
                    # no word from the engine for `timeout` seconds: a stalled registry
                    if error_type is None or "(timed out)" not in str(exc):
                        raise
                    raise error_type(f"no progress in {self.timeout} s (timed out)") from None
                if message is None:
                    break
                event = _decode(message)
                if event.error is not None and error_type is not None:
                    raise error_type(event.error)
                yield event
            finished = True
        finally:
            if response is not None:
                if finished:
                    response.close()
                else:
                    # abandoned, cancelled or failed mid-way: close this stream's
                    # connection so the engine stops the work (a build's RUN
                    # container, a pull, a push)
                    response.shut()

    # -- images ---------------------------------------------------------------------
    def build(self, context_dir: str, tag: str, options: BuildOptions
              ) -> Iterator[EngineEvent]:
        if options.secrets:
            raise EngineConfigError(
                "the docker engine cannot mount build secrets (RUN --mount=type=secret); "
                "use --engine buildah")
        params = build_params(options, _proxy_environment(self.address))
        params["t"] = tag

        def open_stream() -> Response:
            headers = {"Content-Type": "application/x-tar"}
            registries = _registry_config()
            if registries:
                headers["X-Registry-Config"] = encode_auth(registries)
            return self.api.post("/build", params=params, headers=headers, stream=True,
                                 body=stream_context(context_dir, options.dockerfile),
                                 timeout=None)

        events = _intermediates(self._stream(f"building {tag}", open_stream))
        return self._reaping(events) if options.remove_intermediate else events

    def _reaping(self, events: Iterator[EngineEvent]) -> Iterator[EngineEvent]:
        """Pass a build's events on; if the build is abandoned (cancelled, the engine
        connection broke), make sure its step containers are gone before returning.

        The containers are the ones dockerd names in " ---> Running in <id>" and has not
        removed yet. dockerd kills and removes them itself when the client goes away;
        this waits for that (so nothing is left when the caller exits) and removes what
        is still there after :data:`REAP_GRACE` seconds.
        """
        running: dict[str, None] = {}
        finished = False
        try:
            for event in events:
                if event.message:
                    for found in _RUNNING_IN.findall(event.message):
                        running[found] = None
                    for found in _REMOVED.findall(event.message):
                        running.pop(found, None)
                yield event
            finished = True
        finally:
            if not finished and running:
                close = getattr(events, "close", None)
                if close is not None:
                    close()  # shuts the connection: dockerd starts cancelling the build
                self._reap(list(running))

    def _reap(self, container_ids: list[str]) -> None:
        started = time.monotonic()
        removed = False
        remaining = container_ids
        try:
            while remaining:
                remaining = [cid for cid in remaining if self._container_exists(cid)]
                waited = time.monotonic() - started
                if not remaining or waited > REAP_TIMEOUT:
                    break
                if waited > REAP_GRACE and not removed:
                    for cid in remaining:
                        logger.info("removing container %s of the cancelled build", cid)
                        with contextlib.suppress(EngineError):
                            self.remove_container(cid, force=True)
                    removed = True
                time.sleep(0.1)
        except EngineError as exc:  # the engine is gone: nothing more to do here
            logger.debug("cannot check the build's containers: %s", exc)
            return
        if remaining:
            logger.warning("container(s) %s of the cancelled build are still there",
                           ", ".join(remaining))

    def _container_exists(self, container_id: str) -> bool:
        try:
            self.inspect_container(container_id)
        except EngineUnavailable:
            raise
        except EngineError as exc:
            if "no such container" in str(exc).lower():
                return False
            raise
        return True

    def _auth_header(self, reference: str, auth: RegistryAuth | None) -> str:
        """``X-Registry-Auth`` for a pull or push of ``reference``: ``auth``, else what
        the docker config has for its registry (as the SDK looked it up), else none."""
        if auth is None:
            registry = registry_of(reference)
            if registry is not None:
                from atomic_reactor._registry.auth import resolve_auth

                with contextlib.suppress(AuthenticationError):
                    auth = resolve_auth(registry)
        return encode_auth(auth.as_docker_auth_config()) if auth else _NO_AUTH

    def pull(self, reference: str, auth: RegistryAuth | None = None,
             options: TransferOptions | None = None) -> Iterator[EngineEvent]:
        # ``options.insecure``: dockerd decides by its own insecure-registries setting;
        # the tasker turns an HTTPS-vs-HTTP failure into a hint naming that setting
        repository, tag = split_reference(reference)
        params = {"fromImage": repository, "tag": tag or "latest",
                  "platform": str(options.platform) if options and options.platform else None}

        def open_stream() -> Response:
            # no progress for `timeout` seconds (a stalled registry): timed out
            return self.api.post("/images/create", params=params, stream=True,
                                 headers={"X-Registry-Auth": self._auth_header(reference, auth)})

        action = f"pulling {reference}"
        return self._stream(action, open_stream,
                            lambda msg: transfer_error("pull", action, reference, msg))

    def push(self, reference: str, auth: RegistryAuth | None = None,
             options: TransferOptions | None = None) -> Iterator[EngineEvent]:
        def open_stream() -> Response:
            return self.api.post(f"/images/{path_quote(reference)}/push", stream=True,
                                 headers={"X-Registry-Auth": self._auth_header(reference, auth)})

        action = f"pushing {reference}"
        return self._stream(action, open_stream,
                            lambda msg: transfer_error("push", action, reference, msg))

    def tag(self, image: str, target: str, force: bool = False) -> None:
        repository, _, tag = target.rpartition(":")
        if "/" in tag or not repository:
            repository, tag = target, "latest"
        response = self._call(f"tagging {image} as {target}", lambda: self.api.post(
            f"/images/{path_quote(image)}/tag",
            params={"repo": repository, "tag": tag, "force": force or None}))
        if response.status != 201:
            raise EngineError(f"tagging {image} as {target} failed")

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self._json(f"inspecting image {image}", "GET",
                          f"/images/{path_quote(image)}/json"))

    def _json(self, action: str, method: str, path: str, **options: Any) -> Any:
        """A request whose answer is one JSON document."""
        return self._call(action, lambda: self.api.request(method, path, **options).json())

    def image_info(self, image: str) -> ImageInfo:
        return image_info_from_inspect(self.inspect_image(image))

    def image_exists(self, image: str) -> bool:
        try:
            self.inspect_image(image)
        except ImageNotFound:
            return False
        return True

    def list_images(self, name: str | None = None) -> list[ImageInfo]:
        params: dict[str, Any] = {"only_ids": 0, "all": 0}
        if name:
            params["filters"] = {"reference": [name]}
        entries = self._json("listing images", "GET", "/images/json", params=params)
        return [image_info_from_list_entry(entry) for entry in entries or ()]

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        self._call(f"removing image {image}", lambda: self.api.delete(
            f"/images/{path_quote(image)}", params={"force": force, "noprune": noprune}))

    def save_image(self, image: str, format: ArchiveFormat = "docker-archive"
                   ) -> Iterator[bytes]:
        if format == "oci-archive":
            return _oci_archive(image, self.save_image(image))
        if format != "docker-archive":
            raise EngineConfigError(f"unknown archive format {format!r} "
                                    "(docker-archive or oci-archive)")
        action = f"saving image {image}"
        response = self._call(action, lambda: self.api.get(
            f"/images/{path_quote(image)}/get", stream=True))
        return self._chunks(action, response)

    def read_image(self, image: str) -> Iterator[bytes]:
        """dockerd's overlay2 storage read straight from its files where this process
        can (see :mod:`.storage`: no copy of the layers written first, as ``docker
        save`` makes, and the first layer's bytes at once), else ``docker save``."""
        stream = self._storage_archive(image)
        return stream if stream is not None else self.save_image(image)

    def _storage_archive(self, image: str) -> Iterator[bytes] | None:
        from atomic_reactor._engine.docker import storage

        if not self.address.startswith("unix://"):  # another host's files are not here
            return None
        try:
            inspect = self.inspect_image(image)
            image_id = str(inspect.get("Id") or "")
            reader = storage.DockerStorage.of_inspect(inspect)
            return reader.docker_archive(image_id, _repo_tags(image, image_id))
        except (StorageUnsupported, EngineError) as exc:  # docker save gives its own error
            logger.debug("saving %s through dockerd: storage not read directly (%s)",
                         image, exc)
            return None

    def _chunks(self, action: str, response: Response) -> Iterator[bytes]:
        """A streamed body, translating errors raised while reading it."""
        chunks = response.chunks(_SAVE_CHUNK)
        finished = False
        try:
            while True:
                chunk = self._call(action, lambda: next(chunks, None), streaming=True)
                if chunk is None:
                    break
                yield chunk
            finished = True
        finally:
            if finished:
                response.close()
            else:
                response.shut()

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        def load() -> list[Any]:
            response = self.api.post("/images/load", body=data, stream=True,
                                     headers={"Content-Type": "application/x-tar"})
            try:
                return list(response.json_messages())
            finally:
                response.close()

        result = self._call("loading an image", load)
        loaded: list[str] = []
        for message in result:
            if isinstance(message, dict):
                if message.get("error"):
                    raise EngineError(f"loading an image failed: {message['error']}")
                stream = str(message.get("stream", ""))
                for prefix in ("Loaded image ID: ", "Loaded image: "):
                    if stream.startswith(prefix):
                        loaded.append(stream[len(prefix):].strip())
        return loaded

    # -- containers -------------------------------------------------------------------
    def create_container(self, spec: ContainerSpec) -> str:
        """Create a container; ``spec.create_extra``/``host_extra`` (the Docker SDK's
        ``create_container``/``create_host_config`` keywords of the 1.6 ``run``) make
        the SDK's types shape the request body, for that call only."""
        def create() -> str:
            if spec.create_extra or spec.host_extra:
                body = self._sdk_container_config(spec)
            else:
                body = container_config(spec, _proxy_environment(self.address))
            params = {"name": spec.create_extra.get("name") or spec.name,
                      "platform": spec.create_extra.get("platform")}
            created = self.api.post("/containers/create", params=params,
                                    json_body=body).json()
            return str(created["Id"])

        return self._call(f"creating a container from {spec.image}", create)

    def _sdk_container_config(self, spec: ContainerSpec) -> dict[str, Any]:
        from docker.types import ContainerConfig, HostConfig

        version = str(self.version().get("ApiVersion") or "1.41")
        binds = {host: {"bind": path, "mode": mode}
                 for host, (path, mode) in spec.binds.items()}
        host_config = HostConfig(
            version, binds=binds or None, privileged=spec.privileged,
            cap_add=list(spec.cap_add) or None, cap_drop=list(spec.cap_drop) or None,
            security_opt=list(spec.security_opt) or None,
            network_mode=spec.network_mode, **dict(spec.host_extra))
        extra = dict(spec.create_extra)
        environment = extra.pop("environment", None) or dict(spec.environment) or None
        if extra.pop("use_config_proxy", True):
            environment = _with_proxies(environment, _proxy_environment(self.address))
        extra.pop("name", None)  # these two are the query's, not the body's
        extra.pop("platform", None)
        config: dict[str, Any] = ContainerConfig(
            version, spec.image, spec.command, environment=environment,
            labels=dict(spec.labels) or None, user=spec.user,
            working_dir=spec.working_dir, entrypoint=spec.entrypoint,
            volumes=[path for path, _ in spec.binds.values()] or None,
            host_config=host_config, **extra)
        return config

    def start_container(self, container_id: str) -> None:
        self._call(f"starting container {container_id[:12]}",
                   lambda: self.api.post(f"/containers/{container_id}/start"))

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        def wait() -> int:
            result = self.api.post(f"/containers/{container_id}/wait",
                                   timeout=timeout).json()
            return int(result["StatusCode"] if isinstance(result, dict) else result)

        return self._call(f"waiting for container {container_id[:12]}", wait)

    def container_logs(
        self, container_id: str, stderr: bool = True, follow: bool = True
    ) -> Iterator[str]:
        action = f"reading logs of container {container_id[:12]}"

        def open_logs() -> tuple[Response, bool]:
            response = self.api.get(
                f"/containers/{container_id}/logs", stream=True,
                params={"stdout": True, "stderr": stderr, "follow": follow,
                        "timestamps": False, "tail": "all"})
            return response, self._multiplexed(container_id, response)

        response, multiplexed = self._call(action, open_logs)

        def payloads() -> Iterator[bytes]:
            if not multiplexed:
                yield from response.chunks()
                return
            for stream, payload in response.frames():
                if stream in (STDOUT, STDERR):
                    yield payload

        if not follow:
            try:
                text = b"".join(self._call(action, lambda: list(payloads()), streaming=True))
            finally:
                response.close()
            return iter(text.decode("utf-8", "replace").splitlines(keepends=True))
        chunks = payloads()

        def read() -> Iterator[bytes]:
            # a quiet container outlasts the read timeout: that, too, is an EngineError
            try:
                while True:
                    chunk = self._call(action, lambda: next(chunks, None), streaming=True)
                    if chunk is None:
                        return
                    yield chunk
            finally:
                response.shut()

        return _lines(read())

    def _multiplexed(self, container_id: str, response: Response) -> bool:
        """Whether a logs stream is in frames: dockerd says so from API 1.42; before,
        a container without a TTY (its config says) has them."""
        kind = response.content_type
        if kind == "application/vnd.docker.multiplexed-stream":
            return True
        api_version = str(response.headers.get("Api-Version") or "0")
        if _version_tuple(api_version) >= (1, 42):
            return False
        config = self.api.get(f"/containers/{container_id}/json").json().get("Config") or {}
        return not config.get("Tty")

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self._call(f"stopping container {container_id[:12]}", lambda: self.api.post(
            f"/containers/{container_id}/stop", params={"t": timeout},
            timeout=self.timeout + timeout))

    def kill_container(self, container_id: str) -> None:
        self._call(f"killing container {container_id[:12]}",
                   lambda: self.api.post(f"/containers/{container_id}/kill"))

    def remove_container(self, container_id: str, force: bool = False) -> None:
        self._call(f"removing container {container_id[:12]}", lambda: self.api.delete(
            f"/containers/{container_id}", params={"v": True, "force": force, "link": False}))

    def container_state(self, container_id: str) -> ContainerState:
        return container_state_from_inspect(self.inspect_container(container_id))

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return dict(self._json(f"inspecting container {container_id[:12]}", "GET",
                               f"/containers/{container_id}/json"))

    def commit_container(
        self,
        container_id: str,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: Sequence[str] | None = None,
    ) -> str:
        params = {"container": container_id, "repo": repository, "tag": tag,
                  "comment": message, "pause": True,
                  "changes": list(changes) if changes else None}
        result = self._json(f"committing container {container_id[:12]}", "POST", "/commit",
                            params=params, json_body={})
        return str(result["Id"])

    def export_container(self, container_id: str) -> Iterator[bytes]:
        action = f"exporting container {container_id[:12]}"
        response = self._call(action, lambda: self.api.get(
            f"/containers/{container_id}/export", stream=True))
        return self._chunks(action, response)

    # -- engine -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return dict(self._json("reading engine info", "GET", "/info"))

    def version(self) -> dict[str, Any]:
        return dict(self._json("reading engine version", "GET", "/version"))


def _repo_tags(image: str, image_id: str) -> tuple[str, ...]:
    """The ``RepoTags`` ``docker save image`` writes: none for an id (or a prefix of
    one) or a digest reference, else the name with its tag (``latest`` if none)."""
    bare = image.removeprefix("sha256:")
    if image_id.removeprefix("sha256:").startswith(bare) or "@" in image:
        return ()
    last = image.rpartition("/")[2]
    return (image if ":" in last else f"{image}:latest",)


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def split_reference(reference: str) -> tuple[str, str | None]:
    """(repository, tag or digest) of an image reference, as dockerd's pull takes it."""
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, digest
    repository, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return reference, None
    return repository, tag


def _registry_config() -> dict[str, Any]:
    from atomic_reactor._registry.auth import registry_config

    return registry_config()


def _proxy_environment(address: str) -> dict[str, str]:
    from atomic_reactor._registry.auth import proxy_environment

    return proxy_environment(address)


def _with_proxies(environment: Any, proxies: Mapping[str, str]) -> Any:
    """``environment`` (a mapping or ``K=V`` strings) after the docker config's proxy
    variables, which it overrides (as the SDK's ``use_config_proxy`` does)."""
    if not proxies:
        return environment
    entries = [f"{key}={value}" for key, value in proxies.items()]
    if isinstance(environment, Mapping):
        entries += [f"{key}={value}" for key, value in environment.items()]
    elif environment:
        entries += [str(item) for item in environment]
    return entries


def _argv(value: Sequence[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else list(value)


def container_config(spec: ContainerSpec, proxies: Mapping[str, str] | None = None
                     ) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for ``spec`` (what the Docker SDK's
    ``create_container`` made of the same arguments)."""
    environment = _with_proxies(dict(spec.environment) or None, proxies or {})
    host: dict[str, Any] = {
        "NetworkMode": spec.network_mode or "default",
        "Privileged": spec.privileged,
    }
    if spec.binds:
        host["Binds"] = [f"{source}:{path}:{mode}"
                         for source, (path, mode) in spec.binds.items()]
    for key, values in (("CapAdd", spec.cap_add), ("CapDrop", spec.cap_drop),
                        ("SecurityOpt", spec.security_opt)):
        if values:
            host[key] = list(values)
    config: dict[str, Any] = {
        "Image": spec.image, "Cmd": _argv(spec.command), "Entrypoint": _argv(spec.entrypoint),
        "Env": ([f"{k}={v}" for k, v in environment.items()]
                if isinstance(environment, dict) else environment),
        "Labels": dict(spec.labels) or None, "User": spec.user,
        "WorkingDir": spec.working_dir,
        "Volumes": {path: {} for path, _ in spec.binds.values()} or None,
        "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
        "Tty": False, "OpenStdin": False, "StdinOnce": False, "NetworkDisabled": False,
        "HostConfig": host,
    }
    return {key: value for key, value in config.items() if value is not None}


_BLOB_CHUNK = 1024 * 1024


def _oci_archive(image: str, saved: Iterator[bytes]) -> Iterator[bytes]:
    """An OCI image layout archive (``oci-archive``) of a ``docker save`` stream.

    dockerd 20.10 saves only its own layout; the save is unpacked once into a
    temporary directory and written out again as an OCI layout: the config as is, the
    layers as uncompressed OCI layers (a docker save's layer files are exactly the
    layers whose digests the config lists; each is checked while it is written).
    """
    # here, not at the top: a build's start does not need them
    from atomic_reactor._image.layout import (
        OCI_CONFIG,
        OCI_INDEX,
        OCI_LAYER_TAR,
        OCI_MANIFEST,
        Descriptor,
        ImageArchive,
        image_manifest,
    )
    from atomic_reactor._image.tarstream import (
        END_OF_ARCHIVE,
        dir_member,
        file_member,
        padding,
        safe_extract,
    )

    scratch = tempfile.mkdtemp(prefix="atomic-reactor-oci-")
    try:
        safe_extract(saved, scratch)
        archive = ImageArchive.open(scratch)
        config = archive.config_bytes
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        blobs: dict[str, str] = {}
        layers: list[Descriptor] = []
        for diff_id, path in zip(archive.diff_ids, archive.layer_files, strict=True):
            layers.append(Descriptor(OCI_LAYER_TAR, diff_id, os.path.getsize(path)))
            blobs.setdefault(diff_id, path)
        manifest = image_manifest("oci", Descriptor(OCI_CONFIG, config_digest, len(config)),
                                  layers)
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        entry: dict[str, Any] = {"mediaType": OCI_MANIFEST,
                                 "digest": manifest_digest, "size": len(manifest)}
        if not image.startswith("sha256:") and not re.fullmatch(r"[0-9a-f]{12,64}", image):
            entry["annotations"] = {"org.opencontainers.image.ref.name": image}
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [entry]}, separators=(",", ":")).encode()

        def small(name: str, payload: bytes) -> Iterator[bytes]:
            yield file_member(name, len(payload))
            yield payload
            yield padding(len(payload))

        yield from small("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        yield from small("index.json", index)
        yield dir_member("blobs/")
        yield dir_member("blobs/sha256/")
        yield from small(f"blobs/sha256/{config_digest[7:]}", config)
        for digest, path in blobs.items():
            size = os.path.getsize(path)
            yield file_member(f"blobs/sha256/{digest.removeprefix('sha256:')}", size)
            hasher = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(_BLOB_CHUNK):
                    hasher.update(chunk)
                    yield chunk
            if "sha256:" + hasher.hexdigest() != digest:
                raise ArchiveError(f"saving {image} as oci-archive: a layer of the docker "
                                   f"save is not the layer {digest} its config names")
            yield padding(size)
        yield from small(f"blobs/sha256/{manifest_digest[7:]}", manifest)
        yield END_OF_ARCHIVE
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _intermediates(events: Iterator[EngineEvent]) -> Iterator[EngineEvent]:
    """Mark the images the legacy builder made per step (`` ---> <id>`` after a step
    that was neither a FROM nor taken from the cache)."""
    made_here = False
    for event in events:
        made: str | None = None
        for line in event.message.splitlines():
            step = _STEP.match(line)
            if step is not None:
                made_here = step.group(1).upper() != "FROM"
            elif line.strip() == "---> Using cache":
                made_here = False
            else:
                result = _STEP_RESULT.match(line)
                if result is not None and made_here:
                    made_here = False
                    made = result.group(1)
        yield event if made is None else dataclasses.replace(event, intermediate_image=made)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace") + "\n"
    if pending:
        yield pending.decode("utf-8", "replace")


def _decode(message: Any) -> EngineEvent:
    if not isinstance(message, dict):
        return EngineEvent(message=str(message))
    if "error" in message or "errorDetail" in message:
        detail = message.get("errorDetail") or {}
        error = str(message.get("error") or detail.get("message") or "unknown error")
        return EngineEvent(message=error, error=error)
    aux = message.get("aux")
    if isinstance(aux, dict):
        if "ID" in aux:
            return EngineEvent(image_id=str(aux["ID"]))
        if "Digest" in aux:
            size = aux.get("Size")
            return EngineEvent(
                message=f"{aux.get('Tag', '')}: digest: {aux['Digest']}",
                digest=str(aux["Digest"]), size=int(size) if size is not None else None,
            )
    if "stream" in message:
        return EngineEvent(message=str(message["stream"]))
    status = message.get("status")
    layer = message.get("id")
    detail = message.get("progressDetail") or {}
    current = detail.get("current")
    total = detail.get("total")
    text = str(status or "")
    if layer and not current:
        text = f"{layer}: {text}"
    found = _PUSH_DIGEST.search(text)
    return EngineEvent(
        message=text if not current else "",
        layer=str(layer) if layer else None,
        status=str(status) if status else None,
        current=int(current) if current is not None else None,
        total=int(total) if total is not None else None,
        digest=found.group(1) if found else None,
        size=int(found.group(2)) if found else None,
    )


# -- Docker's shapes -> the seam's typed values -----------------------------------------

def build_params(options: BuildOptions, proxies: Mapping[str, str] | None = None
                 ) -> dict[str, Any]:
    """The query of ``POST /build`` for ``options`` (secrets are refused before): the
    SDK's arguments of the same build; the docker config's proxy variables are build
    arguments unless ``options`` set them."""
    buildargs = {**(proxies or {}), **options.buildargs}
    return {
        "q": False,
        "dockerfile": options.dockerfile,
        "nocache": not options.use_cache,
        "rm": options.remove_intermediate,
        "forcerm": options.remove_intermediate,
        "pull": options.pull,
        "buildargs": buildargs or None,
        "labels": dict(options.labels) or None,
        "target": options.target,
        "platform": str(options.platform) if options.platform else None,
    }


def _time(value: Any) -> datetime | None:
    """Docker's RFC 3339 times (nanoseconds, ``Z``); its zero time means "never"."""
    if not value or not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _command(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _strings(value)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(name for name in _strings(value) if name and "<none>" not in name)


def image_info_from_inspect(inspect: Mapping[str, Any]) -> ImageInfo:
    """An :class:`ImageInfo` from ``docker inspect`` of an image."""
    config = inspect.get("Config") or {}
    rootfs = inspect.get("RootFS") or {}
    return ImageInfo(
        id=str(inspect.get("Id", "")),
        names=_names(inspect.get("RepoTags")),
        digests=_names(inspect.get("RepoDigests")),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        env=_strings(config.get("Env")),
        architecture=str(inspect.get("Architecture") or ""),
        os=str(inspect.get("Os") or ""),
        variant=str(inspect["Variant"]) if inspect.get("Variant") else None,
        created=_time(inspect.get("Created")),
        layers=_strings(rootfs.get("Layers")),
        size=int(inspect.get("Size") or 0),
        user=str(config.get("User") or ""),
        workdir=str(config.get("WorkingDir") or ""),
        entrypoint=_command(config.get("Entrypoint")),
        cmd=_command(config.get("Cmd")),
    )


def image_info_from_list_entry(entry: Mapping[str, Any]) -> ImageInfo:
    """An :class:`ImageInfo` from a ``docker images`` entry (no config, no layers)."""
    created = entry.get("Created")
    return ImageInfo(
        id=str(entry.get("Id", "")),
        names=_names(entry.get("RepoTags")),
        digests=_names(entry.get("RepoDigests")),
        labels={str(k): str(v) for k, v in (entry.get("Labels") or {}).items()},
        created=(datetime.fromtimestamp(int(created)).astimezone()
                 if isinstance(created, int) else None),
        size=int(entry.get("Size") or 0),
    )


_STATUSES: dict[str, Literal["created", "running", "exited", "dead"]] = {
    "created": "created", "running": "running", "restarting": "running",
    "paused": "running", "removing": "exited", "exited": "exited", "dead": "dead",
}


def container_state_from_inspect(inspect: Mapping[str, Any]) -> ContainerState:
    """A :class:`ContainerState` from ``docker inspect`` of a container."""
    state = inspect.get("State") or {}
    status = _STATUSES.get(str(state.get("Status") or "").lower(), "unknown")
    exit_code = state.get("ExitCode")
    finished = status in ("exited", "dead")
    return ContainerState(
        id=str(inspect.get("Id", "")),
        image=str(inspect.get("Image") or ""),
        status=status,  # type: ignore[arg-type]
        exit_code=int(exit_code) if finished and exit_code is not None else None,
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        started_at=_time(state.get("StartedAt")),
        finished_at=_time(state.get("FinishedAt")),
    )
