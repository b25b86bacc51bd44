"""Builds inside a build container: methods ``hostdocker`` and ``privileged``.

The host makes a *shared directory* holding the build json (and, for ``path``
sources, a copy of the source), runs the *build image* with it mounted at
``/run/share``, and the container runs ``atomic-reactor inside-build``, which builds
and writes ``/run/share/results.json``. The host streams the container's output
live (as build output), waits, and returns those results with ``container_id`` and
``return_code`` set.

``hostdocker``
    the build container uses the host's engine through its socket (bound at
    ``/var/run/docker.sock``) and the host's network, so registries on the host's
    ``127.0.0.1`` are reachable; the built image ends up in the host's engine.
``privileged``
    the build container runs an engine of its own in a network namespace of its own:
    the build image's entrypoint starts ``dockerd``, or, when the request names the
    engine ``buildah``, no daemon at all: buildah runs in the container (storage on
    the container's volume, chroot isolation). Loopback addresses the request names
    (``127.0.0.1:5000``) are relayed to the host's (see
    :mod:`atomic_reactor._buildcontainer.relay`); for buildah they are also marked
    plain-HTTP in a ``registries.conf`` drop-in, as dockerd treats loopback
    registries. When the engine refuses ``--privileged`` (a kernel
    withholding a capability: "unable to apply caps"), the container runs with every
    capability but ``CAP_SYS_RESOURCE`` and without seccomp/AppArmor confinement
    instead, which is enough for a nested engine; a warning says so.

The host runs the build container with its docker engine in either case; the engine
*in* the container is the one the request names (``engine``; ``docker`` or ``auto``
give the nested dockerd). ``hostdocker`` with ``buildah`` is refused: its build
container has only the host's docker socket.

The build container and the shared directory are removed afterwards, also on
failures, Ctrl-C and SIGTERM (``keep_build_container=True`` keeps the container).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from atomic_reactor._engine.base import ContainerSpec, ContainerState
from atomic_reactor._engine.select import ENGINE_ENV
from atomic_reactor._reference import ImageName
from atomic_reactor._request import BuildRequest
from atomic_reactor._results import BuildResults
from atomic_reactor._secrets import registered_secrets, write_private_file
from atomic_reactor._signals import Cancellation
from atomic_reactor.errors import (
    AtomicReactorError,
    BuildCancelled,
    BuildFailed,
    EngineError,
    EngineUnavailable,
    InputError,
    PluginConfigError,
    PluginFailed,
    PushError,
    RegistryError,
)

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker

__all__ = [
    "CONTAINER_LABEL",
    "CONTAINER_SHARE",
    "METHODS",
    "run_in_build_container",
]

logger = logging.getLogger(__name__)
#: the build container's output goes where a build's output goes (the CLI prints it)
output_logger = logging.getLogger("atomic_reactor.build.output")

METHODS = ("hostdocker", "privileged")
#: where the shared directory is mounted in the build container
CONTAINER_SHARE = "/run/share"
#: where the relay sockets (privileged) are mounted in the build container
CONTAINER_RELAY = "/run/atomic-reactor-relay"
#: where a local git repository (``git`` source with a file uri) is mounted
CONTAINER_GIT = "/run/atomic-reactor-git"
BUILD_JSON = "build.json"
RESULTS_JSON = "results.json"
LOG_NAME = "build.log"
SECRETS_JSON = "secrets.json"
DOCKER_CONFIG_DIR = "docker-config"
DOCKER_SOCKET = "/var/run/docker.sock"
BUILD_SECRETS_DIR = "build-secrets"
REGISTRIES_DROPIN = "registries-loopback.conf"
#: where buildah in the build container reads the loopback registries' drop-in
CONTAINER_REGISTRIES_DROPIN = "/etc/containers/registries.conf.d/99-atomic-reactor-loopback.conf"
#: label on every build container (value: the method)
CONTAINER_LABEL = "io.atomic-reactor.build-container"
#: what replaces ``--privileged`` when the engine refuses it
FALLBACK_CAPS: Mapping[str, tuple[str, ...]] = {
    "cap_add": ("ALL",),
    "cap_drop": ("SYS_RESOURCE",),
    "security_opt": ("seccomp=unconfined", "apparmor=unconfined"),
}
#: seconds a cancelled build container gets to run its exit plugins and write results
STOP_TIMEOUT = 10
_TAIL = 20
#: engines (by address) known to refuse --privileged in this process
_PRIVILEGED_REFUSED: set[str] = set()
_EXIT_ERRORS: Mapping[int, type[AtomicReactorError]] = {
    2: InputError, 3: BuildFailed, 4: RegistryError, 6: EngineError,
}


# -- signals --------------------------------------------------------------------------


# -- preparing the shared directory ------------------------------------------------------


def _local_path(uri: str) -> str | None:
    """The local directory a ``file://`` uri or absolute path names, else None."""
    if uri.lower().startswith("file:"):
        parts = urlsplit(uri)
        return unquote(parts.path) if parts.netloc in ("", "localhost") else None
    return uri if os.path.isabs(uri) else None


class _Share:
    """The shared directory and what the build container needs besides it."""

    def __init__(self, request: BuildRequest) -> None:
        self.request = request
        self.path = tempfile.mkdtemp(prefix="atomic-reactor-share-")
        self.binds: dict[str, tuple[str, str]] = {self.path: (CONTAINER_SHARE, "rw")}
        self.dockerfile_text = ""
        self.data: dict[str, Any] = {}
        #: the source uri as the request gives it, and as the build container sees it
        self.original_uri = str(request.source.get("uri", ""))
        self.container_uri: str | None = None
        #: environment the build container needs (DOCKER_CONFIG when it gets credentials)
        self.environment: dict[str, str] = {}
        self.has_secrets = False

    def container_path(self, host_path: str) -> str:
        return f"{CONTAINER_SHARE}/{os.path.relpath(host_path, self.path)}"

    def prepare(self) -> None:
        from atomic_reactor.source import SourceSpec, get_source_instance_for

        data = self.request.to_dict()
        spec = SourceSpec.from_dict(data["source"])
        source = dict(data["source"])
        if spec.provider == "path":
            instance = get_source_instance_for(spec, tmpdir=os.path.join(self.path, "source"))
            root = instance.get()
            source["uri"] = "file://" + quote(self.container_path(root))
            with contextlib.suppress(AtomicReactorError, OSError):
                df_path, _ = instance.get_dockerfile_path()
                with open(df_path, encoding="utf-8", errors="replace") as handle:
                    self.dockerfile_text = handle.read()
        elif (local := _local_path(spec.uri)) is not None:
            if not os.path.isdir(local):
                from atomic_reactor.errors import SourceError

                raise SourceError(f"git source {local} is not a directory")
            self.binds[os.path.realpath(local)] = (CONTAINER_GIT, "ro")
            source["uri"] = "file://" + CONTAINER_GIT
        if source["uri"] != data["source"]["uri"]:
            self.container_uri = source["uri"]
        data["source"] = source
        plugin_files = []
        for index, name in enumerate(self.request.plugin_files):
            if not os.path.isfile(name):
                raise PluginConfigError(f"plugin file {name} does not exist")
            target = os.path.join(self.path, "plugins", f"{index}-{os.path.basename(name)}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(name, target)
            plugin_files.append(self.container_path(target))
        data["plugin_files"] = plugin_files
        data["log_file"] = f"{CONTAINER_SHARE}/{LOG_NAME}"
        self._pass_credentials(data)
        self._pass_build_secrets(data)
        self.data = data

        # it may hold credentials (--substitute-secret): 0600, removed with the directory
        write_private_file(os.path.join(self.path, BUILD_JSON), json.dumps(data, indent=2))
        secrets = registered_secrets()
        if secrets:  # so that the build inside masks them too
            write_private_file(os.path.join(self.path, SECRETS_JSON), json.dumps(secrets))
            self.has_secrets = True

    def _pass_credentials(self, data: dict[str, Any]) -> None:
        """Give the container the registry credentials the host would use.

        The host's docker config and the ``secret`` paths of registry plugins are not
        visible inside; their credentials for the registries this build talks to go
        into a private docker config in the shared directory instead.
        """
        import base64

        from atomic_reactor._registry.auth import resolve_auth

        secrets: dict[str, str | None] = {}
        for registry in [data.get("parent_registry"), *data.get("target_registries", [])]:
            if registry:
                secrets.setdefault(str(registry), None)
        for key in ("postbuild_plugins", "exit_plugins"):
            for plugin in data.get(key) or []:
                registries = (plugin.get("args") or {}).get("registries")
                if plugin.get("name") not in ("tag_and_push", "delete_from_registry") or \
                        not isinstance(registries, dict):
                    continue
                for registry, conf in registries.items():
                    if isinstance(conf, dict) and conf.get("secret"):
                        secrets[registry] = str(conf["secret"])
                        conf["secret"] = None  # the host path means nothing inside
                    else:
                        secrets.setdefault(registry, None)
        auths = {}
        for registry, secret in secrets.items():
            found = resolve_auth(registry, secret)
            if found is not None:
                token = base64.b64encode(f"{found.username}:{found.password}".encode())
                auths[registry] = {"auth": token.decode()}
        if auths:
            config_dir = os.path.join(self.path, DOCKER_CONFIG_DIR)
            os.makedirs(config_dir, mode=0o700, exist_ok=True)
            write_private_file(os.path.join(config_dir, "config.json"),
                               json.dumps({"auths": auths}))
            self.environment["DOCKER_CONFIG"] = f"{CONTAINER_SHARE}/{DOCKER_CONFIG_DIR}"

    def _pass_build_secrets(self, data: dict[str, Any]) -> None:
        """``secrets`` (``RUN --mount=type=secret``) as private files in the shared
        directory: the host's files and variables are not visible inside."""
        secrets = data.get("secrets")
        if not secrets:
            return
        directory = os.path.join(self.path, BUILD_SECRETS_DIR)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        passed = []
        for index, entry in enumerate(secrets):
            if "src" in entry:
                try:
                    with open(entry["src"], encoding="utf-8", errors="surrogateescape") as handle:
                        value = handle.read()
                except OSError as exc:
                    raise InputError(f"build secret {entry['id']!r}: cannot read "
                                     f"{entry['src']} ({exc.strerror or exc})") from None
            else:
                value = os.environ.get(entry["env"], "")
            target = os.path.join(directory, str(index))
            write_private_file(target, value)
            passed.append({"id": entry["id"], "src": self.container_path(target)})
        data["secrets"] = passed

    def add_registries_dropin(self, endpoints: list[tuple[str, int]]) -> None:
        """For buildah in the container: the relayed loopback registries are plain
        HTTP (as the nested dockerd treats loopback registries)."""
        lines = ["# loopback registries relayed from the host (atomic-reactor)"]
        for host, port in endpoints:
            lines += ["", "[[registry]]", f'location = "{host}:{port}"', "insecure = true"]
        path = os.path.join(self.path, REGISTRIES_DROPIN)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        self.binds[path] = (CONTAINER_REGISTRIES_DROPIN, "ro")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if os.path.exists(self.path):
            logger.warning("could not remove the shared directory %s", self.path)


# -- the container ---------------------------------------------------------------------


def _engine_socket(address: str) -> tuple[str | None, dict[str, str]]:
    """For hostdocker: the engine socket to bind, or the DOCKER_HOST to pass."""
    if address.startswith("unix://"):
        path = address[len("unix://"):]
        if not os.path.exists(path):
            raise EngineUnavailable(
                f"method hostdocker binds the engine's socket into the build container, "
                f"but {path} does not exist; is dockerd running?")
        return path, {}
    if address.startswith(("tcp://", "http://")):
        return None, {"DOCKER_HOST": address}
    raise InputError(f"method hostdocker cannot pass the engine at {address} to a build "
                     "container (use a unix socket or tcp://)")


def _command(relay: bool, secrets: bool = False) -> list[str]:
    command = ["atomic-reactor"]
    if logging.getLogger("atomic_reactor").isEnabledFor(logging.DEBUG):
        command.append("--verbose")
    command += ["inside-build", "--input", "path",
                "--input-arg", f"path={CONTAINER_SHARE}/{BUILD_JSON}",
                "--results-file", f"{CONTAINER_SHARE}/{RESULTS_JSON}"]
    if relay:
        command += ["--relay-dir", CONTAINER_RELAY]
    if secrets:
        command += ["--secrets-file", f"{CONTAINER_SHARE}/{SECRETS_JSON}"]
    return command


def _no_atomic_reactor(text: str) -> bool:
    """Does this engine error or last line of output say the command is missing?"""
    lowered = text.lower()
    return any(marker in lowered for marker in (
        '"atomic-reactor": executable file not found',  # the engine, starting it
        "atomic-reactor: not found",  # a shell (the privileged entrypoint)
        "exec atomic-reactor failed",  # tini
    ))


def _start(tasker: DockerTasker, spec: ContainerSpec, method: str) -> str:
    """Create and start the build container (privileged: falling back when refused)."""
    address = tasker.engine_address
    if method == "privileged" and address in _PRIVILEGED_REFUSED:
        logger.debug("the engine refuses --privileged: using the capability fallback")
        spec = _fallback(spec)
    try:
        try:
            return str(tasker.run_container(spec))
        except EngineError as exc:
            if not (spec.privileged and "apply caps" in str(exc)):
                raise
            _PRIVILEGED_REFUSED.add(address)
            reason = str(exc)
            reason = reason[reason.find("apply caps"):].removesuffix(": unknown")
            logger.warning(
                "the engine refuses --privileged (%s); running the build container with "
                "all capabilities but SYS_RESOURCE, seccomp and AppArmor unconfined instead",
                reason)
            return str(tasker.run_container(_fallback(spec)))
    except EngineError as exc:
        if _no_atomic_reactor(str(exc)):
            raise InputError(f"build image {spec.image} has no atomic-reactor "
                             f"(the engine says: {exc})") from None
        raise


def _fallback(spec: ContainerSpec) -> ContainerSpec:
    import dataclasses

    return dataclasses.replace(spec, privileged=False, cap_add=FALLBACK_CAPS["cap_add"],
                               cap_drop=FALLBACK_CAPS["cap_drop"],
                               security_opt=FALLBACK_CAPS["security_opt"])


def _running(tasker: DockerTasker, container_id: str) -> bool:
    try:
        return tasker.container_state(container_id).running
    except EngineError:
        return False


def _follow(tasker: DockerTasker, container_id: str, tail: deque[str]) -> None:
    """Log the container's output as it comes, until it exits.

    A quiet build outlasts the engine client's read timeout: the stream is then
    opened again and the lines already shown are skipped.
    """
    seen = 0
    while True:
        count = 0
        try:
            for line in tasker.logs(container_id, stream=True):
                count += 1
                if count <= seen:
                    continue
                seen = count
                text = line.rstrip("\n")
                if text.strip():
                    tail.append(text)
                    output_logger.info(text)
        except EngineError as exc:
            if _running(tasker, container_id):
                logger.debug("following the build container's output again (%s)", exc)
                continue
        return


def _wait(tasker: DockerTasker, container_id: str) -> int | None:
    try:
        return int(tasker.wait(container_id))
    except EngineError as exc:
        logger.debug("waiting for the build container: %s", exc)
        return None


def _stop(tasker: DockerTasker, container_id: str) -> None:
    try:
        tasker.stop_container(container_id, timeout=STOP_TIMEOUT)
    except EngineError as exc:
        logger.debug("stopping the build container: %s", exc)


# -- results ---------------------------------------------------------------------------


def _error_results(exc: AtomicReactorError, request: BuildRequest, container_id: str | None,
                   code: int | None) -> BuildResults:
    error = dict(exc.to_dict())
    error["exit_code"] = exc.exit_code
    return BuildResults(error=error, image=request.image, container_id=container_id,
                        return_code=code, _exception=exc)


def _no_results_error(code: int | None, state: ContainerState | None, tail: deque[str],
                      build_image: str, problem: str) -> AtomicReactorError:
    last = tail[-1] if tail else ""
    said = f" (last output: {last})" if last else ""
    if code is None:
        return EngineError(f"the build container went away before it finished and "
                           f"{problem}{said}")
    if code == 127 or _no_atomic_reactor(last):
        return InputError(f"build image {build_image} has no atomic-reactor "
                          f"(exit {code}){said}")
    if state is not None and state.oom_killed:
        return EngineError(f"the build container ran out of memory and was killed "
                           f"(exit {code}); it {problem}")
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return EngineError(f"the build container was killed by {name} (exit {code}) and "
                           f"{problem}{said}")
    kind = _EXIT_ERRORS.get(code)
    message = f"the build container exited with {code} and {problem}{said}"
    if code == 5:
        return PluginFailed(message, plugin="")
    return (kind or BuildFailed)(message)


def _read_results(share: _Share, request: BuildRequest, build_image: str,
                  container_id: str | None, code: int | None, state: ContainerState | None,
                  tail: deque[str]) -> BuildResults:
    path = os.path.join(share.path, RESULTS_JSON)
    problem = "wrote no results"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        results = BuildResults.from_dict(data)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError) as exc:
        problem = f"wrote unreadable results ({exc})"
    else:
        return _host_source(results.replace(container_id=container_id, return_code=code),
                            share)
    error = _no_results_error(code, state, tail, build_image, problem)
    return _error_results(error, request, container_id, code)


def _host_source(results: BuildResults, share: _Share) -> BuildResults:
    """Results name the source as the request did, not by its path in the container."""
    if share.container_uri is None or not results.source:
        return results
    from atomic_reactor._git import redact_uri

    source = dict(results.source)
    for key in ("uri", "vcs_url"):
        if source.get(key) == share.container_uri:
            source[key] = redact_uri(share.original_uri)
    return results.replace(source=source)


def _copy_log(share: _Share, request: BuildRequest, results: BuildResults) -> BuildResults:
    """The container's build log, copied to the request's ``log_file`` (or the default)."""
    source = os.path.join(share.path, LOG_NAME)
    if not os.path.isfile(source):
        return results.replace(log_file=None)
    from atomic_reactor._buildlog import BuildLog

    try:
        log = BuildLog.open(request.options.get("log_file"), request.image)
    except InputError as exc:
        logger.warning("%s", exc)
        return results.replace(log_file=None)
    if log is None:
        return results.replace(log_file=None)
    try:
        with open(source, encoding="utf-8", errors="replace") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), ""):
                log.write_output(chunk)
    except OSError as exc:
        logger.warning("cannot copy the build log: %s", exc.strerror or exc)
    finally:
        log.close()
    return results.replace(log_file=log.path)


# -- the build root --------------------------------------------------------------------


def buildroot_reference(target: str, image: str, now: float | None = None) -> ImageName:
    """Where the build root goes: ``REGISTRY`` alone -> ``REGISTRY/buildroot-NAME:STAMP``;
    a repository without a tag gets the time stamp as its tag."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    target = target.strip().rstrip("/")
    if "/" not in target:
        name = ImageName.parse(image)
        repo = (name.repo or "image").replace("/", "-")
        return ImageName.parse(f"{target}/buildroot-{repo}:{stamp}")
    tail = target.rsplit("/", 1)[1]
    if ":" in tail or "@" in target:
        return ImageName.parse(target)
    return ImageName.parse(f"{target}:{stamp}")


def _push_buildroot(tasker: DockerTasker, container_id: str, request: BuildRequest,
                    results: BuildResults) -> BuildResults:
    target = buildroot_reference(str(request.push_buildroot_to), request.image)
    record: dict[str, Any] = {"image": str(target)}
    image_id = None
    try:
        image_id = tasker.commit_container(container_id,
                                           message=f"build root of {request.image}")
        record["image_id"] = image_id
        tasker.tag_image(image_id, target)
        pushed = tasker.push(target, insecure=request.target_registries_insecure)
        record["digest"] = pushed.digest
        logger.info("pushed the build root as %s@%s", target, pushed.digest)
    except AtomicReactorError as exc:
        record["error"] = str(exc)
        logger.error("pushing the build root to %s failed: %s", target, exc)
        if not results.is_failed():
            failure = exc if isinstance(exc, RegistryError) else \
                PushError(f"pushing the build root {target} failed: {exc}")
            results = results.replace(error={**failure.to_dict(),
                                             "exit_code": failure.exit_code},
                                      _exception=failure)
    finally:
        for ref in (str(target), image_id):
            if ref:
                with contextlib.suppress(AtomicReactorError):
                    tasker.remove_image(ref)
    return results.replace(buildroot=record)


# -- the build ---------------------------------------------------------------------------


def run_in_build_container(
    method: str,
    request: BuildRequest,
    *,
    tasker: DockerTasker | None = None,
    keep_build_container: bool = False,
) -> BuildResults:
    """Build ``request`` in a container from ``request.build_image``; return its results.

    Raises :class:`InputError` for requests that cannot start (no build image, a build
    image without atomic-reactor), :class:`EngineUnavailable` when the engine (or, for
    hostdocker, its socket) is missing, and :class:`BuildCancelled` (results attached)
    on SIGTERM/Ctrl-C. Everything else is in the returned results.
    """
    if method not in METHODS:
        raise InputError(f"unknown build method {method!r} (choose from here, "
                         f"{', '.join(METHODS)})")
    inner_engine = request.options.get("engine")
    if inner_engine == "buildah" and method == "hostdocker":
        from atomic_reactor.errors import EngineConfigError

        raise EngineConfigError("--method hostdocker --engine buildah is not supported: its "
                                "build container has only the host's docker socket (use "
                                "--method privileged, which runs buildah in the build "
                                "container, or --method here)")
    build_image = request.build_image
    if not build_image:
        raise InputError(f"method {method} needs a build image (--build-image IMAGE; "
                         "make one with `atomic-reactor create-build-image`)")
    if tasker is None:
        from atomic_reactor.core import DockerTasker

        tasker = DockerTasker(retry=request.retry_policy)
    address = tasker.engine_address
    socket_path, environment = _engine_socket(address) if method == "hostdocker" else (None, {})
    if not tasker.image_exists(build_image):
        raise InputError(f"build image {build_image} does not exist on the engine "
                         "(make it with `atomic-reactor create-build-image`)")

    share: _Share | None = None
    relay: Any = None
    relay_dir: str | None = None
    container_id: str | None = None
    cancellation = Cancellation(busy="removing the build container first")
    with cancellation.installed():
        try:
            try:
                share = _Share(request)
                share.prepare()
                binds = dict(share.binds)
                spec_args: dict[str, Any] = {}
                if method == "hostdocker":
                    if socket_path:
                        binds[os.path.realpath(socket_path)] = (DOCKER_SOCKET, "rw")
                    spec_args["network_mode"] = "host"
                else:
                    from atomic_reactor._buildcontainer.relay import (
                        LoopbackRelay,
                        loopback_endpoints,
                    )

                    endpoints = loopback_endpoints(share.data, share.dockerfile_text)
                    if endpoints:
                        relay_dir = tempfile.mkdtemp(prefix="ar-relay-", dir=_short_tmp())
                        relay = LoopbackRelay(relay_dir, endpoints)
                        binds[relay_dir] = (CONTAINER_RELAY, "rw")
                    if inner_engine == "buildah":
                        # the entrypoint then starts no dockerd
                        environment = {ENGINE_ENV: "buildah"}
                        if endpoints:
                            share.add_registries_dropin(endpoints)
                            binds.update(share.binds)
                    spec_args["privileged"] = True
                spec = ContainerSpec(
                    image=build_image, command=_command(relay is not None, share.has_secrets),
                    environment={"PYTHONUNBUFFERED": "1", **environment, **share.environment},
                    binds=binds,
                    labels={CONTAINER_LABEL: method, "io.atomic-reactor.image": request.image},
                    **spec_args)
                logger.info("building %s in a build container from %s (method %s%s)",
                            request.image, build_image, method,
                            ", engine buildah" if inner_engine == "buildah" else "")
                container_id = _start(tasker, spec, method)
                logger.debug("build container %s started", container_id[:12])
            except KeyboardInterrupt:
                raise BuildCancelled(signal.SIGINT) from None
            return _run(tasker, container_id, share, request, build_image)
        finally:
            cancellation.cleaning = True
            if container_id is not None:
                if keep_build_container:
                    logger.info("kept the build container %s", container_id[:12])
                else:
                    try:
                        tasker.remove_container(container_id, force=True)
                    except AtomicReactorError as exc:
                        logger.warning("could not remove the build container %s: %s",
                                       container_id[:12], exc)
            if relay is not None:
                relay.close()
            if relay_dir is not None:
                shutil.rmtree(relay_dir, ignore_errors=True)
            if share is not None:
                share.remove()


def _run(tasker: DockerTasker, container_id: str, share: _Share, request: BuildRequest,
         build_image: str) -> BuildResults:
    """Follow the started build container to its end; its results (or why there are none)."""
    tail: deque[str] = deque(maxlen=_TAIL)
    cancelled: BuildCancelled | None = None
    try:
        _follow(tasker, container_id, tail)
        code = _wait(tasker, container_id)
    except (BuildCancelled, KeyboardInterrupt) as exc:
        cancelled = exc if isinstance(exc, BuildCancelled) else BuildCancelled(signal.SIGINT)
        logger.warning("%s; stopping the build container", cancelled)
        _stop(tasker, container_id)
        code = _wait(tasker, container_id)
    state: ContainerState | None = None
    with contextlib.suppress(EngineError):
        state = tasker.container_state(container_id)
    results = _read_results(share, request, build_image, container_id, code, state, tail)
    results = _copy_log(share, request, results)
    if cancelled is not None:
        cancelled.results = results
        raise cancelled
    if request.push_buildroot_to:
        results = _push_buildroot(tasker, container_id, request, results)
    return results


def _short_tmp() -> str:
    """A temporary directory short enough for Unix socket paths in it."""
    base = tempfile.gettempdir()
    return base if len(base) <= 40 else "/tmp"
