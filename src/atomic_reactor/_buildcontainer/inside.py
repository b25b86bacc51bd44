"""``inside-build``: run a build described by a build json that comes from outside.

This is what runs in a build container (``--method hostdocker``/``privileged``) and in
OpenShift-style custom builders. The build json comes from one *input*:

``path``
    a file; ``--input-arg path=FILE`` (default ``/run/share/build.json``, the shared
    directory the host mounts into a build container)
``env``
    an environment variable holding the JSON; ``--input-arg env_name=VAR``
    (default ``BUILD_JSON``)
``osv3``
    OpenShift custom-build variables: ``BUILD`` (the Build object as JSON: the source
    from ``spec.source.git.uri``/``ref`` and ``spec.source.contextDir``, the image from
    ``spec.output.to.name``), overridden by ``SOURCE_URI``, ``SOURCE_REF``,
    ``OUTPUT_IMAGE``; ``OUTPUT_REGISTRY`` becomes the target registry, and
    ``ATOMIC_REACTOR_PLUGINS`` (a JSON object: plugin lists, other build json keys)
    is merged in
``auto``
    the one input that applies (the file exists / the variable is set / ``BUILD`` is
    set); none or several is an error

``--substitute KEY=VALUE`` then edits the build json, and the build runs exactly as
``build json`` with method ``here`` does. The results (``BuildResults.to_json()``)
go to the results file (default ``/run/share/results.json`` when ``/run/share`` is a
directory), also when the build failed or the build json was unusable.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from atomic_reactor._request import (
    BuildRequest,
    apply_substitutions,
    load_build_json,
    parse_build_json,
)
from atomic_reactor._results import BuildResults
from atomic_reactor.errors import AtomicReactorError, BuildCancelled, BuildJsonError, InputError

__all__ = [
    "DEFAULT_BUILD_JSON",
    "DEFAULT_ENV_NAME",
    "DEFAULT_RESULTS",
    "INPUTS",
    "SHARE_DIR",
    "BuildInput",
    "build_inside",
    "parse_input_args",
    "read_build_input",
    "write_results",
]

logger = logging.getLogger(__name__)

#: where a build container finds what the host shares with it
SHARE_DIR = "/run/share"
DEFAULT_BUILD_JSON = f"{SHARE_DIR}/build.json"
DEFAULT_RESULTS = f"{SHARE_DIR}/results.json"
DEFAULT_ENV_NAME = "BUILD_JSON"
INPUTS = ("auto", "path", "env", "osv3")

#: the input arguments each input takes (``results`` is accepted by all)
_INPUT_ARGS: Mapping[str, frozenset[str]] = {
    "path": frozenset({"path"}),
    "env": frozenset({"env_name"}),
    "osv3": frozenset(),
}
_COMMON_ARGS = frozenset({"results"})
#: keys of a build json that only matter to the host starting a build container
_HOST_KEYS = ("method", "build_image", "push_buildroot_to")


@dataclass(frozen=True)
class BuildInput:
    """A build json document and where it came from (for messages)."""

    data: dict[str, Any]
    input: str
    origin: str


def parse_input_args(items: Sequence[str] | None) -> dict[str, str]:
    """``["path=/x", …]`` -> ``{"path": "/x"}``; :class:`BuildJsonError` when malformed."""
    args: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BuildJsonError(f"--input-arg {item!r} is not of the form KEY=VALUE")
        args[key] = value
    return args


def _check_args(method: str, args: Mapping[str, str]) -> None:
    allowed = set(_COMMON_ARGS)
    if method == "auto":
        for names in _INPUT_ARGS.values():
            allowed |= names
    else:
        allowed |= _INPUT_ARGS[method]
    unknown = sorted(set(args) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise BuildJsonError(f"input {method!r} does not take the argument {unknown[0]!r} "
                             f"(it takes: {known})")


def _applies(method: str, args: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """Why ``method`` applies (a description), or None."""
    if method == "path":
        path = args.get("path") or DEFAULT_BUILD_JSON
        return f"file {path}" if os.path.isfile(path) else None
    if method == "env":
        name = args.get("env_name") or DEFAULT_ENV_NAME
        return f"${name}" if environ.get(name) else None
    if environ.get("BUILD"):
        return "OpenShift build ($BUILD)"
    return None


def choose_input(method: str, args: Mapping[str, str],
                 environ: Mapping[str, str] | None = None) -> str:
    """The input to read: ``method`` itself, or for ``auto`` the one that applies."""
    if method not in INPUTS:
        raise BuildJsonError(f"unknown input {method!r} (choose from {', '.join(INPUTS)})")
    _check_args(method, args)
    if method != "auto":
        return method
    env = os.environ if environ is None else environ
    found = {name: why for name in ("path", "env", "osv3")
             if (why := _applies(name, args, env)) is not None}
    if not found:
        path = args.get("path") or DEFAULT_BUILD_JSON
        name = args.get("env_name") or DEFAULT_ENV_NAME
        raise BuildJsonError(
            f"no build input found (no file {path}, ${name} is not set, no OpenShift "
            "build: $BUILD is not set); choose one with --input path|env|osv3")
    if len(found) > 1:
        listed = ", ".join(f"{name} ({why})" for name, why in found.items())
        raise BuildJsonError(f"several build inputs apply: {listed}; choose one with --input")
    return next(iter(found))


def _nested(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _read_osv3(environ: Mapping[str, str]) -> BuildInput:
    raw = environ.get("BUILD")
    if not raw:
        raise BuildJsonError("input osv3: $BUILD is not set")
    build = parse_build_json(raw, "$BUILD")
    uri = environ.get("SOURCE_URI") or _nested(build, "spec", "source", "git", "uri")
    ref = environ.get("SOURCE_REF") or _nested(build, "spec", "source", "git", "ref")
    context_dir = _nested(build, "spec", "source", "contextDir")
    image = environ.get("OUTPUT_IMAGE") or _nested(build, "spec", "output", "to", "name")
    registry = environ.get("OUTPUT_REGISTRY") or None
    if not isinstance(uri, str) or not uri:
        raise BuildJsonError("input osv3: no source: set $SOURCE_URI or "
                             "spec.source.git.uri in $BUILD")
    if not isinstance(image, str) or not image:
        raise BuildJsonError("input osv3: no output image: set $OUTPUT_IMAGE or "
                             "spec.output.to.name in $BUILD")
    if registry and image.startswith(registry.rstrip("/") + "/"):
        image = image[len(registry.rstrip("/")) + 1:]
    source: dict[str, Any] = {"provider": "git", "uri": uri}
    if isinstance(ref, str) and ref:
        source["provider_params"] = {"git_commit": ref}
    if isinstance(context_dir, str) and context_dir:
        source["dockerfile_path"] = context_dir
    data: dict[str, Any] = {"source": source, "image": image}
    plugins = environ.get("ATOMIC_REACTOR_PLUGINS")
    if plugins:
        data.update(parse_build_json(plugins, "$ATOMIC_REACTOR_PLUGINS"))
    if registry and not data.get("target_registries"):
        data["target_registries"] = [registry]
    return BuildInput(data, "osv3", "OpenShift build variables")


def read_build_input(method: str = "auto", args: Mapping[str, str] | None = None,
                     environ: Mapping[str, str] | None = None) -> BuildInput:
    """Read the build json from the chosen input (see the module documentation)."""
    args = dict(args or {})
    env = os.environ if environ is None else environ
    chosen = choose_input(method, args, env)
    if chosen == "path":
        path = args.get("path") or DEFAULT_BUILD_JSON
        return BuildInput(load_build_json(path), "path", path)
    if chosen == "env":
        name = args.get("env_name") or DEFAULT_ENV_NAME
        text = env.get(name)
        if not text:
            raise BuildJsonError(f"input env: ${name} is not set")
        return BuildInput(parse_build_json(text, f"${name}"), "env", f"${name}")
    return _read_osv3(env)


def default_results_file() -> str | None:
    return DEFAULT_RESULTS if os.path.isdir(SHARE_DIR) else None


def write_results(path: str, results: BuildResults) -> None:
    """Write ``results`` as JSON; owned like its directory (so the host can remove it)."""
    from atomic_reactor._files import write_text_atomic

    write_text_atomic(path, results.to_json(indent=2, sort_keys=True) + "\n")
    with contextlib.suppress(OSError):
        info = os.stat(os.path.dirname(os.path.abspath(path)))
        if os.geteuid() == 0 and (info.st_uid, info.st_gid) != (0, 0):
            os.chown(path, info.st_uid, info.st_gid)


def _error_results(exc: AtomicReactorError) -> BuildResults:
    error = dict(exc.to_dict())
    error["exit_code"] = exc.exit_code
    return BuildResults(error=error, _exception=exc)


def build_inside(
    input_method: str = "auto",
    input_args: Sequence[str] | Mapping[str, str] | None = None,
    substitutions: Sequence[str] = (),
    *,
    dont_pull_base_image: bool = False,
    engine: str | None = None,
    results_file: str | None = None,
    plugin_files: Sequence[str] = (),
    relay_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> BuildResults:
    """Read the build json, run the build here, write the results file; return the results.

    Errors in the input are raised after a results file recording them was written;
    build failures are in the returned results, as for ``build_image_here``.
    ``relay_dir`` holds the host's loopback relays (see ``_buildcontainer.relay``).
    """
    target = results_file or default_results_file()
    try:
        args = dict(input_args) if isinstance(input_args, Mapping) else \
            parse_input_args(input_args)
        target = results_file or args.get("results") or default_results_file()
        build_input = read_build_input(input_method, args, environ)
        logger.info("build json from %s (input %s)", build_input.origin, build_input.input)
        data = apply_substitutions(build_input.data, substitutions)
        for key in _HOST_KEYS:
            if data.pop(key, None) is not None:
                logger.debug("ignoring %r of the build json inside the build", key)
        if dont_pull_base_image:
            data["dont_pull_base_image"] = True
        if engine:
            data["engine"] = engine
        if plugin_files:
            data["plugin_files"] = list(data.get("plugin_files") or []) + list(plugin_files)
        request = BuildRequest.from_mapping(data)
        from atomic_reactor.inner import DockerBuildWorkflow

        workflow = DockerBuildWorkflow(**request.workflow_kwargs())
        with _forwarding(relay_dir):
            results = workflow.build_container_image()
    except BuildCancelled as exc:
        if target:
            with contextlib.suppress(OSError):
                write_results(target, exc.results or _error_results(exc))
        raise
    except AtomicReactorError as exc:
        if target:
            with contextlib.suppress(OSError):
                write_results(target, _error_results(exc))
        raise
    if target:
        try:
            write_results(target, results)
        except OSError as exc:
            raise InputError(f"cannot write the results file {target}: "
                             f"{exc.strerror or exc}") from None
    return results


@contextlib.contextmanager
def _forwarding(relay_dir: str | None) -> Iterator[None]:
    if not relay_dir:
        yield
        return
    from atomic_reactor._buildcontainer.relay import LoopbackForwarder

    with LoopbackForwarder(relay_dir):
        yield
