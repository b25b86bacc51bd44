"""Test environment: container engine, throw-away registries, base image, engine cleanup.

Everything here works against the real engine configured by the environment
(``DOCKER_HOST`` etc., as understood by ``docker.from_env()``) and the CNCF
distribution registry binary (``docker-registry`` from Debian).  Nothing is
pulled from the internet: the base image is a busybox rootfs imported locally.

Several people may run the test suites against the same engine at the same
time, so the helpers never remove engine objects that existed before a
snapshot, and registries listen on free loopback ports only.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import docker
import docker.errors
import requests

from tests.support.tracker import CleanupReport, EngineSnapshot, Gone, RemovalFailed, Tracker

__all__ = [
    "BASE_IMAGE",
    "REGISTRY_USERNAME",
    "BaseImage",
    "CleanupReport",
    "EngineCleanupWarning",
    "EngineLeftoversError",
    "EngineLock",
    "EngineSnapshot",
    "EngineTracker",
    "EngineUnavailableError",
    "EnvError",
    "Registry",
    "RunningRegistry",
    "build_rootfs_tarball",
    "check_stream",
    "docker_config_json",
    "engine_client",
    "engine_lock",
    "ensure_base_image",
    "ensure_engine",
    "fail_on_leftovers",
    "find_free_port",
    "push_base_image",
    "split_reference",
    "start_registry",
    "warn_leftovers",
]

BASE_IMAGE = "atomic-reactor-test/busybox:latest"
"""Local name of the busybox base image used by the integration tests."""

REGISTRY_USERNAME = "tester"
"""User name accepted by registries started with ``auth=True``."""

REGISTRY_BINARY_ENV = "ATOMIC_REACTOR_TEST_REGISTRY_BINARY"
"""Environment variable overriding the path of the ``docker-registry`` binary."""

ENGINE_LOCK_TIMEOUT_ENV = "ATOMIC_REACTOR_TEST_LOCK_TIMEOUT"
"""Seconds to wait for another test session's engine lock (default 900)."""

BUSYBOX_ENV = "ATOMIC_REACTOR_TEST_BUSYBOX"
"""Environment variable pointing to a statically linked busybox binary to use."""

REQUIRED_APPLETS = (
    "sh", "ls", "cat", "echo", "mkdir", "rm", "cp", "mv", "ln", "touch", "chmod", "chown",
    "id", "sleep", "true", "false", "test", "env", "stat", "find", "tar", "gzip", "head",
    "tail", "sed", "grep", "wc", "dd", "printf", "pwd", "sort", "uname", "whoami",
)  # fmt: skip
"""Applets the base image must provide (every other applet busybox has is linked too)."""

_ENGINE_TIMEOUT = 120
_ENGINE_LOCK_TIMEOUT = 900.0
_REGISTRY_STARTUP_TIMEOUT = 30.0
_REGISTRY_PORT_ATTEMPTS = 5
_BCRYPT_ROUNDS = 4  # the registry checks the hash on every request: keep it cheap
_ROOTFS_MTIME = 1_700_000_000  # fixed timestamp so the rootfs tarball is reproducible


class EnvError(RuntimeError):
    """The test environment cannot be set up (missing tool, engine error, ...)."""


class EngineUnavailableError(EnvError):
    """No container engine answers."""


class EngineCleanupWarning(UserWarning):
    """Some engine objects created by a benchmark could not be removed."""


class EngineLeftoversError(AssertionError):
    """A test left engine objects behind that could not be removed: the test fails."""


# --------------------------------------------------------------------------- engine


def engine_client(timeout: int = _ENGINE_TIMEOUT) -> docker.DockerClient:
    """A docker SDK client for the engine configured by the environment."""
    return docker.from_env(timeout=timeout)


def _engine_location() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def ensure_engine() -> None:
    """Raise :class:`EngineUnavailableError` unless a container engine answers a ping."""
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise EngineUnavailableError(
            f"no container engine answers at {_engine_location()} ({exc}); "
            "run `bash scripts/ensure-env.sh` (as root) to install and start dockerd"
        ) from exc


def check_stream(stream: Iterable[Any], action: str) -> list[dict[str, Any]]:
    """Consume a decoded engine progress stream; raise :class:`EnvError` on an error entry.

    ``stream`` may yield dicts (``decode=True``) or raw JSON lines (bytes or str).
    """
    entries: list[dict[str, Any]] = []
    for chunk in stream:
        for entry in _decode_stream_chunk(chunk):
            if entry.get("error") or entry.get("errorDetail"):
                detail = entry.get("errorDetail") or {}
                message = entry.get("error") or detail.get("message") or entry
                raise EnvError(f"{action} failed: {message}")
            entries.append(entry)
    return entries


def _decode_stream_chunk(chunk: Any) -> list[dict[str, Any]]:
    if isinstance(chunk, dict):
        return [chunk]
    text = chunk.decode() if isinstance(chunk, bytes) else str(chunk)
    entries: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = {"status": line}
        entries.append(value if isinstance(value, dict) else {"status": value})
    return entries


def split_reference(name: str) -> tuple[str, str]:
    """Split ``[registry/]repo[:tag]`` into ``(repository, tag)``; the tag defaults to latest."""
    if "@" in name:
        raise ValueError(f"digest references are not supported here: {name!r}")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


def _image_id(api: docker.APIClient, ref: str) -> str | None:
    try:
        return str(api.inspect_image(ref)["Id"])
    except docker.errors.NotFound:
        return None


# --------------------------------------------------------------------------- registries


@dataclass(frozen=True)
class Registry:
    """A registry reachable over plain HTTP on the loopback interface."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    root: Path

    @property
    def address(self) -> str:
        """``HOST:PORT``, the registry part of image references."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def requires_auth(self) -> bool:
        return self.username is not None

    @property
    def auth_config(self) -> dict[str, str] | None:
        """``auth_config`` for the docker SDK's push/pull, or None for open registries."""
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password}

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """``auth`` argument for requests, or None for open registries."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)


class RunningRegistry:
    """A ``docker-registry serve`` subprocess; call :meth:`stop` (or use ``with``)."""

    def __init__(
        self,
        registry: Registry,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log_path: Path,
    ) -> None:
        self.registry = registry
        self.process = process
        self.workdir = workdir
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"RunningRegistry({self.registry.url}, pid={self.process.pid})"

    def __enter__(self) -> Registry:
        return self.registry

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the registry, wait for it, and remove its working directory."""
        _stop_process(self.process, timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _registry_binary() -> str:
    override = os.environ.get(REGISTRY_BINARY_ENV)
    if override:
        return override
    found = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )
    if found is None:
        raise EnvError(
            "docker-registry binary not found; run `bash scripts/ensure-env.sh` "
            "(Debian package docker-registry)"
        )
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child process
    """Ask the kernel to SIGTERM the child if the test process dies without cleaning up."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _registry_config(host: str, port: int, storage: Path, htpasswd: Path | None) -> str:
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"{host}:{port}", "secret": secrets.token_hex(16)},
        "health": {"storagedriver": {"enabled": False}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "atomic-reactor-test", "path": str(htpasswd)}}
    # JSON is valid YAML, and json.dumps quotes paths safely.
    return json.dumps(config, indent=2) + "\n"


def _probe_v2(url: str) -> int | None:
    """HTTP status of ``GET url/v2/``, or None if nothing answers yet."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{url}/v2/", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def start_registry(
    workdir: Path,
    auth: bool = False,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = _REGISTRY_STARTUP_TIMEOUT,
) -> RunningRegistry:
    """Start a distribution registry storing its data under ``workdir``.

    With ``auth=True`` the registry requires HTTP basic auth for user
    :data:`REGISTRY_USERNAME` and a random password (available as
    ``registry.password``; it is never printed).  ``workdir`` is removed by
    :meth:`RunningRegistry.stop`.
    """
    binary = _registry_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    username: str | None = None
    password: str | None = None
    htpasswd: Path | None = None
    if auth:
        username = REGISTRY_USERNAME
        password = secrets.token_urlsafe(24)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS))
        htpasswd = workdir / "htpasswd"
        fd = os.open(htpasswd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{username}:{hashed.decode()}\n")

    # The registry reads REGISTRY_* variables as config overrides: do not inherit any.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    config_path = workdir / "config.yml"
    log_path = workdir / "registry.log"
    problem = "not started"
    for _attempt in range(_REGISTRY_PORT_ATTEMPTS):
        port = find_free_port(host)
        config_path.write_text(_registry_config(host, port, storage, htpasswd))
        registry = Registry(host, port, username, password, workdir)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl()
            )
        running = RunningRegistry(registry, process, workdir, log_path)
        waited = _wait_for_registry(running, startup_timeout)
        if waited is None:
            return running
        problem = waited
        _stop_process(process)
        if "address already in use" not in running.log_tail().lower():
            break
    log_tail = running.log_tail()
    shutil.rmtree(workdir, ignore_errors=True)
    raise EnvError(f"could not start {binary}: {problem}\n{log_tail}".rstrip())


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def _wait_for_registry(running: RunningRegistry, timeout: float) -> str | None:
    """None once the registry answers as expected, else a description of the problem."""
    expected = 401 if running.registry.requires_auth else 200
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        if not running.running:
            return f"registry exited with status {running.process.returncode}"
        status = _probe_v2(running.registry.url)
        if status == expected:
            return None
        if status is not None and status != 503:
            return f"GET {running.registry.url}/v2/ answered {status}, expected {expected}"
        time.sleep(0.05)
    return f"registry did not answer within {timeout:.0f}s (last status: {status})"


def docker_config_json(registries: Iterable[Registry]) -> str:
    """A docker ``config.json`` holding basic auth for the given registries."""
    auths: dict[str, dict[str, str]] = {}
    for registry in registries:
        if registry.username is None or registry.password is None:
            continue
        token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
        auths[registry.address] = {"auth": token}
    return json.dumps({"auths": auths}, indent=2) + "\n"


# --------------------------------------------------------------------------- base image


@dataclass(frozen=True)
class BaseImage:
    """The busybox base image, available locally and pushed to a registry."""

    local: str
    """Local name, e.g. ``atomic-reactor-test/busybox:latest``."""
    registry: Registry
    """The registry the image was pushed to."""
    repo: str
    """Repository and tag without the registry, e.g. ``atomic-reactor-test/busybox:latest``."""
    image_id: str
    """Engine image id (``sha256:...``)."""

    @property
    def pushed(self) -> str:
        """The full reference in the registry: ``127.0.0.1:PORT/<repo>``."""
        return f"{self.registry.address}/{self.repo}"


def _dpkg_installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


def _busybox_binary(scratch: Path) -> Path:
    """A statically linked busybox: $ATOMIC_REACTOR_TEST_BUSYBOX, the installed
    busybox-static package, or one extracted from a freshly downloaded .deb."""
    override = os.environ.get(BUSYBOX_ENV)
    if override:
        return Path(override)
    if _dpkg_installed("busybox-static") and Path("/bin/busybox").is_file():
        return Path("/bin/busybox")
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise EnvError(
            f"no static busybox: install busybox-static or set {BUSYBOX_ENV}=/path/to/busybox"
        )
    download = subprocess.run(
        ["apt-get", "download", "busybox-static"],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
    )
    debs = sorted(scratch.glob("busybox-static_*.deb"))
    if download.returncode != 0 or not debs:
        raise EnvError(f"apt-get download busybox-static failed: {download.stderr.strip()}")
    extracted = scratch / "busybox-static"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extracted)], check=True)
    binary = extracted / "bin" / "busybox"
    if not binary.is_file():
        raise EnvError(f"{debs[0].name} has no bin/busybox")
    return binary


def _busybox_applets(busybox: Path) -> list[str]:
    result = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EnvError(f"{busybox} --list failed: {result.stderr.strip()}")
    applets = sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})
    missing = [name for name in REQUIRED_APPLETS if name not in applets]
    if missing:
        raise EnvError(f"{busybox} lacks applets: {', '.join(missing)}")
    return applets


def build_rootfs_tarball(busybox: Path, applets: Iterable[str] | None = None) -> bytes:
    """An uncompressed tarball of a minimal rootfs: /bin/busybox plus applet symlinks."""
    names = sorted(set(applets)) if applets is not None else _busybox_applets(busybox)
    buffer = io.BytesIO()

    def entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = _ROOTFS_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory, mode in (
            ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
            ("proc", 0o555), ("root", 0o700), ("sbin", 0o755), ("sys", 0o555),
            ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
            ("var", 0o755), ("var/tmp", 0o1777),
        ):  # fmt: skip
            tar.addfile(entry(directory, tarfile.DIRTYPE, mode))
        data = busybox.read_bytes()
        info = entry("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name in names:
            if name == "busybox" or "/" in name:
                continue
            link = entry(f"bin/{name}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):  # fmt: skip
            payload = text.encode()
            info = entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class EngineLock:
    """Inter-process lock serialising engine changes made by test sessions on this host.

    :class:`EngineTracker` decides what a test created by diffing engine state,
    which is only sound if no other test session changes the engine meanwhile;
    so the per-test window (snapshot .. cleanup), base-image import and push all
    hold this lock.  It is a Linux abstract-namespace socket: nothing is left on
    disk and the kernel releases it when the process dies.  Re-entrant within a
    process.  It does not protect against people using the engine by hand, nor
    sessions on other hosts sharing a remote ``DOCKER_HOST``.
    """

    def __init__(self, key: str, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        self._guard = threading.Lock()
        self._count = 0
        self._sock: socket.socket | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        with self._guard:
            if self._count:
                self._count += 1
                return
            deadline = time.monotonic() + self.timeout
            while not self._try_acquire():
                if time.monotonic() >= deadline:
                    raise EnvError(
                        f"another test session held the engine lock for over "
                        f"{self.timeout:.0f}s (set {ENGINE_LOCK_TIMEOUT_ENV} to wait longer)"
                    )
                time.sleep(0.05)
            self._count = 1

    def _try_acquire(self) -> bool:
        if sys.platform.startswith("linux"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(f"\0{self.key}")
            except OSError:
                sock.close()
                return False
            self._sock = sock
            return True
        # Elsewhere: an flock on a (persistent, empty) file in the temp directory.
        fd = os.open(Path(tempfile.gettempdir()) / f"{self.key}.lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        with self._guard:
            if self._count == 0:
                raise RuntimeError("EngineLock.release() without acquire()")
            self._count -= 1
            if self._count:
                return
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._count > 0

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


_ENGINE_LOCKS: dict[str, EngineLock] = {}
_ENGINE_LOCKS_GUARD = threading.Lock()


def engine_lock() -> EngineLock:
    """The process-wide :class:`EngineLock` for the engine named by ``DOCKER_HOST``."""
    digest = hashlib.sha256(_engine_location().encode()).hexdigest()[:16]
    key = f"atomic-reactor-test-engine-{digest}"
    timeout = float(os.environ.get(ENGINE_LOCK_TIMEOUT_ENV) or _ENGINE_LOCK_TIMEOUT)
    with _ENGINE_LOCKS_GUARD:
        lock = _ENGINE_LOCKS.get(key)
        if lock is None:
            lock = _ENGINE_LOCKS[key] = EngineLock(key, timeout)
        return lock


def ensure_base_image(name: str = BASE_IMAGE) -> str:
    """Id of the busybox base image ``name``, importing it first if the engine lacks it."""
    repository, tag = split_reference(name)
    client = engine_client()
    try:
        existing = _image_id(client.api, name)
        if existing is not None:
            return existing
        with engine_lock():
            existing = _image_id(client.api, name)
            if existing is not None:
                return existing
            with tempfile.TemporaryDirectory(prefix="atomic-reactor-busybox-") as scratch:
                rootfs = build_rootfs_tarball(_busybox_binary(Path(scratch)))
            output = client.api.import_image(
                src=rootfs,
                repository=repository,
                tag=tag,
                changes=['CMD ["/bin/sh"]'],
            )
            check_stream([output], f"docker import {name}")
            image_id = _image_id(client.api, name)
            if image_id is None:
                raise EnvError(f"docker import {name} reported success but no image exists")
            return image_id
    finally:
        client.close()


def push_base_image(registry: Registry, name: str = BASE_IMAGE) -> str:
    """Push the base image to ``registry`` as ``<address>/<repo>:<tag>``; return that reference.

    The registry-prefixed local tag is removed again afterwards.
    """
    ensure_base_image(name)
    repository, tag = split_reference(name)
    target = f"{registry.address}/{repository}"
    reference = f"{target}:{tag}"
    client = engine_client()
    try:
        with engine_lock():
            _push_tag(client.api, name, target, tag, registry)
    finally:
        client.close()
    return reference


def _push_tag(api: docker.APIClient, name: str, target: str, tag: str, registry: Registry) -> None:
    reference = f"{target}:{tag}"
    api.tag(name, target, tag, force=True)
    try:
        stream = api.push(
            target, tag=tag, stream=True, decode=True, auth_config=registry.auth_config
        )
        check_stream(stream, f"push {reference}")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_image(reference, noprune=True)


# --------------------------------------------------------------------------- cleanup


def _normalize_reference(ref: str) -> str:
    """The familiar form the engine lists references in (``busybox:latest``)."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if "@" in ref:
        return ref
    slash = ref.rfind("/")
    if ref.rfind(":") <= slash:
        ref += ":latest"
    return ref


def _api_message(exc: docker.errors.APIError) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


class EngineTracker(Tracker):
    """Remove the containers, tags and images a test created in dockerd.

    The docker side of :class:`tests.support.tracker.Tracker`: :meth:`snapshot`
    records what exists; :meth:`cleanup` removes (only) what appeared since then,
    plus anything registered with :meth:`track_image` / :meth:`track_container`.
    ``protected`` references (and the images they point to) are never removed.

    With ``exclusive=True`` (the default) the :func:`engine_lock` is held from
    :meth:`snapshot` until :meth:`cleanup` (or :meth:`close`), so concurrent test
    sessions on this host cannot make their objects look like ours.
    """

    def __init__(
        self,
        client: docker.APIClient | None = None,
        *,
        protected: Iterable[str] = (),
        exclusive: bool = True,
    ) -> None:
        self._owns_client = client is None
        self.api: docker.APIClient = client if client is not None else engine_client().api
        super().__init__(protected=protected, lock=engine_lock() if exclusive else None)

    def close(self) -> None:
        """Release the engine lock if still held, and the client if we made it."""
        super().close()
        if self._owns_client:
            self.api.close()

    def state(self) -> EngineSnapshot:
        references: dict[str, str] = {}
        image_ids: set[str] = set()
        created: dict[str, int] = {}
        for image in self.api.images(all=True) or []:
            image_id = str(image["Id"])
            image_ids.add(image_id)
            created[image_id] = int(image.get("Created") or 0)
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                if not ref.startswith("<none>"):
                    references[ref] = image_id
        containers = frozenset(str(c["Id"]) for c in self.api.containers(all=True) or [])
        return EngineSnapshot(frozenset(image_ids), references, containers, created)

    def normalize(self, ref: str) -> str:
        return _normalize_reference(ref)

    def resolve(self, ref: str) -> str | None:
        return _image_id(self.api, ref)

    def remove_container(self, container_id: str) -> None:
        with self._errors(in_progress_is_gone=True):
            self.api.remove_container(container_id, force=True, v=True)

    def remove_reference(self, ref: str) -> None:
        with self._errors():
            self.api.remove_image(ref, noprune=True)

    def restore_reference(self, ref: str, image_id: str) -> None:
        repository, tag = split_reference(ref)
        try:
            self.api.tag(image_id, repository, tag, force=True)
        except docker.errors.APIError as exc:
            raise RemovalFailed(str(exc)) from exc

    def remove_image(self, image_id: str) -> None:
        with self._errors():
            self.api.remove_image(image_id, noprune=True)

    @staticmethod
    @contextlib.contextmanager
    def _errors(*, in_progress_is_gone: bool = False) -> Iterator[None]:
        try:
            yield
        except docker.errors.NotFound as exc:
            raise Gone(str(exc)) from exc
        except docker.errors.APIError as exc:
            message = _api_message(exc)
            if (in_progress_is_gone and getattr(exc, "status_code", None) == 409
                    and "in progress" in message):
                raise Gone(message) from exc  # someone (e.g. --rm) is already removing it
            raise RemovalFailed(message) from exc


def fail_on_leftovers(report: CleanupReport, context: str) -> None:
    """Raise :class:`EngineLeftoversError` if ``report`` lists leftovers (a test that
    leaves images, containers or tags behind fails)."""
    if not report.ok:
        raise EngineLeftoversError(f"{context}: left behind what could not be removed: "
                                   f"{report.summary()}")


def warn_leftovers(report: CleanupReport, context: str) -> None:
    """Emit an :class:`EngineCleanupWarning` if ``report`` lists leftovers."""
    if not report.ok:
        warnings.warn(
            f"{context}: could not remove everything: {report.summary()}",
            EngineCleanupWarning,
            stacklevel=2,
        )
