"""The ``atomic-reactor`` command.

Only this module calls ``sys.exit`` and installs log handlers. Heavy modules (the
Docker SDK, the workflow) are imported only once a command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from atomic_reactor import __version__
from atomic_reactor._secrets import SecretFilter, redact, register_secret
from atomic_reactor.cli._results import finish, write_metadata

if TYPE_CHECKING:
    from atomic_reactor._request import BuildRequest
    from atomic_reactor._results import BuildResults
    from atomic_reactor.cli.progress import Renderer
    from atomic_reactor.core import DockerTasker

PROG = "atomic-reactor"
METHODS = ("here", "hostdocker", "privileged")

logger = logging.getLogger("atomic_reactor.cli")


class _Formatter(logging.Formatter):
    """Build output as it comes; everything else as ``level: message``."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "atomic_reactor.build.output":
            return record.getMessage().rstrip("\n")
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        if record.exc_info and logging.getLogger().isEnabledFor(logging.DEBUG):
            text += "\n" + (record.exc_text or self.formatException(record.exc_info))

        return redact(text)


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr; while a progress display owns the terminal, lines go through it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.renderer: Renderer | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        from atomic_reactor._buildlog import reraise_cancel

        reraise_cancel()
        super().handleError(record)

    def emit(self, record: logging.LogRecord) -> None:
        renderer = self.renderer
        if renderer is not None:
            try:
                text = self.format(record)
            except Exception:
                self.handleError(record)
                return
            if renderer.print(text):
                return
        super().emit(record)


def setup_logging(verbosity: int) -> None:

    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = _ConsoleHandler()
    handler.setFormatter(_Formatter())
    handler.addFilter(SecretFilter())
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # INFO at least, whatever the console shows: the build's log file gets every line
    logging.getLogger("atomic_reactor").setLevel(min(level, logging.INFO))
    if verbosity > 0:
        root.setLevel(logging.DEBUG)
        for noisy in ("urllib3", "docker"):
            logging.getLogger(noisy).setLevel(logging.INFO)


# -- parser ---------------------------------------------------------------------------------


def _key_values(option: str, items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` items of a repeatable option; one clear error line for a bad one."""
    from atomic_reactor.errors import InputError

    values: dict[str, str] = {}
    for text in items:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or key != key.strip() or " " in key:
            # only the part before '=' is shown: a value may be secret
            raise InputError(f"{option} {key!r} is not of the form KEY=VALUE")
        values[key] = value
    return values


def _add_engine_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--engine", metavar="ENGINE", default=None,
                       help="container engine: docker, buildah (daemonless) or auto: docker "
                            "when its socket answers, else buildah (default: "
                            "$ATOMIC_REACTOR_ENGINE, else auto)")


def _add_engine_build_options(group: argparse._ArgumentGroup) -> None:
    """What ``docker build`` / ``buildah bud`` users reach for."""
    group.add_argument("--build-arg", metavar="KEY=VALUE", action="append",
                       default=[], dest="build_args", help="set a build argument (repeatable)")
    group.add_argument("--label", metavar="KEY=VALUE", action="append",
                       default=[], dest="labels", help="set a label on the image (repeatable)")
    group.add_argument("--target", metavar="STAGE", help="build up to this stage of a "
                                                         "multi-stage Dockerfile")
    group.add_argument("--pull", action="store_true", default=None,
                       help="always pull the base images while building, even if present")
    group.add_argument("--secret", metavar="id=ID,src=PATH|env=VAR", action="append",
                       default=[], dest="secrets",
                       help="a secret for RUN --mount=type=secret,id=ID, from a file or an "
                            "environment variable; never stored in the image, logs or results "
                            "(buildah engine)")


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("build")
    _add_engine_option(group)
    _add_engine_build_options(group)
    group.add_argument("--method", choices=METHODS, default="here",
                       help="where to build: here (default), in a build container using the "
                            "host's docker engine (hostdocker), or one with its own engine "
                            "(privileged: a private dockerd, or buildah with --engine buildah)")
    group.add_argument("--build-image", metavar="IMAGE",
                       help="build image for --method hostdocker/privileged")
    group.add_argument("--push-buildroot-to", metavar="REPOSITORY",
                       help="commit the build container afterwards and push it here")
    group.add_argument("--keep-build-container", action="store_true",
                       help="do not remove the build container afterwards (hostdocker, "
                            "privileged)")
    group.add_argument("--source-registry", metavar="REGISTRY",
                       help="registry to pull the base image from")
    group.add_argument("--source-registry-insecure", action="store_true",
                       help="the source registry speaks plain HTTP")
    group.add_argument("--target-registries", metavar="REGISTRY", nargs="+", default=[],
                       help="registries to push the image to")
    group.add_argument("--target-registries-insecure", action="store_true",
                       help="the target registries speak plain HTTP")
    group.add_argument("--dont-pull-base-image", action="store_true",
                       help="use the base image the engine already has")
    group.add_argument("--no-cache", action="store_true",
                       help="build every step anew (the engine's layer cache is not used)")
    group.add_argument("--load-plugin", metavar="FILE", action="append", default=[],
                       dest="plugin_files", help="load plugins from this Python file "
                                                 "(repeatable)")
    _add_output_options(parser)


def _epoch(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds since 1970")
    return int(text)


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reproducible images, SBOM and provenance")
    group.add_argument("--reproducible", action="store_true", default=None,
                       help="make the image depend only on the source: file and config times "
                            "clamped to SOURCE_DATE_EPOCH (the commit's time), fixed layer "
                            "order and owners names")
    group.add_argument("--source-date-epoch", metavar="N", type=_epoch,
                       help="the time a reproducible build stamps (default: the git commit's "
                            "committer time)")
    group.add_argument("--check-reproducible", action="store_true",
                       help="build twice without cache, a few seconds apart, and compare: exit "
                            "0 if the images are identical, 7 if not (naming what differs); "
                            "nothing is pushed")
    group.add_argument("--check-delay", metavar="SECONDS", type=float, default=None,
                       help="seconds between the two builds of --check-reproducible "
                            "(default 2)")
    group.add_argument("--sbom", action="store_true", default=None,
                       help="attach a CycloneDX SBOM of the image's packages (dpkg, rpm, apk) "
                            "to the pushed image")
    group.add_argument("--provenance", action="store_true", default=None,
                       help="attach SLSA provenance (an in-toto statement) to the pushed image")


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    _add_image_options(parser)
    parser.add_argument("--platform", metavar="OS/ARCH[,OS/ARCH...]", dest="platforms",
                        help="build an image for each platform (linux/amd64,linux/arm64) "
                             "and push a manifest list over them (default: one image for "
                             "the engine's own platform)")
    group = parser.add_argument_group("output")
    group.add_argument("--metadata-file", metavar="PATH",
                       help="write the build results as JSON to PATH")
    group.add_argument("--iidfile", metavar="PATH", help="write the built image id to PATH")
    group.add_argument("--log-file", metavar="PATH",
                       help="keep the complete build log in PATH (default: a new file under "
                            "$XDG_STATE_HOME/atomic-reactor/logs; its path is in the results)")
    push = parser.add_argument_group("push")
    push.add_argument("--push-method", choices=("registry", "engine"), default=None,
                      help="registry: atomic-reactor uploads the image itself, compressed "
                           "once, to all target registries at once (default); engine: the "
                           "engine's own push")
    push.add_argument("--compression", choices=("gzip", "zstd", "none"), default=None,
                      help="layer compression for the registry push (default gzip; zstd "
                           "makes an OCI manifest)")
    push.add_argument("--compression-level", metavar="N", type=int, default=None,
                      help="compression level (gzip 1-9, default 6; zstd 1-19, default 3)")
    push.add_argument("--manifest-format", choices=("docker", "oci"), default=None,
                      help="manifest of the registry push: docker (schema 2, default) or oci")
    group.add_argument("--retry-attempts", metavar="N", type=int,
                       help="attempts for each pull and push (default 4)")
    group.add_argument("--retry-delay", metavar="SECONDS", type=float,
                       help="first retry delay, doubled each retry (default 1)")


#: the build sources (``build KIND``)
_KINDS = ("git", "path", "json")


def _add_build_commands(build: argparse.ArgumentParser, kind: str | None) -> None:
    """``build git``, ``build path`` and ``build json`` (only ``kind`` if not None)."""
    kinds = build.add_subparsers(dest="kind", metavar="SOURCE")
    kinds.required = True

    if kind in (None, "git"):
        git = kinds.add_parser("git", help="build from a git repository")
        git.add_argument("--uri", required=True, help="git repository")
        git.add_argument("--commit",
                         help="branch, tag or commit to build (default: default branch)")
        git.add_argument("-f", "--file", "--df-path", dest="df_path", default="./",
                         help="Dockerfile (or its directory) in the repository (default ./)")
        git.add_argument("--image", required=True, help="name for the built image")
        _add_build_options(git)
    if kind in (None, "path"):
        path = kinds.add_parser("path", help="build from a local directory")
        path.add_argument("--uri", required=True, help="file:///abs/path (or a path)")
        path.add_argument("-f", "--file", "--df-path", dest="df_path", default="./",
                          help="Dockerfile (or its directory) in the source (default ./)")
        path.add_argument("--image", required=True, help="name for the built image")
        _add_build_options(path)
    if kind in (None, "json"):
        _add_build_json(kinds)


def _add_build_json(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    json_cmd = kinds.add_parser("json", help="build what a build json file describes")
    json_cmd.add_argument("path", metavar="PATH", help="build json file")
    json_cmd.add_argument("--substitute", metavar="KEY=VALUE", action="append", default=[],
                          help="set a key of the build json (dotted: source.uri=…, "
                               "prebuild_plugins.NAME.ARG=…)")
    json_cmd.add_argument("--substitute-secret", metavar="KEY=VALUE", action="append",
                          default=[], help="like --substitute, for a secret: VALUE is taken "
                                           "as a string and masked (***) in all output")
    json_cmd.add_argument("--substitute-secret-env", metavar="KEY=VARIABLE", action="append",
                          default=[], help="like --substitute-secret, the value read from "
                                           "the environment variable VARIABLE (keeps it "
                                           "out of the process list)")
    json_cmd.add_argument("--method", choices=METHODS, default=None,
                          help="override the build json's method")
    json_cmd.add_argument("--build-image", metavar="IMAGE")
    json_cmd.add_argument("--keep-build-container", action="store_true",
                          help="do not remove the build container afterwards")
    json_cmd.add_argument("--load-plugin", metavar="FILE", action="append", default=[],
                          dest="plugin_files")
    engine_group = json_cmd.add_argument_group("engine (override the build json)")
    _add_engine_option(engine_group)
    _add_engine_build_options(engine_group)
    engine_group.add_argument("--no-cache", action="store_true",
                              help="build every step anew (the engine's layer cache is not used)")
    _add_output_options(json_cmd)


def _named(argv: Sequence[str] | None) -> tuple[str | None, str | None]:
    """The command and the build source ``argv`` names (None: not told, or not one of
    them). Neither the program's options nor ``build``'s take a value, so they are the
    first two words that are not options."""
    words: list[str] = []
    for word in argv or ():
        if word == "--":
            break
        if not word.startswith("-"):
            words.append(word)
            if len(words) == 2:
                break
    command = words[0] if words and words[0] in COMMANDS else None
    kind = words[1] if command == "build" and len(words) > 1 and words[1] in _KINDS \
        else None
    return command, kind


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the ``argv`` it will parse, only the command
    (and build source) that names gets its options, the others are left out (their
    160 options are a tenth of the start of a build); given none, or one naming no
    command, every command has them."""
    command, kind = _named(argv)

    def wanted(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(
        prog=PROG, description="Build container images through a plugin pipeline.")
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true",
                       help="debug output, and tracebacks on errors")
    noise.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    if wanted("build"):
        _add_build_commands(commands.add_parser("build", help="build an image"), kind)
    if wanted("plugins"):
        plugins = commands.add_parser("plugins", help="list the available plugins")
        plugins.add_argument("--schema", metavar="KEY",
                             help="print one plugin's argument schema")

    from atomic_reactor.cli import build_image, farm, inside_build

    if wanted("create-build-image"):
        build_image.add_parser(commands)
    if wanted("inside-build"):
        inside_build.add_parser(commands)
    if command is None or command in farm.COMMANDS:
        farm.add_parsers(commands)
    return parser


# -- commands ------------------------------------------------------------------------------


def _source_uri(uri: str) -> str:
    if uri.startswith("file://") or "://" in uri:
        return uri
    return "file://" + os.path.abspath(uri)


def _request_from_args(args: argparse.Namespace) -> tuple[BuildRequest, str]:
    from atomic_reactor._request import BuildRequest, apply_substitutions, load_build_json

    if args.kind == "json":
        secrets = _secret_substitutions(args)
        data = apply_substitutions(load_build_json(args.path), args.substitute)
        data = apply_substitutions(data, secrets, parse=False)
        method = args.method or data.pop("method", None) or "here"
        if args.build_image:
            data["build_image"] = args.build_image
        if args.plugin_files:
            data["plugin_files"] = list(data.get("plugin_files") or []) + args.plugin_files
    else:
        source: dict[str, Any] = {"provider": args.kind, "dockerfile_path": args.df_path}
        if args.kind == "git":
            source["uri"] = args.uri
            if args.commit:
                source["provider_params"] = {"git_commit": args.commit}
        else:
            source["uri"] = _source_uri(args.uri)
        data = {
            "source": source, "image": args.image,
            "parent_registry": args.source_registry,
            "parent_registry_insecure": args.source_registry_insecure,
            "target_registries": args.target_registries,
            "target_registries_insecure": args.target_registries_insecure,
            "dont_pull_base_image": args.dont_pull_base_image,
            "plugin_files": args.plugin_files,
            "build_image": args.build_image,
            "push_buildroot_to": args.push_buildroot_to,
        }
        method = args.method
    if args.log_file:
        data["log_file"] = os.path.abspath(args.log_file)
    _engine_build_data(args, data)
    for flag in ("reproducible", "sbom", "provenance"):
        if getattr(args, flag):
            data[flag] = True
    if args.check_reproducible:
        data["reproducible"] = True
    if args.source_date_epoch is not None:
        data["source_date_epoch"] = args.source_date_epoch
    for key in ("push_method", "compression", "compression_level", "manifest_format"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    if args.platforms is not None:
        data["platforms"] = args.platforms
    retry = data.get("retry") or {}
    if isinstance(retry, dict):  # anything else is reported by BuildRequest, not here
        retry = dict(retry)
        if args.retry_attempts is not None:
            retry["attempts"] = args.retry_attempts
        if args.retry_delay is not None:
            retry["delay"] = args.retry_delay
        if retry:
            data["retry"] = retry
    if method not in METHODS:
        from atomic_reactor.errors import BuildJsonError

        raise BuildJsonError(f"unknown build method {method!r} (choose from {', '.join(METHODS)})")

    return BuildRequest.from_mapping(data), method


def _engine_build_data(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """--engine, --build-arg, --label, --target, --pull, --secret, --no-cache into the
    request (over what a build json says)."""
    if args.engine:
        data["engine"] = args.engine
    if args.build_args:
        data["buildargs"] = {**(data.get("buildargs") or {}),
                             **_key_values("--build-arg", args.build_args)}
    if args.labels:
        data["labels"] = {**(data.get("labels") or {}), **_key_values("--label", args.labels)}
    if args.target:
        data["target"] = args.target
    if args.pull:
        data["pull"] = True
    if args.secrets:
        from atomic_reactor._request import parse_secret

        data["secrets"] = list(data.get("secrets") or []) + [parse_secret(text)
                                                              for text in args.secrets]
    if args.no_cache:
        data["use_cache"] = False


def _secret_substitutions(args: argparse.Namespace) -> list[str]:
    """``KEY=VALUE`` items of --substitute-secret(-env), their values registered as secrets."""
    from atomic_reactor.errors import BuildJsonError

    items: list[str] = []
    for item in args.substitute_secret:
        key, sep, value = item.partition("=")
        register_secret(value)  # first, so not even an error about it can show it
        if not sep or not key:  # (without '=' the whole item may be the secret: not shown)
            raise BuildJsonError("--substitute-secret takes KEY=VALUE (a dotted key, '=', "
                                 "the secret value)")
        items.append(item)
    for item in args.substitute_secret_env:
        key, sep, variable = item.partition("=")
        if not sep or not key or not variable:
            raise BuildJsonError(f"--substitute-secret-env {item!r} is not of the form "
                                 "KEY=VARIABLE")
        value = os.environ.get(variable)
        if value is None:
            raise BuildJsonError(f"--substitute-secret-env {key}: the environment variable "
                                 f"{variable} is not set")
        register_secret(value)
        items.append(f"{key}={value}")
    return items


def _register_config_secrets() -> None:
    """Mask the passwords of the docker config from the start, before any is used."""
    from atomic_reactor._registry.auth import register_config_secrets

    register_config_secrets()


def _install_progress(tasker: DockerTasker, args: argparse.Namespace) -> Renderer | None:
    """Progress bars (terminal) or plain lines for pulls and pushes; none with -q."""
    if args.quiet:
        return None
    from atomic_reactor.cli.progress import make_renderer

    renderer = make_renderer(sys.stderr)
    tasker.add_progress_listener(renderer)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _ConsoleHandler):
            handler.renderer = renderer
    return renderer


def _uninstall_progress(renderer: Renderer | None) -> None:
    if renderer is None:
        return
    renderer.close()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _ConsoleHandler) and handler.renderer is renderer:
            handler.renderer = None


def _write_outputs(args: argparse.Namespace, results: BuildResults) -> None:
    if args.metadata_file:
        write_metadata(args.metadata_file, results)
    if args.iidfile and results.image_id:
        from atomic_reactor._files import write_text_atomic

        write_text_atomic(args.iidfile, results.image_id)


def _check_output_paths(args: argparse.Namespace) -> None:
    """Make the output files' directories; refuse paths that cannot be written, before
    anything is built."""
    from atomic_reactor.errors import InputError

    for option, path in (("--metadata-file", args.metadata_file), ("--iidfile", args.iidfile)):
        if not path:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{option} {path}: cannot create the directory {directory} "
                             f"({exc.strerror or exc})") from None
        if not os.access(directory, os.W_OK):
            raise InputError(f"{option} {path}: the directory {directory} is not writable")
        if os.path.isdir(path):
            raise InputError(f"{option} {path} is a directory")


def cmd_build(args: argparse.Namespace) -> int:
    try:
        return _build(args)
    finally:
        _resume_gc()


def _build(args: argparse.Namespace) -> int:
    _register_config_secrets()
    _check_output_paths(args)
    request, method = _request_from_args(args)
    if args.check_reproducible:
        _resume_gc()
        return _check_reproducible(args, request, method)
    if method == "here":
        from atomic_reactor.inner import DockerBuildWorkflow

        workflow = DockerBuildWorkflow(**request.workflow_kwargs())
        renderer = _install_progress(workflow.tasker, args)
        _resume_gc()
        try:
            results = _run(workflow.build_container_image, args)
        finally:
            _uninstall_progress(renderer)
    else:
        _resume_gc()
        from atomic_reactor._buildcontainer.run import run_in_build_container

        keep = bool(getattr(args, "keep_build_container", False))
        results = _run(lambda: run_in_build_container(method, request,
                                                      keep_build_container=keep), args)
    _write_outputs(args, results)
    return finish(results, quiet=args.quiet)


def _check_reproducible(args: argparse.Namespace, request: BuildRequest, method: str) -> int:
    from atomic_reactor._reproducible import DEFAULT_DELAY, check_reproducible
    from atomic_reactor.errors import InputError

    if method != "here":
        raise InputError("--check-reproducible builds here (not with --method "
                         f"{method})")
    delay = DEFAULT_DELAY if args.check_delay is None else args.check_delay
    if delay < 0:
        raise InputError("--check-delay must be 0 or more seconds")
    check = _run(lambda: check_reproducible(request, delay=delay), args)
    results = check.results()
    _write_outputs(args, results)
    for line in check.comparison.lines():
        print(line)
    check.raise_for_status()
    return 0


def _run(func: Any, args: argparse.Namespace) -> Any:
    from atomic_reactor.errors import BuildCancelled

    try:
        return func()
    except BuildCancelled as exc:
        if exc.results is not None:
            _write_outputs(args, exc.results)
        raise


def cmd_plugins(args: argparse.Namespace) -> int:
    import json

    from atomic_reactor.errors import PluginConfigError
    from atomic_reactor.plugin import PluginLibrary, plugin_schema

    library = PluginLibrary()
    if args.schema:
        plugin = library.find(args.schema)
        if plugin is None:
            raise PluginConfigError(f"unknown plugin {args.schema!r}", plugin=args.schema)
        print(json.dumps(plugin_schema(plugin), indent=2, sort_keys=True))
        return 0
    for name in library.names():
        try:
            plugin = library.find(name)
            phase = plugin.phase if plugin else "?"
        except PluginConfigError as exc:
            phase = f"(cannot load: {exc})"
        print(f"{name:32} {phase}")
    return 0


def cmd_create_build_image(args: argparse.Namespace) -> int:
    from atomic_reactor.cli.build_image import cmd_create_build_image as command

    return command(args)


def cmd_inside_build(args: argparse.Namespace) -> int:
    from atomic_reactor.cli.inside_build import cmd_inside_build as command

    _register_config_secrets()
    return command(args)


def cmd_worker(args: argparse.Namespace) -> int:
    from atomic_reactor.cli.farm import cmd_worker as command

    return command(args)


def cmd_submit(args: argparse.Namespace) -> int:
    from atomic_reactor.cli.farm import cmd_submit as command

    _register_config_secrets()
    return command(args)


def cmd_farm(args: argparse.Namespace) -> int:
    from atomic_reactor.cli.farm import cmd_farm as command

    return command(args)


COMMANDS = {"build": cmd_build, "plugins": cmd_plugins,
            "create-build-image": cmd_create_build_image, "inside-build": cmd_inside_build,
            "worker": cmd_worker, "submit": cmd_submit, "farm": cmd_farm}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never calls ``sys.exit``)."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(words).parse_args(words)
    verbosity = 1 if args.verbose else (-1 if args.quiet else 0)
    setup_logging(verbosity)
    from atomic_reactor.errors import AtomicReactorError

    if args.command != "build":
        _resume_gc()  # (a build resumes it once its workflow is set up)
    try:
        return COMMANDS[args.command](args)
    except AtomicReactorError as exc:
        if verbosity > 0:
            logger.debug("error details", exc_info=True)

        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. an output file that cannot be written
        if verbosity > 0:
            logger.debug("error details", exc_info=True)

        where = f": {exc.filename}" if exc.filename else ""
        print(f"{PROG}: error: {redact(exc.strerror or str(exc))}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line, the traceback with -v
        if verbosity > 0:
            logger.debug("internal error", exc_info=True)

        print(f"{PROG}: internal error: {type(exc).__name__}: {redact(str(exc))} "
              "(this is a bug; -v shows the traceback)", file=sys.stderr)
        return 1


def _exit_now(code: int) -> NoReturn:
    """End the process as the interpreter would, without tearing down its objects.

    Python's own exit frees every module and object one by one (40-60 ms after a
    build, on a quiet machine); the operating system reclaims the memory anyway. What
    an exit must do still happens, in the interpreter's order: other (non-daemon)
    threads are waited for, the ``atexit`` functions run (logging's shutdown, which
    flushes and closes the handlers, and ``weakref.finalize`` clean-ups such as
    temporary directories), standard output and error are flushed.
    """
    import atexit
    import contextlib
    import threading

    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # closed, or a broken pipe: nothing more to say
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


#: whether run() paused the garbage collector (and nothing resumed it yet)
_gc_state = {"paused": False}


def _pause_gc() -> None:
    """No cyclic garbage collection while a command starts: the modules, classes and
    functions it loads live as long as the process, so collecting among them is
    wasted (14-28 ms of a build's start-up; see bench/cli_startup.py)."""
    if gc.isenabled():
        gc.disable()
        _gc_state["paused"] = True


def _resume_gc() -> None:
    """Collect again, leaving what was loaded so far out of every later collection."""
    if _gc_state["paused"]:
        _gc_state["paused"] = False
        gc.freeze()
        gc.enable()


def run() -> None:
    """Console-script entry point (``--help`` and usage errors exit through argparse)."""
    _pause_gc()
    _exit_now(main())
