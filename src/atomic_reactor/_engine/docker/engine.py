"""The Docker Engine backend, over the Docker SDK for Python.

This is the only module that calls the Docker SDK (``errors.py`` imports its
exception types, on first use); every SDK or ``requests`` exception an SDK call
raises goes through :func:`atomic_reactor._engine.errors.docker_error`, which
translates it into the project's own types.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import docker
import docker.errors
import requests.exceptions

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
from atomic_reactor._engine.errors import docker_error, docker_unavailable, transfer_error
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
from atomic_reactor.errors import (
    ArchiveError,
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


def default_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


class DockerEngine:
    """A :class:`~atomic_reactor._engine.base.ContainerEngine` talking to dockerd."""

    name = "docker"
    #: dockerd's push is slower than ours; its legacy builder builds one thing at a time
    capabilities = EngineCapabilities(fast_push=False, parallel_builds=False)

    def __init__(self, base_url: str | None = None, timeout: int = 120, **kwargs: Any) -> None:
        self._base_url = base_url
        self.address = base_url or default_address()
        self.timeout = timeout
        self._kwargs = kwargs
        self._client: docker.APIClient | None = None
        self._lock = threading.Lock()
        # responses of streamed calls (build, pull, push) still open: reset() closes them
        self._responses: weakref.WeakSet[Any] = weakref.WeakSet()
        self._local = threading.local()

    # -- connection -----------------------------------------------------------------
    @property
    def client(self) -> docker.APIClient:
        """The SDK's low-level client, created on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> docker.APIClient:
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
            client = docker.APIClient(**kwargs)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise docker_unavailable(exc, self.address) from None
        client.hooks["response"].append(self._remember)
        request = client.request

        def request_with_timeout(method: str, url: str, **options: Any) -> Any:
            # the SDK reads pull streams without any timeout (a stalled registry hangs
            # the pull for ever): pull() asks for the engine timeout instead
            wanted = getattr(self._local, "timeout", None)
            if wanted is not None and options.get("timeout") is None:
                options["timeout"] = wanted
            return request(method, url, **options)

        client.request = request_with_timeout
        return client

    def _remember(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """requests hook: note each response, so an abandoned stream can be closed."""
        with self._lock:
            self._responses.add(response)
        self._local.response = response

    def reset(self) -> None:
        """Drop the connection (closing any stream in flight); reconnect on next use.

        Closing the connection is how an in-flight build, pull or push is cancelled:
        the engine stops the work when its client goes away (dockerd 20.10 kills and
        removes a legacy build's RUN container within a second). Closing the SDK
        client alone is not enough: a streamed response keeps its connection out of
        the pool, so each one is shut down here.
        """
        with self._lock:
            client, self._client = self._client, None
            responses = list(self._responses)
            self._responses = weakref.WeakSet()
        for response in responses:
            _shut(response)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        self.reset()

    def _call(self, action: str, func: Callable[[], T], streaming: bool = False) -> T:
        """Run an SDK call; translate its exceptions (``streaming``: reading a stream)."""
        try:
            return func()
        except Exception as exc:
            error = docker_error(action, exc, self, streaming)
            if error is None:
                raise
            raise error from None

    def _stream(
        self, action: str, open_stream: Callable[[], Iterator[Any]],
        error_type: Callable[[str], Exception] | None = None,
    ) -> Iterator[EngineEvent]:
        """Decode a JSON message stream into events; close the connection if abandoned."""
        finished = False
        response: Any = None
        try:
            try:
                self._local.response = None
                raw = self._call(action, open_stream)
                response = self._local.response
            except EngineError as exc:
                # a registry failure the engine reports before streaming (e.g. 404)
                if error_type is None or isinstance(exc, EngineUnavailable):
                    raise
                detail = str(exc).removeprefix(f"{action} failed: ").removeprefix(f"{action}: ")
                if "(timed out)" in detail:  # the engine waits for a stalled registry
                    detail = f"no progress in {self.timeout} s (timed out)"
                raise error_type(detail) from None
            while True:
                try:
                    message = self._call(action, lambda: next(raw, None), streaming=True)
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
            if not finished:
                # abandoned, cancelled or failed mid-way: close this stream's connection
                # so the engine stops the work (a build's RUN container, a pull, a push)
                if response is not None:
                    _shut(response)
                else:
                    self.reset()

    # -- images ---------------------------------------------------------------------
    def build(self, context_dir: str, tag: str, options: BuildOptions
              ) -> Iterator[EngineEvent]:
        if options.secrets:
            raise EngineConfigError(
                "the docker engine cannot mount build secrets (RUN --mount=type=secret); "
                "use --engine buildah")
        kwargs = build_kwargs(options)

        def open_stream() -> Iterator[Any]:
            return self.client.build(  # type: ignore[no-any-return]
                fileobj=stream_context(context_dir, options.dockerfile), custom_context=True,
                tag=tag, decode=True, **kwargs)

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
            self._call("inspecting container", lambda: self.client.inspect_container(
                container_id))
        except EngineUnavailable:
            raise
        except EngineError as exc:
            if "no such container" in str(exc).lower():
                return False
            raise
        return True

    def pull(self, reference: str, auth: RegistryAuth | None = None,
             options: TransferOptions | None = None) -> Iterator[EngineEvent]:
        # ``options.insecure``: dockerd decides by its own insecure-registries setting;
        # the tasker turns an HTTPS-vs-HTTP failure into a hint naming that setting
        auth_config = auth.as_docker_auth_config() if auth else None
        platform = str(options.platform) if options and options.platform else None

        def open_stream() -> Iterator[Any]:
            self._local.timeout = self.timeout  # no progress for that long: timed out
            try:
                return self.client.pull(  # type: ignore[no-any-return]
                    reference, stream=True, decode=True, auth_config=auth_config,
                    platform=platform)
            finally:
                self._local.timeout = None

        action = f"pulling {reference}"
        return self._stream(action, open_stream,
                            lambda msg: transfer_error("pull", action, reference, msg))

    def push(self, reference: str, auth: RegistryAuth | None = None,
             options: TransferOptions | None = None) -> Iterator[EngineEvent]:
        auth_config = auth.as_docker_auth_config() if auth else None

        def open_stream() -> Iterator[Any]:
            return self.client.push(  # type: ignore[no-any-return]
                reference, stream=True, decode=True, auth_config=auth_config)

        action = f"pushing {reference}"
        return self._stream(action, open_stream,
                            lambda msg: transfer_error("push", action, reference, msg))

    def tag(self, image: str, target: str, force: bool = False) -> None:
        repository, _, tag = target.rpartition(":")
        if "/" in tag or not repository:
            repository, tag = target, "latest"
        ok = self._call(f"tagging {image} as {target}",
                        lambda: self.client.tag(image, repository, tag=tag, force=force))
        if not ok:
            raise EngineError(f"tagging {image} as {target} failed")

    def inspect_image(self, image: str) -> dict[str, Any]:
        return self._call(
            f"inspecting image {image}", lambda: self.client.inspect_image(image))

    def image_info(self, image: str) -> ImageInfo:
        return image_info_from_inspect(self.inspect_image(image))

    def image_exists(self, image: str) -> bool:
        try:
            self.inspect_image(image)
        except ImageNotFound:
            return False
        return True

    def list_images(self, name: str | None = None) -> list[ImageInfo]:
        entries = self._call("listing images", lambda: self.client.images(name=name))
        return [image_info_from_list_entry(entry) for entry in entries]

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        self._call(f"removing image {image}",
                   lambda: self.client.remove_image(image, force=force, noprune=noprune))

    def save_image(self, image: str, format: ArchiveFormat = "docker-archive"
                   ) -> Iterator[bytes]:
        if format == "oci-archive":
            return _oci_archive(image, self.save_image(image))
        if format != "docker-archive":
            raise EngineConfigError(f"unknown archive format {format!r} "
                                    "(docker-archive or oci-archive)")
        action = f"saving image {image}"
        response = self._call(action, lambda: self.client.get_image(image))
        return self._chunks(action, iter(response))

    def _chunks(self, action: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Pass a byte stream through, translating errors raised while reading it."""
        finished = False
        try:
            while True:
                chunk = self._call(action, lambda: next(chunks, None), streaming=True)
                if chunk is None:
                    break
                yield chunk
            finished = True
        finally:
            if not finished:
                self.reset()

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        result = self._call("loading an image", lambda: list(self.client.load_image(data)))
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
        client = self.client

        def create() -> str:
            binds = {host: {"bind": path, "mode": mode}
                     for host, (path, mode) in spec.binds.items()}
            host_config = client.create_host_config(
                binds=binds or None, privileged=spec.privileged,
                cap_add=list(spec.cap_add) or None, cap_drop=list(spec.cap_drop) or None,
                security_opt=list(spec.security_opt) or None,
                network_mode=spec.network_mode, **dict(spec.host_extra),
            )
            created = client.create_container(
                spec.image, command=spec.command, name=spec.name,
                environment=dict(spec.environment) or None, labels=dict(spec.labels) or None,
                user=spec.user, working_dir=spec.working_dir, entrypoint=spec.entrypoint,
                volumes=[path for path, _ in spec.binds.values()] or None,
                host_config=host_config, **dict(spec.create_extra),
            )
            return str(created["Id"])

        return self._call(f"creating a container from {spec.image}", create)

    def start_container(self, container_id: str) -> None:
        self._call(f"starting container {container_id[:12]}",
                   lambda: self.client.start(container_id))

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        def wait() -> int:
            result = self.client.wait(container_id, timeout=timeout)
            return int(result["StatusCode"] if isinstance(result, dict) else result)

        return self._call(f"waiting for container {container_id[:12]}", wait)

    def container_logs(
        self, container_id: str, stderr: bool = True, follow: bool = True
    ) -> Iterator[str]:
        def open_logs() -> Any:
            return self.client.logs(container_id, stdout=True, stderr=stderr,
                                    stream=follow, follow=follow)

        action = f"reading logs of container {container_id[:12]}"
        logs = self._call(action, open_logs)
        if not follow:
            text = logs.decode("utf-8", "replace") if isinstance(logs, bytes) else str(logs)
            return iter(text.splitlines(keepends=True))
        chunks = iter(logs)

        def read() -> Iterator[bytes]:
            # a quiet container outlasts the read timeout: that, too, is an EngineError
            try:
                while True:
                    chunk = self._call(action, lambda: next(chunks, None), streaming=True)
                    if chunk is None:
                        return
                    yield chunk
            finally:
                with contextlib.suppress(Exception):
                    logs.close()

        return _lines(read())

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self._call(f"stopping container {container_id[:12]}",
                   lambda: self.client.stop(container_id, timeout=timeout))

    def kill_container(self, container_id: str) -> None:
        self._call(f"killing container {container_id[:12]}",
                   lambda: self.client.kill(container_id))

    def remove_container(self, container_id: str, force: bool = False) -> None:
        self._call(f"removing container {container_id[:12]}",
                   lambda: self.client.remove_container(container_id, force=force, v=True))

    def container_state(self, container_id: str) -> ContainerState:
        return container_state_from_inspect(self.inspect_container(container_id))

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        return self._call(
            f"inspecting container {container_id[:12]}",
            lambda: self.client.inspect_container(container_id))

    def commit_container(
        self,
        container_id: str,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: Sequence[str] | None = None,
    ) -> str:
        def commit() -> str:
            result = self.client.commit(container_id, repository=repository, tag=tag,
                                        message=message, changes=list(changes) if changes else None)
            return str(result["Id"])

        return self._call(f"committing container {container_id[:12]}", commit)

    def export_container(self, container_id: str) -> Iterator[bytes]:
        action = f"exporting container {container_id[:12]}"
        response = self._call(action, lambda: self.client.export(container_id))
        return self._chunks(action, iter(response))

    # -- engine -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return self._call("reading engine info", self.client.info)

    def version(self) -> dict[str, Any]:
        return self._call("reading engine version", self.client.version)


_BLOB_CHUNK = 1024 * 1024


def _oci_archive(image: str, saved: Iterator[bytes]) -> Iterator[bytes]:
    """An OCI image layout archive (``oci-archive``) of a ``docker save`` stream.

    dockerd 20.10 saves only its own layout; the save is unpacked once into a
    temporary directory and written out again as an OCI layout: the config as is, the
    layers as uncompressed OCI layers (a docker save's layer files are exactly the
    layers whose digests the config lists; each is checked while it is written).
    """
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


def _shut(response: Any) -> None:
    """Close a (streamed) response's connection at once, so the engine sees it go."""
    with contextlib.suppress(Exception):
        connection = getattr(response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


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

def build_kwargs(options: BuildOptions) -> dict[str, Any]:
    """The Docker SDK's ``build`` arguments for ``options`` (secrets are refused before)."""
    return {
        "dockerfile": options.dockerfile,
        "nocache": not options.use_cache,
        "rm": options.remove_intermediate,
        "forcerm": options.remove_intermediate,
        "buildargs": dict(options.buildargs),
        "labels": dict(options.labels) or None,
        "target": options.target,
        "pull": options.pull,
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
