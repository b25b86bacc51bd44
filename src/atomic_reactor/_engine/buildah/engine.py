"""The buildah backend: a daemonless :class:`~atomic_reactor._engine.base.ContainerEngine`.

Every operation runs the ``buildah`` command (there are no Python bindings):
``bud`` builds, ``pull``/``push`` transfer (``--tls-verify=false`` only for
registries marked insecure, credentials in a private auth file, never on a
command line), ``from``/``run``/``commit``/``rm`` make the containers plugins
run. Nothing here talks to a Docker daemon or imports the docker SDK.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from atomic_reactor._engine.base import (
    ArchiveFormat,
    BuildOptions,
    BuildSecret,
    ContainerSpec,
    ContainerState,
    EngineCapabilities,
    EngineEvent,
    ImageInfo,
    RegistryAuth,
    TransferOptions,
)
from atomic_reactor._engine.buildah import convert
from atomic_reactor._engine.buildah.digests import default_record
from atomic_reactor._engine.buildah.names import ListingCache
from atomic_reactor._engine.buildah.process import (
    CONTAINER_ID,
    DEBUG_LINE,
    Buildah,
    StorageConfig,
    is_run_noise,
    kill,
    terminate,
)
from atomic_reactor._engine.errors import buildah_error, registry_of
from atomic_reactor._reference import is_loopback_registry
from atomic_reactor._secrets import register_secret, write_private_file
from atomic_reactor.errors import (
    AtomicReactorError,
    EngineError,
    ImageNotFound,
    InputError,
    PushError,
)

logger = logging.getLogger(__name__)

__all__ = ["BuildahEngine"]

CHUNK = 1024 * 1024
#: a build step line, ``[2/3] STEP 1/4: FROM ...``: group 1 is the stage's step count
_STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP \d+/(\d+): ")
_PUSH_FORMATS = {"docker": "v2s2", "v2s2": "v2s2", "oci": "oci"}


def _private_dir(prefix: str) -> str:
    """A new 0700 directory for files that must not be readable by others."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o700)
    return path




class _ManifestQuery:
    """``skopeo inspect --raw`` of a reference, started now, read with :meth:`result`
    (empty bytes when it cannot be read). Loopback registries are asked without TLS
    verification at once (docker treats them as insecure too); another registry that
    answers plain HTTP is asked again so (buildah just reached it that way, so
    registries.conf marks it insecure, which skopeo's explicit default overrides)."""

    def __init__(self, reference: str, authfile: str, options: TransferOptions) -> None:
        self.reference = reference
        skopeo = shutil.which("skopeo")
        self._argv = [skopeo, "inspect", "--raw", "--authfile", authfile] if skopeo else []
        self._plain = options.insecure or is_loopback_registry(reference.split("/", 1)[0])
        self._process = self._start(self._plain)

    def _start(self, plain: bool) -> subprocess.Popen[bytes] | None:
        if not self._argv:
            return None
        argv = [*self._argv, *(["--tls-verify=false"] if plain else []),
                f"docker://{self.reference}"]
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            logger.debug("cannot run skopeo: %s", exc)
            return None

    def result(self, timeout: float = 60) -> bytes:
        process = self._process
        if process is None:
            return b""
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return b""
        if process.returncode != 0 and not self._plain and \
                b"HTTP response to HTTPS client" in err:
            self._plain = True
            self._process = self._start(True)
            return self.result(timeout)
        if process.returncode != 0:
            logger.debug("no manifest for %s: %s", self.reference,
                         err.decode("utf-8", "replace").strip())
            return b""
        return out

    def close(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()


#: what a manifest read accepts (the types a push writes, and lists)
_MANIFEST_ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


def _plain_manifest(registry: str, repo: str, reference: str) -> bytes | None:
    """Manifest ``reference`` (a tag or digest) of ``repo`` read over plain HTTP without
    credentials (a loopback or insecure registry; http.client, imported here, not
    requests): None for any other answer (TLS, a credentials challenge), which the
    caller then asks another way."""
    import http.client  # here: its email and ssl imports stay off the start of a build

    host, _, port = registry.rpartition(":") if registry.count(":") == 1 else (registry, "", "")
    connection = http.client.HTTPConnection(host, int(port) if port.isdigit() else 80,
                                            timeout=30)
    try:
        connection.request("GET", f"/v2/{repo}/manifests/{reference}",
                           headers={"Accept": _MANIFEST_ACCEPT})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        logger.debug("plain HTTP manifest read on %s failed: %s", registry, exc)
        return None
    finally:
        connection.close()
    return body if response.status == 200 else None


def _plain_registry(reference: str, auth: RegistryAuth | None,
                    options: TransferOptions) -> tuple[str, str, str] | None:
    """``(registry, repository, tag or digest)`` of ``reference`` when its manifest may be
    read over plain HTTP without credentials (no credentials given, a loopback or
    insecure registry named in it), else None."""
    first, slash, _ = reference.partition("/")
    if auth is not None or not slash or not ("." in first or ":" in first
                                             or first == "localhost"):
        return None
    if not (options.insecure or is_loopback_registry(first)):
        return None
    repository = convert.repository(reference)
    rest = reference[len(repository):]
    return first, repository[len(first) + 1:], rest[1:] if rest else "latest"


class _PlainManifestRead:
    """:func:`_plain_manifest` in a thread (:attr:`thread`, for the caller to start);
    :meth:`result` waits for it."""

    def __init__(self, registry: str, repo: str, reference: str) -> None:
        self._body: bytes | None = None
        self.thread = threading.Thread(target=self._run, args=(registry, repo, reference),
                                       daemon=True, name="buildah-manifest")

    def _run(self, registry: str, repo: str, reference: str) -> None:
        self._body = _plain_manifest(registry, repo, reference)

    def result(self, timeout: float = 60) -> bytes | None:
        self.thread.join(timeout)
        return self._body


def _manifest_size(reference: str, digest: str, auth: RegistryAuth | None,
                   options: TransferOptions) -> int | None:
    """The size of manifest ``digest`` in ``reference``'s repository, read from the
    registry with the credentials of the push (None when it cannot be read, or its bytes
    do not have that digest)."""
    repository = convert.repository(reference)
    registry, _, repo = repository.partition("/")
    if registry == "docker.io":
        registry = "registry-1.docker.io"
        repo = repo if "/" in repo else f"library/{repo}"
    if _plain_registry(reference, auth, options) is not None:
        body = _plain_manifest(registry, repo, digest)
        if body is not None and "sha256:" + hashlib.sha256(body).hexdigest() == digest:
            return len(body)
    from atomic_reactor._registry.client import RegistryClient  # imports requests
    from atomic_reactor._retry import RetryPolicy

    try:
        with RegistryClient(registry, insecure=options.insecure, auth=auth,
                            retry=RetryPolicy(attempts=1), timeout=60) as client:
            client.auth = auth  # the push's credentials or none, as buildah had them
            return client.get_manifest_raw(repo, digest).size
    except (AtomicReactorError, OSError, ValueError) as exc:
        logger.debug("no manifest size for %s@%s: %s", reference, digest, exc)
        return None


class _Background:
    """``func()`` in a thread of its own (in the caller's context: its log lines go
    to the same build log); :meth:`result` waits for it (None if it raised one of the
    project's errors)."""

    def __init__(self, func: Callable[[], dict[str, Any]]) -> None:
        self._value: dict[str, Any] | None = None
        self._func = func
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True,
                                        name="buildah-inspect")
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(AtomicReactorError):
            self._value = self._func()

    def result(self) -> dict[str, Any] | None:
        self._thread.join()
        return self._value


def _authfile(directory: str, auth: RegistryAuth | None, reference: str) -> str:
    auths: dict[str, dict[str, str]] = {}
    if auth is not None:
        registry = auth.registry or reference.split("/", 1)[0]
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")
        auths[registry] = {"auth": token}
    content = json.dumps({"auths": auths})
    return write_private_file(os.path.join(directory, "auth.json"), content)


@dataclass
class _Outcome:
    """How a streamed buildah process ended (for a build: the caller decides)."""

    returncode: int | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=400))
    #: working containers a build made (from its debug output)
    containers: list[str] = field(default_factory=list)


@dataclass
class _Run:
    """A container this engine made with ``buildah from``, and its ``buildah run``."""

    id: str
    name: str
    image: str
    spec: ContainerSpec
    argv: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    #: (from stderr?, text) in the order the lines came
    output: list[tuple[bool, str]] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    error: str = ""

    @property
    def done(self) -> bool:
        return self.process is not None and self.process.poll() is not None and \
            not any(reader.is_alive() for reader in self.readers)


class BuildahEngine:
    """Images and containers in buildah's storage (``root``/``runroot``/``storage_driver``).

    :param isolation: how ``RUN`` steps and containers are isolated: ``chroot`` (the
        default; works in unprivileged containers), ``oci`` (runc) or ``rootless``
    :param push_format: manifest type pushed: ``docker`` (Docker schema 2, like the
        docker engine; the default) or ``oci``
    :param binary: the buildah executable (default: ``buildah`` in PATH)

    Each also comes from ``ATOMIC_REACTOR_BUILDAH_<NAME>`` (``ROOT``, ``RUNROOT``,
    ``STORAGE_DRIVER``, ``STORAGE_OPTS``, ``ISOLATION``, ``PUSH_FORMAT``).
    Docker-only options (``base_url``, ``timeout``) are accepted and ignored.
    """

    name = "buildah"
    #: buildah's push compresses and uploads fast, but ours, reading the storage directly
    #: (save_image, .storage), is faster to one registry and more (buildah compresses again
    #: per registry: bench/push_fanout.py --buildah); its builds are processes of their
    #: own, several platforms' at a time (measured: bench/multiplatform.py; Docker 20.10
    #: builds one after the other)
    capabilities = EngineCapabilities(fast_push=True, parallel_builds=True, direct_save=True)

    def __init__(
        self,
        root: str | None = None,
        runroot: str | None = None,
        storage_driver: str | None = None,
        *,
        storage_opts: Sequence[str] | None = None,
        isolation: str | None = None,
        push_format: str | None = None,
        binary: str | None = None,
        base_url: str | None = None,
        timeout: int | None = None,
        **ignored: Any,
    ) -> None:
        del base_url, timeout
        if ignored:
            logger.debug("buildah engine: ignoring options %s", ", ".join(sorted(ignored)))
        self.storage = StorageConfig.from_env(root, runroot, storage_driver, storage_opts,
                                              isolation)
        wanted = push_format or os.environ.get("ATOMIC_REACTOR_BUILDAH_PUSH_FORMAT") or "docker"
        if wanted not in _PUSH_FORMATS:
            raise InputError(f"buildah push format {wanted!r} is not one of docker, oci")
        self.push_format = _PUSH_FORMATS[wanted]
        #: names and digests of images (``buildah images``) while our commands keep them
        self._listings = ListingCache()
        self.buildah = Buildah(self.storage, binary, observer=self._listings.ran)
        self.address = self.storage.describe()
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        #: repository -> manifest digest, for what this process pushed
        self._pushed: dict[str, str] = {}
        #: what pulls and pushes (of any process) learned: (image id, repo) -> digest
        self._digests = default_record(self.storage.root)
        #: image id -> ``buildah inspect`` (an image's configuration never changes)
        self._inspected: dict[str, dict[str, Any]] = {}
        #: readings of an image under way in the background (see _prefetch), and those
        #: of them not started yet (until the next buildah command runs)
        self._prefetching: list[threading.Thread] = []
        self._deferred: list[threading.Thread] = []

    # -- streamed operations ------------------------------------------------------------
    def _stream(self, action: str, args: list[str], outcome: _Outcome, *, kind: str,
                reference: str | None, output: str | None = None) -> Iterator[str]:
        """Run buildah, yielding its output lines; end it (and its group) if abandoned.

        A failing pull or push raises its translated error; for a build the return
        code and the last lines are left in ``outcome`` for the caller. For a build
        (run with ``--log-level=debug``) the debug lines are not yielded: they are
        read for the ids of the working containers it makes, which are removed when
        the build is cancelled or killed. With ``output`` (a new file's path) buildah
        writes there and the lines are followed from the file (see
        :meth:`~atomic_reactor._engine.buildah.process.Buildah.follow`). Once buildah
        runs, the background work deferred till then starts (:meth:`_defer`).
        """
        if output is None:
            process = self.buildah.popen(*args)
            lines = self.buildah.lines(process)
        else:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as sink:
                process = self.buildah.popen(*args, stdout=sink)
            lines = self.buildah.follow(process, output)
        self._start_deferred()
        finished = False
        try:
            for raw in lines:
                line = raw
                if kind == "build" and "level=debug" in raw:
                    line = self._debug_lines(raw, outcome)
                    if not line:
                        continue
                outcome.tail.append(line)
                yield line
            process.wait()
            finished = True
            outcome.returncode = process.returncode
            self.buildah.ran(args, process.returncode == 0)
            if process.returncode != 0 and kind != "build":
                raise buildah_error(action, "".join(outcome.tail), kind=kind, reference=reference)
        finally:
            if not finished:
                logger.info("%s: stopping buildah (pid %d)", action, process.pid)
                terminate(process)
                self.buildah.ran(args, False)
            close = getattr(lines, "close", None)
            if close is not None:
                close()
            if process.stdout is not None:
                process.stdout.close()
            if outcome.containers and (not finished or process.returncode != 0):
                self._reap(outcome.containers)

    @staticmethod
    def _debug_lines(line: str, outcome: _Outcome) -> str:
        """``line`` without buildah's debug messages; note the containers they name."""
        def note(found: re.Match[str]) -> str:
            named = CONTAINER_ID.match(found.group(1).strip('"'))
            if named:
                outcome.containers.append(named.group(1))
            return ""

        return DEBUG_LINE.sub(note, line)

    def _container_ids(self) -> set[str]:
        try:
            listed = json.loads(self.buildah.run("listing containers", "containers", "--json")
                                or "null")
        except (EngineError, ValueError):
            return set()
        return {str(entry.get("id")) for entry in listed or () if isinstance(entry, dict)}

    def _reap(self, containers: list[str], why: str = "of the cancelled build") -> None:
        """Remove the working containers of a build that ended early, if still there."""
        present = self._container_ids()
        for container in containers:
            if container in present:
                logger.info("removing working container %s %s", container[:12], why)
                with contextlib.suppress(EngineError):
                    self.buildah.run("removing a working container", "rm", container)

    # -- images -----------------------------------------------------------------------------
    def build(self, context_dir: str, tag: str, options: BuildOptions) -> Iterator[EngineEvent]:
        scratch = _private_dir("atomic-reactor-buildah-")
        iidfile = os.path.join(scratch, "iid")
        args = ["--log-level=debug", "bud", "--isolation", self.storage.isolation,
                "--format", "docker", "--identity-label=false", "--iidfile", iidfile,
                "-t", tag]
        if options.dockerfile:
            dockerfile = options.dockerfile
            if not os.path.isabs(dockerfile):
                dockerfile = os.path.join(context_dir, dockerfile)
            args += ["-f", dockerfile]
        if options.use_cache:
            args.append("--layers")
        else:
            args.append("--no-cache")
        if not options.remove_intermediate:
            args += ["--rm=false", "--force-rm=false"]
        args.append("--pull-always" if options.pull else "--pull=false")
        for key, value in options.buildargs.items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in options.labels.items():
            args += ["--label", f"{key}={value}"]
        if options.target:
            args += ["--target", options.target]
        for secret in options.secrets:
            args += ["--secret", self._secret_arg(secret)]
        if options.platform is not None:
            args += ["--platform", str(options.platform)]
        if options.timestamp is not None:
            args += ["--timestamp", str(int(options.timestamp))]
        args.append(context_dir)
        return self._build_events(tag, args, iidfile, scratch)

    @staticmethod
    def _secret_arg(secret: BuildSecret) -> str:
        """``--secret`` value; the secret's value is registered so output masks it (read
        here only when the build request did not read and register it already)."""
        secret_id, src, env = secret.id, secret.src, secret.env
        if secret.registered and (src or env):
            return f"id={secret_id},src={src}" if src else f"id={secret_id},env={env}"
        if src:
            try:
                with open(src, encoding="utf-8", errors="replace") as handle:
                    register_secret(handle.read().strip() or None)
            except OSError as exc:
                raise InputError(f"build secret {secret_id!r}: cannot read {src} "
                                 f"({exc.strerror})") from None
            return f"id={secret_id},src={src}"
        if env:
            value = os.environ.get(env)
            if value is None:
                raise InputError(f"build secret {secret_id!r}: environment variable {env} "
                                 "is not set")
            register_secret(value)
            return f"id={secret_id},env={env}"
        raise InputError(f"build secret {secret_id!r} has neither src nor env")

    def _build_events(self, tag: str, args: list[str], iidfile: str, scratch: str
                      ) -> Iterator[EngineEvent]:
        action = f"building {tag}"
        outcome = _Outcome()
        image_id = ""
        steps = False  # buildah printed its steps
        lone_from = False  # a stage of only its FROM (whose container buildah keeps)
        try:
            for line in self._stream(action, args, outcome, kind="build", reference=None,
                                     output=os.path.join(scratch, "output")):
                if "STEP " in line:
                    step = _STEP.search(line)
                    if step is not None:
                        steps = True
                        lone_from = lone_from or step.group(1) == "1"
                yield EngineEvent(message=line)
            if outcome.returncode != 0:
                error = buildah_error(action, "".join(outcome.tail))
                yield EngineEvent(error=error.message.removeprefix(f"{action} failed: "))
                return
            with contextlib.suppress(OSError), open(iidfile, encoding="ascii") as handle:
                image_id = handle.read().strip()
            if image_id:
                # the image has the build's tags (a push of one sends it, a tag to one
                # is not needed); read it for what comes next while that runs
                self._listings.note_built(image_id, [tag])
                self._prefetch(image_id)
            if outcome.containers and "--rm=false" not in args and (lone_from or not steps):
                # buildah 1.28 keeps the working container of a stage that has nothing
                # after its FROM (a Dockerfile of only FROM lines) even with --rm: its
                # "STEP 1/1: FROM"; other stages' containers are gone (no listing asked)
                self._reap(outcome.containers, "buildah left after the build")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not image_id:
            image_id = self.image_info(tag).id
        if not image_id.startswith("sha256:"):
            image_id = f"sha256:{image_id}"
        yield EngineEvent(message=f"Successfully built {image_id[7:19]}\n", image_id=image_id)

    def _transfer_args(self, verb: str, auth: RegistryAuth | None, options: TransferOptions,
                       reference: str) -> tuple[list[str], str]:
        scratch = _private_dir(f"atomic-reactor-buildah-{verb}-")
        args = [verb, "--retry", "0"]
        if options.insecure:
            args.append("--tls-verify=false")
        # always a private auth file: the credentials atomic-reactor resolved (docker
        # config, secret paths) or none; buildah's own look-up is not consulted
        args += ["--authfile", _authfile(scratch, auth, reference)]
        return args, scratch

    def _transfer_events(self, verb: str, action: str, args: list[str], reference: str,
                         scratch: str) -> Iterator[EngineEvent]:
        final = "Pull complete" if verb == "pull" else "Pushed"
        outcome = _Outcome()
        try:
            yield from self._transfer_lines(
                self._stream(action, args, outcome, kind=verb, reference=reference), final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _transfer_lines(lines: Iterator[str], final: str) -> Iterator[EngineEvent]:
        layers: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("Copying blob "):
                rest = text[len("Copying blob "):]
                digest = rest.split()[0].removeprefix("sha256:")
                layer = digest[:12]
                if "skipped" in rest:
                    yield EngineEvent(message=line, layer=layer, status="Already exists")
                else:
                    layers.append(layer)
                    yield EngineEvent(message=line, layer=layer, status="Copying")
                continue
            if text.startswith("Writing manifest"):
                for layer in layers:
                    yield EngineEvent(layer=layer, status=final)
                layers = []
            yield EngineEvent(message=line)

    def pull(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        args, scratch = self._transfer_args("pull", auth, options, reference)
        if options.platform is not None:
            args += ["--platform", str(options.platform)]
        args.append(reference)
        return self._pull_events(reference, args, scratch, options, auth)

    def _pull_events(self, reference: str, args: list[str], scratch: str,
                     options: TransferOptions, auth: RegistryAuth | None
                     ) -> Iterator[EngineEvent]:
        authfile = args[args.index("--authfile") + 1]
        outcome = _Outcome()
        digest = reference.split("@", 1)[1] if "@" in reference else ""
        # the manifest digest the registry has for the tag (what docker records as the
        # RepoDigest of a pull: for a multi-platform tag the list's, which buildah's
        # storage does not show), asked while buildah pulls: one plain HTTP GET where
        # that can answer (see _plain_registry), else (or when it did not) skopeo
        plain = _plain_registry(reference, auth, options) if not digest else None
        read = _PlainManifestRead(*plain) if plain is not None else None
        if read is not None:
            self._defer(read.thread)
        query = None if digest or read is not None else \
            _ManifestQuery(reference, authfile, options)
        try:
            lines = self._stream(f"pulling {reference}", args, outcome, kind="pull",
                                 reference=reference)
            yield from self._transfer_lines(lines, "Pull complete")
            if read is not None:
                body = read.result()
                if body is not None:
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                else:
                    query = _ManifestQuery(reference, authfile, options)
            if query is not None:
                raw = query.result()
                digest = "sha256:" + hashlib.sha256(raw).hexdigest() if raw else ""
        finally:
            if query is not None:
                query.close()
            shutil.rmtree(scratch, ignore_errors=True)
        # buildah prints the id of the image it pulled last
        pulled = next((line.strip() for line in reversed(outcome.tail)
                       if re.fullmatch(r"[0-9a-f]{64}", line.strip())), "")
        if pulled:
            # for the results; the build needs none of it
            self._prefetch(pulled, deferred=True)
        if digest:
            self._pushed[convert.repository(reference)] = digest
            self._digests.remember(pulled, convert.repository(reference), digest)
            yield EngineEvent(message=f"Digest: {digest}\n", digest=digest)
        if pulled:
            # the pulled image, and its digest where image_info reports that one for the
            # reference's repository (see convert.shown_as_is): the puller needs no
            # image_info now
            yield EngineEvent(image_id=f"sha256:{pulled}",
                              digest=digest if digest and convert.shown_as_is(reference)
                              else None)

    def push(self, reference: str, auth: RegistryAuth | None, options: TransferOptions
             ) -> Iterator[EngineEvent]:
        args, scratch = self._transfer_args("push", auth, options, reference)
        digestfile = os.path.join(scratch, "digest")
        # the image this process named so, if it did (not what another process may
        # have given the name since)
        source = self._listings.named(reference) or convert.qualified(reference)
        args += ["--format", self.push_format, "--digestfile", digestfile,
                 source, f"docker://{reference}"]
        return self._push_events(reference, args, scratch, digestfile, options, auth)

    def _push_events(self, reference: str, args: list[str], scratch: str, digestfile: str,
                     options: TransferOptions, auth: RegistryAuth | None
                     ) -> Iterator[EngineEvent]:
        digest = ""
        size: int | None = None
        outcome = _Outcome()
        try:
            lines = self._stream(f"pushing {reference}", args, outcome, kind="push",
                                 reference=reference)
            yield from self._transfer_lines(lines, "Pushed")
            with contextlib.suppress(OSError), open(digestfile, encoding="ascii") as handle:
                digest = handle.read().strip()
            if digest:
                # the manifest's size, as docker reports it (and a check of the digest):
                # one GET of the manifest buildah just wrote
                size = _manifest_size(reference, digest, auth, options)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not digest:
            raise PushError(f"pushing {reference}: buildah reported no manifest digest",
                            registry=registry_of(reference))
        repository = reference.split("@", 1)[0]
        slash, colon = repository.rfind("/"), repository.rfind(":")
        if colon > slash:
            repository = repository[:colon]
        self._pushed[repository] = digest
        # the image pushed: the one we named so (no extra buildah call), else the
        # listing at hand for the name
        known = args[-2] if args[-2] != convert.qualified(reference) else \
            str((self._listings.lookup(reference) or {}).get("id") or "")
        if known:
            self._digests.remember(known, repository, digest)
        tag = reference[len(repository) + 1:] or "latest"
        yield EngineEvent(message=f"{tag}: digest: {digest}"
                          + (f" size: {size}" if size is not None else "") + "\n",
                          digest=digest, size=size)

    def tag(self, image: str, target: str, force: bool = False) -> None:
        del force  # buildah moves an existing name, as docker's forced tag does
        if self._listings.named(target) == image.removeprefix("sha256:") or \
                self._listings.has_name(image, target):
            logger.debug("%s is already named %s", image, target)
            self._listings.note_named(image, target)
            return
        self.buildah.run(f"tagging {image} as {target}", "tag", convert.qualified(image), target)

    def _inspect(self, image: str) -> dict[str, Any]:
        output = self.buildah.run(f"inspecting image {image}", "inspect", "--type", "image",
                                  convert.qualified(image))
        try:
            loaded = json.loads(output)
        except ValueError:
            raise EngineError(f"inspecting image {image}: buildah printed no JSON") from None
        if not isinstance(loaded, dict):
            raise EngineError(f"inspecting image {image}: unexpected output")
        return loaded

    def _listed(self, image: str | None) -> list[dict[str, Any]]:
        if image is not None:
            known = self._listings.lookup(image)
            if known is not None:
                return [known]
        args = ["images", "--json", "--no-trunc"]
        if image is not None:
            args.append(convert.qualified(image))
        since = self._listings.generation()  # what our commands change meanwhile counts
        try:
            output = self.buildah.run("listing images", *args)
        except ImageNotFound:
            return []
        try:
            loaded = json.loads(output or "null")
        except ValueError:
            raise EngineError("listing images: buildah printed no JSON") from None
        entries = [entry for entry in loaded or () if isinstance(entry, dict)]
        self._listings.store(entries, since)
        return entries

    def _prefetch(self, image_id: str, *, deferred: bool = False) -> None:
        """Read ``image_id``'s listing and inspection in the background now, into the
        caches (an image just pulled or built: the results and plugins ask for it, but
        not before the next buildah command, which runs meanwhile). Whoever reads an
        image next waits for it (:meth:`_wait_prefetched`); a failure is left for that
        reader to meet again. ``deferred``: started later (:meth:`_defer`)."""
        context = contextvars.copy_context()

        def fetch() -> None:
            # any failure is met again by the reader; none may end the thread loudly
            try:
                if not self._read_stored(image_id):
                    self._fetch(image_id)
            except Exception as exc:
                logger.debug("background reading of %s failed: %s", image_id[:12], exc)

        thread = threading.Thread(target=context.run, args=(fetch,), daemon=True,
                                  name="buildah-prefetch")
        with self._lock:
            self._prefetching.append(thread)
        if deferred:
            self._defer(thread)
        else:
            thread.start()

    def _defer(self, thread: threading.Thread) -> None:
        """Start ``thread`` once the next buildah command runs (or when the readings
        are waited for), not now: its imports and reading would hold the GIL while
        this thread starts buildah."""
        with self._lock:
            self._deferred.append(thread)

    def _start_deferred(self) -> None:
        """Start the background readings that waited for a buildah command to run."""
        with self._lock:
            waiting, self._deferred = self._deferred, []
        for thread in waiting:
            thread.start()

    def _stored(self, image_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``image_id``'s listing entry and inspection read from the storage's files
        (as ``buildah images`` and ``buildah inspect`` give them: see
        :func:`convert.stored_inspect`), without a buildah process; None where they
        cannot be read or told to be the same."""
        from atomic_reactor._engine.buildah import storage

        try:
            reader = storage.ImageStorage(self.storage.root, self.storage.driver,
                                          self.storage.options)
            found = convert.stored_inspect(*reader.record(image_id))
        except (storage.StorageUnsupported, ImageNotFound) as exc:
            logger.debug("image %s: not read from the storage (%s)", image_id[:12], exc)
            return None
        if found is None:
            logger.debug("image %s: not read from the storage (not a shape read here)",
                         image_id[:12])
        return found

    def _read_stored(self, image_id: str) -> bool:
        """Put ``image_id``'s listing and inspection, read from the storage, in the
        caches (where buildah's would go); False where they were not read."""
        since = self._listings.generation()
        found = self._stored(image_id)
        if found is None:
            return False
        entry, inspect = found
        self._listings.store([entry], since)
        with self._lock:
            if len(self._inspected) > 256:
                self._inspected.clear()
            self._inspected[image_id.removeprefix("sha256:")] = inspect
        return True

    def _wait_prefetched(self) -> None:
        """Wait for the background readings of images (their results are in the caches)."""
        self._start_deferred()
        with self._lock:
            pending, self._prefetching = self._prefetching, []
        for thread in pending:
            thread.join()

    def _info_and_inspect(self, image: str) -> tuple[ImageInfo, dict[str, Any]]:
        """The image's names and digest (``buildah images``: they change) and its
        configuration (``buildah inspect``: fixed for an image id, so kept per id),
        after what was being read in the background."""
        self._wait_prefetched()
        return self._fetch(image)

    def _fetch(self, image: str) -> tuple[ImageInfo, dict[str, Any]]:
        """:meth:`_info_and_inspect` without waiting. When neither is known, both
        commands run at once (the inspection is used if it is of the image the
        listing found)."""
        early = None
        if self._listings.lookup(image) is None:
            with self._lock:
                known = image.removeprefix("sha256:") in self._inspected
            if not known:
                early = _Background(lambda: self._inspect(image))
        try:
            entries = self._listed(image)
        finally:
            found = early.result() if early is not None else None
        if not entries:
            raise ImageNotFound(f"inspecting image {image} failed: image not known")
        entry = entries[0]
        image_id = str(entry.get("id") or "").removeprefix("sha256:")
        with self._lock:
            inspect = self._inspected.get(image_id)
        if inspect is None:
            if found is not None and \
                    str(found.get("FromImageID") or "").removeprefix("sha256:") == image_id:
                inspect = found
            else:
                inspect = self._inspect(image_id or image)
            with self._lock:
                if len(self._inspected) > 256:
                    self._inspected.clear()
                self._inspected[image_id] = inspect
        names = [str(name) for name in entry.get("names") or ()]
        digest = str(entry.get("digest") or "")
        return convert.image_info(inspect, names, digest, self._known_digests(image_id)), \
            inspect

    def _known_digests(self, image_id: str) -> dict[str, str]:
        """``repository -> manifest digest`` for ``image_id``: what this process pulled
        or pushed (first), else what a pull or push of another process recorded."""
        return {**self._digests.for_image(image_id), **self._pushed}

    def image_info(self, image: str) -> ImageInfo:
        return self._info_and_inspect(image)[0]

    def inspect_image(self, image: str) -> dict[str, Any]:
        info, inspect = self._info_and_inspect(image)
        return convert.docker_image_inspect(inspect, info, self.storage.driver or "overlay")

    def image_exists(self, image: str) -> bool:
        try:
            self._inspect(image)
        except ImageNotFound:
            return False
        return True

    def list_images(self, name: str | None = None) -> list[ImageInfo]:
        wanted = convert.familiar(convert.qualified(name)) if name else None
        images = []
        self._wait_prefetched()
        recorded = self._digests.by_image()
        for entry in self._listed(None):
            image_id = str(entry.get("id") or "")
            if not image_id.startswith("sha256:"):
                image_id = f"sha256:{image_id}"
            names = tuple(convert.familiar(str(n)) for n in entry.get("names") or ())
            if wanted is None:
                images.append(ImageInfo(
                    id=image_id, names=names,
                    digests=convert.repo_digests(
                        names, str(entry.get("digest") or ""),
                        {**recorded.get(image_id.removeprefix("sha256:"), {}),
                         **self._pushed}),
                    created=convert.parse_time(entry.get("createdatraw")),
                    size=convert.parse_size(entry.get("size"))))
            elif any(convert.repository(n) == wanted or n == wanted for n in names):
                with contextlib.suppress(ImageNotFound):  # removed meanwhile
                    images.append(self.image_info(image_id))
        return images

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        del noprune  # buildah never removes other images with one
        args = ["rmi"] + (["--force"] if force else []) + [convert.qualified(image)]
        self.buildah.run(f"removing image {image}", *args)

    def save_image(self, image: str, format: ArchiveFormat = "docker-archive"
                   ) -> Iterator[bytes]:
        if format == "docker-archive":
            stream = self._storage_archive(image)
            if stream is not None:
                return stream
        scratch = _private_dir("atomic-reactor-buildah-save-")
        path = os.path.join(scratch, "image.tar")
        destination = f"{format}:{path}"
        if not image.startswith("sha256:") and not all(c in "0123456789abcdef" for c in image):
            destination += f":{convert.qualified(image)}"
        try:
            # an empty private auth file: an archive needs no credentials, and buildah
            # would refuse a DOCKER_CONFIG that names a missing directory
            authfile = _authfile(scratch, None, image)
            self.buildah.run(f"saving image {image}", "push", "-q", "--authfile", authfile,
                             convert.qualified(image), destination)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return self._read_and_remove(path, scratch)

    def read_image(self, image: str) -> Iterator[bytes]:
        return self.save_image(image)  # the storage read directly already, where it can

    def _storage_archive(self, image: str) -> Iterator[bytes] | None:
        """``image``'s docker-archive read straight from the storage's files (no copy of
        the layers written first: see :mod:`.storage`); None where that cannot be read."""
        from atomic_reactor._engine.buildah import storage

        by_id = image.startswith("sha256:") or all(c in "0123456789abcdef" for c in image)
        name = image if by_id else convert.qualified(image)
        try:
            reader = storage.ImageStorage(self.storage.root, self.storage.driver,
                                          self.storage.options)
            return reader.docker_archive(name, () if by_id else (name,))
        except (storage.StorageUnsupported, ImageNotFound) as exc:
            logger.debug("saving %s through buildah: storage not read directly (%s)",
                         image, exc)
            return None

    @staticmethod
    def _read_and_remove(path: str, scratch: str) -> Iterator[bytes]:
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def load_image(self, data: Iterator[bytes] | bytes) -> list[str]:
        scratch = _private_dir("atomic-reactor-buildah-load-")
        path = os.path.join(scratch, "image.tar")
        try:
            with open(path, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    for chunk in data:
                        out.write(chunk)
            tags, transport = _archive_tags(path)
            self._wait_prefetched()
            existing = {str(name) for entry in self._listed(None)
                        for name in entry.get("names") or ()}
            output = self.buildah.run("loading an image", "pull", "-q", f"{transport}:{path}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if not lines:
            raise EngineError("loading an image: buildah reported no image id")
        image_id = lines[-1].removeprefix("sha256:")
        loaded: list[str] = []
        for tag in tags:
            # an unqualified name in a docker archive is a local image, as docker has it
            # (buildah would call it docker.io/...): name it so, drop the docker.io alias
            name = tag
            for prefix in ("docker.io/library/", "docker.io/"):
                if name.startswith(prefix):
                    name = name[len(prefix):]
                    break
            local = convert.qualified(name)
            self.buildah.run(f"tagging {image_id[:12]} as {name}", "tag", image_id, local)
            loaded.append(convert.familiar(local))
        for entry in self._listed(image_id):
            for added in entry.get("names") or ():
                if str(added).startswith("docker.io/") and added not in existing and \
                        str(added) not in tags:
                    with contextlib.suppress(EngineError):
                        self.buildah.run(f"untagging {added}", "rmi", str(added))
        return list(dict.fromkeys(loaded)) or [f"sha256:{image_id}"]

    # -- containers -------------------------------------------------------------------------
    def create_container(self, spec: ContainerSpec) -> str:
        name = spec.name or f"atomic-reactor-{os.urandom(6).hex()}"  # (uuid imports platform)
        scratch = _private_dir("atomic-reactor-buildah-cid-")
        cidfile = os.path.join(scratch, "cid")
        try:
            self.buildah.run(f"creating a container from {spec.image}", "from", "--pull=false",
                             "--quiet", "--name", name, "--cidfile", cidfile,
                             convert.qualified(spec.image))
            with open(cidfile, encoding="ascii") as handle:
                container_id = handle.read().strip()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        image_id = ""
        with contextlib.suppress(EngineError):
            image_id = self.image_info(spec.image).id
        run = _Run(id=container_id, name=name, image=image_id or spec.image, spec=spec)
        with self._lock:
            self._runs[container_id] = run
        return container_id

    def _run_of(self, container_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(container_id)
            if run is None:
                for candidate in self._runs.values():
                    if candidate.name == container_id or candidate.id.startswith(container_id):
                        run = candidate
                        break
        if run is None:
            raise EngineError(f"container {container_id[:12]}: no such container made by "
                              "this buildah engine")
        return run

    def _command(self, run: _Run, config: dict[str, Any]) -> list[str]:
        spec = run.spec

        def split(value: Sequence[str] | str | None) -> list[str] | None:
            if value is None:
                return None
            return shlex.split(value) if isinstance(value, str) else list(value)

        entrypoint = split(spec.entrypoint)
        command = split(spec.command)
        if entrypoint is None:
            entrypoint = list(config.get("Entrypoint") or [])
            if command is None:
                command = list(config.get("Cmd") or [])
        argv = entrypoint + (command or [])
        if not argv:
            raise EngineError(f"starting container {run.id[:12]}: no command specified")
        return argv

    def start_container(self, container_id: str) -> None:
        run = self._run_of(container_id)
        if run.process is not None:
            return
        inspect = json.loads(self.buildah.run(f"inspecting container {run.id[:12]}",
                                              "inspect", "--type", "container", run.id))
        oci = inspect.get("OCIv1") if isinstance(inspect, dict) else None
        config = (oci or {}).get("config") or {}
        argv = self._command(run, config)
        env = [str(item) for item in config.get("Env") or ()]
        env += [f"{key}={value}" for key, value in run.spec.environment.items()]
        self._check_executable(run, argv[0], env, run.spec.working_dir or
                               str(config.get("WorkingDir") or "/"))
        args = ["run", "--isolation", self.storage.isolation]
        if run.spec.network_mode == "none" and self.storage.isolation != "chroot":
            args += ["--network", "none"]
        if run.spec.user:
            args += ["--user", run.spec.user]
        if run.spec.working_dir:
            args += ["--workingdir", run.spec.working_dir]
        for key, value in run.spec.environment.items():
            args += ["--env", f"{key}={value}"]
        for host, (path, mode) in run.spec.binds.items():
            args += ["--volume", f"{host}:{path}:{mode or 'rw'}"]
        for cap in ("ALL",) if run.spec.privileged else run.spec.cap_add:
            args += ["--cap-add", cap]
        for cap in run.spec.cap_drop:
            args += ["--cap-drop", cap]
        args += [run.id, "--", *argv]
        run.argv = argv
        run.process = self.buildah.popen(*args, stderr=subprocess.PIPE)
        run.started_at = datetime.now(UTC)
        for is_err, stream in ((False, run.process.stdout), (True, run.process.stderr)):
            reader = threading.Thread(target=self._read, args=(run, stream, is_err),
                                      name=f"buildah-run-{run.id[:12]}", daemon=True)
            run.readers.append(reader)
            reader.start()

    @staticmethod
    def _read(run: _Run, stream: Any, is_err: bool) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                if is_err and is_run_noise(line):
                    continue
                with run.changed:
                    run.output.append((is_err, line))
                    run.changed.notify_all()
        finally:
            stream.close()
            with run.changed:
                run.changed.notify_all()

    def _check_executable(self, run: _Run, program: str, env: list[str], workdir: str) -> None:
        """Docker refuses to start a container whose program is missing: so do we."""
        try:
            root = self.buildah.run(f"mounting container {run.id[:12]}", "mount",
                                    run.id).strip()
        except EngineError as exc:
            logger.debug("cannot check for %s in the container: %s", program, exc)
            return
        paths = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for item in env:
            if item.startswith("PATH="):
                paths = [p for p in item[5:].split(":") if p]
        candidates = [program] if "/" in program else [f"{p}/{program}" for p in paths]
        for candidate in candidates:
            absolute = candidate if candidate.startswith("/") else os.path.join(workdir, candidate)
            resolved = _resolve_in_root(root, absolute)
            if resolved is not None and os.path.isfile(resolved) and \
                    os.access(resolved, os.X_OK):
                return
        where = "" if "/" in program else " in $PATH"
        raise EngineError(f"starting container {run.id[:12]}: exec: \"{program}\": "
                          f"executable file not found{where}")

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        run = self._run_of(container_id)
        if run.process is None:
            raise EngineError(f"waiting for container {run.id[:12]}: it was never started")
        try:
            code = run.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"waiting for container {run.id[:12]}: still running after "
                              f"{timeout:g} s (timed out)") from None
        for reader in run.readers:
            reader.join()
        if run.finished_at is None:
            run.finished_at = datetime.now(UTC)
            run.exit_code = code if code >= 0 else 128 - code
        assert run.exit_code is not None
        return run.exit_code

    def container_logs(self, container_id: str, stderr: bool = True, follow: bool = True
                       ) -> Iterator[str]:
        run = self._run_of(container_id)
        if not follow:
            with run.changed:
                lines = [text for is_err, text in run.output if stderr or not is_err]
            return iter(lines)
        return self._follow(run, stderr)

    @staticmethod
    def _follow(run: _Run, stderr: bool) -> Iterator[str]:
        index = 0
        while True:
            with run.changed:
                while index >= len(run.output) and not (run.process is None or run.done):
                    run.changed.wait(0.5)
                pending = run.output[index:]
                index = len(run.output)
                finished = run.process is None or run.done
            for is_err, text in pending:
                if stderr or not is_err:
                    yield text
            if finished and index >= len(run.output):
                return

    def _signal(self, run: _Run, grace: float) -> None:
        if run.process is not None and run.process.poll() is None:
            if grace > 0:
                terminate(run.process, grace)
            else:
                kill(run.process)
            self.wait_container(run.id)

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self._signal(self._run_of(container_id), float(timeout))

    def kill_container(self, container_id: str) -> None:
        self._signal(self._run_of(container_id), 0.0)

    def remove_container(self, container_id: str, force: bool = False) -> None:
        with self._lock:
            run = self._runs.get(container_id)
        if run is not None and run.process is not None and run.process.poll() is None:
            if not force:
                raise EngineError(f"removing container {run.id[:12]} failed: it is running "
                                  "(stop it first or force the removal)")
            self._signal(run, 0.0)
        self.buildah.run(f"removing container {container_id[:12]}", "rm",
                         run.id if run else container_id)
        with self._lock:
            self._runs.pop(run.id if run else container_id, None)

    def container_state(self, container_id: str) -> ContainerState:
        try:
            run = self._run_of(container_id)
        except EngineError:
            if container_id in self._container_ids():
                return ContainerState(id=container_id, status="created")
            raise EngineError(f"container {container_id[:12]}: no such container") from None
        status: Literal["created", "running", "exited"] = "created"
        if run.process is not None:
            if run.process.poll() is None:
                status = "running"
            else:
                self.wait_container(run.id)
                status = "exited"
        return ContainerState(id=run.id, image=run.image, status=status,
                              exit_code=run.exit_code, started_at=run.started_at,
                              finished_at=run.finished_at, error=run.error)

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        state = self.container_state(container_id)
        run = self._runs.get(state.id)
        return convert.docker_container_inspect(state, run.name if run else state.id,
                                                run.argv if run else [])

    def commit_container(
        self,
        container_id: str,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: Sequence[str] | None = None,
    ) -> str:
        run_id = self._run_of(container_id).id if container_id in self._runs else container_id
        config_args = _config_changes(changes or ())
        if message:
            config_args += ["--history-comment", message]
        if config_args:
            self.buildah.run(f"configuring container {run_id[:12]}", "config", *config_args,
                             run_id)
        scratch = _private_dir("atomic-reactor-buildah-commit-")
        iidfile = os.path.join(scratch, "iid")
        args = ["commit", "-q", "--format", "docker", "--iidfile", iidfile, run_id]
        if repository:
            args.append(f"{repository}:{tag or 'latest'}")
        try:
            self.buildah.run(f"committing container {run_id[:12]}", *args)
            with open(iidfile, encoding="ascii") as handle:
                image_id = handle.read().strip()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"

    def export_container(self, container_id: str) -> Iterator[bytes]:
        run_id = self._run_of(container_id).id if container_id in self._runs else container_id
        root = self.buildah.run(f"mounting container {run_id[:12]}", "mount", run_id).strip()
        process = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", "-", "."],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        return self._export_stream(run_id, process)

    def _export_stream(self, run_id: str, process: subprocess.Popen[bytes]) -> Iterator[bytes]:
        assert process.stdout is not None and process.stderr is not None
        finished = False
        try:
            while chunk := process.stdout.read(CHUNK):
                yield chunk
            process.wait()
            finished = True
            if process.returncode not in (0, 1):  # 1: a file changed while read
                error = process.stderr.read().decode("utf-8", "replace").strip()
                raise EngineError(f"exporting container {run_id[:12]} failed: "
                                  f"{error.splitlines()[-1] if error else 'tar failed'}")
        finally:
            if not finished:
                terminate(process, 2.0)
            process.stdout.close()
            process.stderr.close()
            with contextlib.suppress(EngineError):
                self.buildah.run(f"unmounting container {run_id[:12]}", "umount", run_id)

    # -- the engine itself --------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        try:
            data = json.loads(self.buildah.run("reading engine info", "info"))
        except ValueError:
            raise EngineError("reading engine info: buildah printed no JSON") from None
        store = data.get("store") or {}
        host = data.get("host") or {}
        return {
            "Name": os.uname().nodename,
            "Architecture": os.uname().machine,
            "OSType": "linux",
            "OperatingSystem": str((host.get("Distribution") or {}).get("distribution") or ""),
            "NCPU": host.get("cpus"),
            "MemTotal": host.get("MemTotal"),
            "Driver": store.get("GraphDriverName"),
            "DockerRootDir": store.get("GraphRoot"),
            "RunRoot": store.get("RunRoot"),
            "Images": (store.get("ImageStore") or {}).get("number"),
            "Containers": (store.get("ContainerStore") or {}).get("number"),
            "Engine": "buildah",
        }

    def version(self) -> dict[str, Any]:
        output = self.buildah.run("reading engine version", "version")
        fields: dict[str, str] = {}
        for line in output.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        os_name, _, arch = fields.get("OS/Arch", "linux/").partition("/")
        return {"Version": fields.get("Version", ""), "GoVersion": fields.get("Go Version", ""),
                "Os": os_name, "Arch": arch, "ApiVersion": "", "Engine": "buildah",
                "Components": [{"Name": "buildah", "Version": fields.get("Version", "")}]}

    def close(self) -> None:
        """End the containers still running (their ``buildah run``) and wait for the
        background readings of images (short, and they change nothing)."""
        self._wait_prefetched()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            if run.process is not None and run.process.poll() is None:
                terminate(run.process, 2.0)


def _resolve_in_root(root: str, path: str, depth: int = 0) -> str | None:
    """``path`` inside the tree at ``root`` with its symbolic links followed within that
    tree (an absolute link target is taken from ``root``); None if it is not there."""
    if depth > 40:
        return None
    current = root
    parts = [part for part in path.split("/") if part and part != "."]
    for index, part in enumerate(parts):
        if part == "..":
            current = os.path.dirname(current) if current != root else root
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            rest = "/".join(parts[index + 1:])
            inside = current[len(root):] or "/"
            joined = target if target.startswith("/") else f"{inside}/{target}"
            return _resolve_in_root(root, f"{joined}/{rest}" if rest else joined, depth + 1)
        if not os.path.lexists(candidate):
            return None
        current = candidate
    return current


def _config_changes(changes: Sequence[str]) -> list[str]:
    """``docker commit --change`` instructions as ``buildah config`` arguments."""
    args: list[str] = []
    for change in changes:
        instruction, _, value = change.strip().partition(" ")
        value = value.strip()
        keyword = instruction.upper()
        if keyword in ("CMD", "ENTRYPOINT"):
            args += [f"--{keyword.lower()}", value]
        elif keyword == "ENV":
            key, sep, rest = value.partition("=")
            if not sep:
                key, _, rest = value.partition(" ")
            args += ["--env", f"{key.strip()}={rest.strip()}"]
        elif keyword == "LABEL":
            for item in shlex.split(value):
                args += ["--label", item]
        elif keyword in ("USER", "WORKDIR", "STOPSIGNAL"):
            args += [f"--{keyword.lower()}", value]
        elif keyword == "EXPOSE":
            for port in value.split():
                args += ["--port", port]
        elif keyword == "VOLUME":
            for volume in shlex.split(value.strip("[]").replace(",", " ")):
                args += ["--volume", volume.strip('"')]
        else:
            raise InputError(f"commit change {change!r} is not supported by the buildah engine")
    return args


def _archive_tags(path: str) -> tuple[list[str], str]:
    """The image names in a ``docker save`` archive and the transport that reads it."""
    import tarfile

    try:
        with tarfile.open(path) as archive:
            names = set(archive.getnames())
            if "manifest.json" not in names and "./manifest.json" not in names:
                if "index.json" in names or "oci-layout" in names:
                    return [], "oci-archive"
                raise EngineError("loading an image failed: not a docker or OCI archive")
            member = archive.extractfile(
                "manifest.json" if "manifest.json" in names else "./manifest.json")
            manifest = json.load(member) if member is not None else []
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise EngineError(f"loading an image failed: unreadable archive ({exc})") from None
    tags: list[str] = []
    for entry in manifest if isinstance(manifest, list) else ():
        if isinstance(entry, dict):
            tags += [str(tag) for tag in entry.get("RepoTags") or ()]
    return tags, "docker-archive"

