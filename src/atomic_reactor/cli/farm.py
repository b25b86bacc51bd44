"""``atomic-reactor worker``, ``submit`` and ``farm status|cancel|keygen``: the build farm.

Nothing here imports Celery at start-up (``--help`` stays fast); the commands do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from atomic_reactor._secrets import register_secret
from atomic_reactor.cli._results import finish, write_metadata

if TYPE_CHECKING:
    from atomic_reactor.farm import FarmStatus

__all__ = ["COMMANDS", "add_parsers", "cmd_farm", "cmd_submit", "cmd_worker"]

#: the commands :func:`add_parsers` adds
COMMANDS = ("worker", "submit", "farm")

BROKER_ENV = "ATOMIC_REACTOR_BROKER"  # as atomic_reactor.farm._config.BROKER_ENV
ENGINES = ("docker", "buildah", "auto")


def _broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", metavar="URL", default=None,
                        help=f"the farm's Redis: redis://HOST:PORT/DB (default ${BROKER_ENV})")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="run a farm worker: take builds from the farm's queues and run them",
        description="Take builds from the farm's queues and run them here, as `build json` "
                    "does, one working directory per build. SIGTERM or Ctrl-C stops it "
                    "after the running builds.")
    _broker_option(worker)
    worker.add_argument("--name", help="the worker's name (default: the host name)")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="builds run at once (default 1)")
    worker.add_argument("--queue", action="append", default=[], metavar="Q",
                        help="queue to take builds from (repeatable; default atomic-reactor)")
    worker.add_argument("--platform", action="append", default=[], metavar="OS/ARCH",
                        dest="platforms",
                        help="a platform this worker builds natively (repeatable; default "
                             "this machine's)")
    worker.add_argument("--engine", choices=ENGINES, default="auto",
                        help="the container engine builds use (default auto)")
    worker.add_argument("--workdir", metavar="DIR",
                        help="where builds get their working directories (default "
                             "$XDG_STATE_HOME/atomic-reactor/farm/NAME)")
    worker.add_argument("--visibility-timeout", type=float, metavar="SECONDS",
                        help="a lost worker's builds run elsewhere after this long (default "
                             "30, or $ATOMIC_REACTOR_FARM_VISIBILITY_TIMEOUT)")

    submit = commands.add_parser(
        "submit", help="queue a build json on the farm (prints the build id first)",
        description="Queue the build a build json describes on the farm; the first line on "
                    "stdout is the build id. A path source is packed and sent along (up to "
                    "50 MiB packed).")
    _broker_option(submit)
    submit.add_argument("path", metavar="BUILD_JSON", help="build json file")
    submit.add_argument("--substitute", metavar="KEY=VALUE", action="append", default=[],
                        help="set a key of the build json, as for `build json`")
    submit.add_argument("--substitute-secret", metavar="KEY=VALUE", action="append",
                        default=[], help="a secret substitution (only when the farm encrypts "
                                         "its messages: $ATOMIC_REACTOR_FARM_KEY_FILE)")
    submit.add_argument("--queue", metavar="Q", help="queue (default atomic-reactor)")
    submit.add_argument("--wait", action="store_true",
                        help="stream the build's output and exit with its exit code")
    submit.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --wait: give up waiting after this long")
    submit.add_argument("--metadata-file", metavar="PATH",
                        help="with --wait: write the build results (JSON) here")

    farm = commands.add_parser("farm", help="the farm's builds: status, cancel",
                               description="Follow and cancel farm builds.")
    actions = farm.add_subparsers(dest="farm_command", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="one build's status (all recent ones "
                                               "without an id)")
    _broker_option(status)
    status.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    status.add_argument("--log", action="store_true",
                        help="print the build's complete log (once it finished)")
    status.add_argument("--json", action="store_true", help="as JSON")
    cancel = actions.add_parser("cancel", help="cancel a build (queued: it never starts; "
                                               "running: as SIGTERM cancels a local build)")
    _broker_option(cancel)
    cancel.add_argument("build_id", metavar="BUILD_ID")
    actions.add_parser("keygen", help="print a new shared key for "
                                      "ATOMIC_REACTOR_FARM_KEY_FILE (encrypted secrets)")


def cmd_worker(args: argparse.Namespace) -> int:
    from atomic_reactor._registry.auth import register_config_secrets
    from atomic_reactor.errors import InputError
    from atomic_reactor.farm._config import FarmConfig
    from atomic_reactor.farm._worker import run_worker

    config = FarmConfig.resolve(args.broker, visibility_timeout=args.visibility_timeout)
    if args.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    platforms = []
    for text in args.platforms:
        from atomic_reactor._engine.types import Platform

        try:
            platforms.append(str(Platform.parse(text)))
        except ValueError as exc:
            raise InputError(f"--platform: {exc}") from None
    register_config_secrets()  # the worker's own credentials: masked in all output
    return run_worker(config, name=args.name, concurrency=args.concurrency,
                      queues=args.queue, engine=args.engine, platforms=platforms,
                      workdir=args.workdir)


def cmd_submit(args: argparse.Namespace) -> int:
    from atomic_reactor.errors import BuildJsonError
    from atomic_reactor.farm import submit

    for item in args.substitute_secret:

        key, sep, value = item.partition("=")
        register_secret(value)
        if not sep or not key:
            raise BuildJsonError("--substitute-secret takes KEY=VALUE")
    if args.metadata_file:
        directory = os.path.dirname(os.path.abspath(args.metadata_file))
        os.makedirs(directory, exist_ok=True)
    build = submit(args.path, broker=args.broker, queue=args.queue,
                   substitutions=args.substitute, secret_substitutions=args.substitute_secret)
    print(build.id, flush=True)
    if not args.wait:
        return 0

    def show(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = build.wait(timeout=args.timeout, on_output=show)
    if args.metadata_file:
        write_metadata(args.metadata_file, results)
    return finish(results, quiet=args.quiet)


def _when(status: FarmStatus) -> str:
    parts = []
    for label, value in (("submitted", status.submitted_at), ("started", status.started_at),
                         ("finished", status.finished_at)):
        if value is not None:
            parts.append(f"{label} {value.strftime('%Y-%m-%d %H:%M:%S')}Z")
    return ", ".join(parts)


def _line(status: FarmStatus) -> str:
    where = f" on {status.worker}" if status.worker and status.state != "queued" else ""
    code = f" (exit {status.exit_code})" if status.exit_code is not None and status.done else ""
    tries = f", attempt {status.attempts}" if status.attempts > 1 else ""
    image = f" {status.image}" if status.image else ""
    platform = f" [{status.platform}]" if status.platform else ""
    return f"{status.id} {status.state}{where}{code}{image}{platform}: {_when(status)}{tries}"


def cmd_farm(args: argparse.Namespace) -> int:
    if args.farm_command == "keygen":
        from atomic_reactor.farm._payload import generate_key

        print(generate_key())
        return 0
    from atomic_reactor.errors import InputError
    from atomic_reactor.farm import build, recent

    if args.farm_command == "cancel":
        status = build(args.build_id, broker=args.broker).cancel()
        print(_line(status))
        return 0
    if not args.build_id:
        if args.log:
            raise InputError("--log needs a BUILD_ID")
        statuses = recent(broker=args.broker)
        if args.json:
            print(json.dumps([s.to_dict() for s in statuses], indent=2))
        for status in statuses if not args.json else ():
            print(_line(status))
        return 0
    one = build(args.build_id, broker=args.broker)
    status = one.status()
    if args.log:
        text = one.log()
        if text is None:
            from atomic_reactor.farm import FarmError

            raise FarmError(f"build {status.id} is {status.state}: no complete log yet")
        sys.stdout.write(text)
        return 0
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(_line(status))
        for child in status.children:  # a multi-platform build: its builds per platform
            print("  " + _line(build(child, broker=args.broker).status()))
    return 0
