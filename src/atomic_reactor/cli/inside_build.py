"""``atomic-reactor inside-build``: build from a build json given by the environment."""

from __future__ import annotations

import argparse

from atomic_reactor._secrets import load_secrets_file
from atomic_reactor.cli._results import finish

# as in atomic_reactor._buildcontainer.inside (not imported here: --help stays fast)
INPUTS = ("auto", "path", "env", "osv3")
DEFAULT_BUILD_JSON = "/run/share/build.json"
DEFAULT_ENV_NAME = "BUILD_JSON"

__all__ = ["add_parser", "cmd_inside_build"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "inside-build", help="build from a build json given by a file, a variable or "
                             "OpenShift (what runs in a build container)",
        description="Read a build json from the chosen input, apply substitutions, build "
                    "here and write the results (BuildResults JSON) to the results file.")
    parser.add_argument("--input", choices=INPUTS, default="auto",
                        help=f"where the build json comes from: path (--input-arg path=FILE, "
                             f"default {DEFAULT_BUILD_JSON}), env (--input-arg env_name=VAR, "
                             f"default ${DEFAULT_ENV_NAME}), osv3 (OpenShift build variables "
                             "BUILD, SOURCE_URI, SOURCE_REF, OUTPUT_IMAGE, OUTPUT_REGISTRY, "
                             "ATOMIC_REACTOR_PLUGINS) or auto (the one that applies; default)")
    parser.add_argument("--input-arg", metavar="KEY=VALUE", action="append", default=[],
                        help="argument for the input (repeatable): path=FILE, env_name=VAR, "
                             "results=FILE")
    parser.add_argument("--substitute", metavar="KEY=VALUE", action="append", default=[],
                        help="set a key of the build json (dotted: source.uri=…, "
                             "prebuild_plugins.NAME.ARG=…)")
    parser.add_argument("--dont-pull-base-image", action="store_true",
                        help="use the base image the engine already has")
    parser.add_argument("--engine", metavar="ENGINE", default=None,
                        help="container engine: docker, buildah or auto (default: "
                             "$ATOMIC_REACTOR_ENGINE, else auto)")
    parser.add_argument("--results-file", metavar="PATH",
                        help="write the results here (default /run/share/results.json when "
                             "/run/share is a directory)")
    parser.add_argument("--load-plugin", metavar="FILE", action="append", default=[],
                        dest="plugin_files", help="load plugins from this Python file")
    # set by the host for privileged build containers: loopback addresses to relay
    parser.add_argument("--relay-dir", metavar="DIR", help=argparse.SUPPRESS)
    # set by the host: a JSON list of values to mask in everything this build prints/writes
    parser.add_argument("--secrets-file", metavar="FILE", help=argparse.SUPPRESS)


def cmd_inside_build(args: argparse.Namespace) -> int:
    from atomic_reactor._buildcontainer.inside import build_inside

    if args.secrets_file:

        load_secrets_file(args.secrets_file)

    results = build_inside(args.input, args.input_arg, args.substitute,
                           dont_pull_base_image=args.dont_pull_base_image,
                           engine=args.engine,
                           results_file=args.results_file, plugin_files=args.plugin_files,
                           relay_dir=args.relay_dir)
    return finish(results, quiet=args.quiet)
