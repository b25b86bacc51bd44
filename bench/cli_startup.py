"""How long atomic-reactor takes to start: ``--help``, and a build up to its first engine call.

    .venv/bin/python bench/cli_startup.py [--runs 9] [--smoke] [--against DIR]

Kinds, interleaved (the order alternates from one round to the next), medians:

- ``bare``: ``python -c pass``, the interpreter alone;
- ``help``: ``atomic-reactor --help`` (target under 0.3 s);
- ``buildah``/``docker``: the process start of a build, from starting
  ``atomic-reactor build path`` to its first call to the engine (imports, argument
  parsing, request validation, source copy, workflow set-up; target under 0.15 s
  for either engine), seen by a stand-in engine that notes when it is first
  reached: a ``buildah`` in PATH that records the time and fails, and a unix
  socket as ``DOCKER_HOST`` that records its first connection (the docker backend
  speaks the Engine API through its own transport: neither the docker SDK nor
  requests is imported). For these two the CPU time of the whole run (the
  process and what it started, up to its exit after the stand-in's failure) is
  printed too: it depends less on the load of the machine than the wall time does.

With ``--against DIR`` (another checkout with its own ``.venv``, e.g. a worktree
of main) the two build starts of that tree are measured too, interleaved with ours
(``buildah@base``, ``docker@base``), and the ratios ours/baseline printed.

The measured processes run without ``PYTHONDONTWRITEBYTECODE`` (a session that sets
it would otherwise compile every module at every start), after one unmeasured run
of each command has written the bytecode (and ``compileall`` of the sources).

Last figures (2026-12-03 12:40 UTC, a machine of its own, load 0.1-0.3, ``--runs 11
--against`` a worktree of a7c36b6, before the dataclass code cache, the parser built
for its command and the docker transport's own HTTP): bare 22.5 ms, --help 105 ms,
buildah 146.3 ms against 177.8 ms (0.823), docker 141.6 ms against 210.0 ms (0.674);
CPU of a run 151 / 145 ms against 185 / 214 ms. (On 2026-12-02's machine, where bare
Python took 14 ms: buildah 109-140 ms, docker 111-124 ms.) More in
docs/architecture.md, "Speed".
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import (
    CLI,
    ROOT,
    Figure,
    Timings,
    bench_parser,
    interleaved,
    millis,
    parse_bench_args,
    print_figures,
    ratio,
)


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a measured Python process: bytecode is read, not remade."""
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def compile_sources(root: Path = ROOT) -> None:
    compileall.compile_dir(str(root / "src"), quiet=1)


def make_start_context(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(f"FROM busybox\nRUN echo {uuid.uuid4().hex}\n")


#: CPU seconds of each measured run of a build's start, by kind
CPU: dict[str, list[float]] = {}


def _run_child(engine: str, command: Sequence[str], env: dict[str, str]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(list(command), capture_output=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(engine, []).append(after.ru_utime - before.ru_utime
                                      + after.ru_stime - before.ru_stime)


def startup_buildah(context: Path, scratch: Path, cli: Sequence[str] = CLI,
                    kind: str = "buildah") -> float:
    """Seconds from starting atomic-reactor to its first buildah call."""
    bindir = scratch / "fake-bin"
    bindir.mkdir(exist_ok=True)
    stamp = scratch / "first-call"
    stamp.unlink(missing_ok=True)
    fake = bindir / "buildah"
    fake.write_text(f"#!/bin/sh\n[ -e {stamp} ] || date +%s.%N > {stamp}\nexit 1\n")
    fake.chmod(0o755)
    env = python_env({"PATH": f"{bindir}:{os.environ['PATH']}"})
    started = time.time()
    _run_child(kind, [*cli, "-q", "build", "path", "--uri", str(context), "--image",
                           "bench-start:1", "--engine", "buildah", "--dont-pull-base-image"],
               env)
    return float(stamp.read_text()) - started


def startup_docker(context: Path, scratch: Path, cli: Sequence[str] = CLI,
                   kind: str = "docker") -> float:
    """Seconds from starting atomic-reactor to its first connection to the docker socket."""
    path = scratch / "docker.sock"
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    first: list[float] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if not first:
                first.append(time.time())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started = time.time()
    _run_child(kind, [*cli, "-q", "build", "path", "--uri", str(context), "--image",
                          "bench-start:1", "--engine", "docker", "--dont-pull-base-image",
                          "--retry-attempts", "1"],
               python_env({"DOCKER_HOST": f"unix://{path}"}))
    server.close()
    return first[0] - started if first else float("nan")


def time_once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, env=python_env())
    return time.perf_counter() - started


def measures(scratch: Path, baseline: Path | None = None) -> dict[str, Callable[[], float]]:
    context = scratch / "ctx"
    make_start_context(context)
    kinds: dict[str, Callable[[], float]] = {
        "bare": lambda: time_once([sys.executable, "-c", "pass"]),
        "help": lambda: time_once([*CLI, "--help"]),
        "buildah": lambda: startup_buildah(context, scratch),
        "docker": lambda: startup_docker(context, scratch),
    }
    if baseline is not None:
        base_cli = (str(baseline / ".venv" / "bin" / "python"), "-m", "atomic_reactor")
        kinds["buildah@base"] = lambda: startup_buildah(context, scratch, base_cli,
                                                        "buildah@base")
        kinds["docker@base"] = lambda: startup_docker(context, scratch, base_cli,
                                                      "docker@base")
    return kinds


def main() -> int:
    parser = bench_parser(__doc__, runs=9, smoke="three runs: figures, no target")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="also measure the build starts of this checkout (its .venv)")
    args = parse_bench_args(parser, {"runs": 3})
    baseline = args.against.resolve() if args.against else None
    compile_sources()
    if baseline is not None:
        compile_sources(baseline)
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        kinds = measures(scratch, baseline)
        for measure in kinds.values():  # writes the bytecode of whatever each one imports
            measure()
        for samples in CPU.values():
            samples.clear()
        times = Timings(kinds, echo=False)
        load = [os.getloadavg()[0]]
        for run, kind in interleaved(list(kinds), args.runs, rotate=True):
            times.add(run, kind, kinds[kind]())
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_figures([
        Figure("python -c pass", millis(times.median("bare"))),
        Figure("atomic-reactor --help", millis(times.median("help")), "< 300 ms"),
        Figure("build, start before the first buildah call", millis(times.median("buildah")),
               "< 150 ms"),
        Figure("build, start before the first docker call", millis(times.median("docker")),
               "< 150 ms"),
        *(Figure(f"  CPU time of that run, {engine}", millis(statistics.median(samples)))
          for engine, samples in CPU.items() if samples),
        *(Figure(f"baseline: start before the first {engine} call",
                 f"{millis(times.median(f'{engine}@base'))} "
                 f"(ours/baseline {ratio(times.ratio(engine, f'{engine}@base'))})")
          for engine in ("buildah", "docker") if baseline is not None),
        Figure("load average (1 min) during the runs",
               f"{min(load):.2f} .. {max(load):.2f}"),
    ], smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
