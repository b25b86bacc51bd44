"""atomic-reactor --engine buildah against buildah by hand: pull, build, push.

Each run pulls a base image from a local registry, builds a fresh ~40 MB
incompressible layer made by a ``RUN`` step and pushes the result, once through
``atomic-reactor build path --engine buildah`` and once through ``buildah pull`` +
``buildah bud`` + ``buildah push`` with the same options (chroot isolation,
``--layers``, Docker schema 2), interleaved (alternating which goes first); the
base is removed before every run, so both sides pull it. Prints per-run timings,
the medians and the ratio atomic-reactor / buildah (target: at most 1.02).
``--engine-push`` adds a third kind: atomic-reactor with ``--push-method engine``
(buildah's own push) instead of the default, our push (the image read from buildah's
storage, compressed once, uploaded by us while it is read). ``--against
CHECKOUT`` adds the atomic-reactor of another checkout (run by its ``.venv``; a
worktree of main, say) to the same rounds: the A/B of a change, with its ratios.

atomic-reactor runs without ``PYTHONDONTWRITEBYTECODE`` after one unmeasured build
(bytecode written once). The process start alone is bench/cli_startup.py.

    .venv/bin/python bench/build_push_buildah.py [--runs 9] [--size-mb 40]
        [--engine-push] [--against CHECKOUT] [--smoke]

``--smoke``: one run with a 1 MB layer, figures printed, no threshold.

Last figures (2026-12-03, a machine of its own, 2 cores, load 0.4-2.6, ``--against``
a worktree of a7c36b6 in the same runs): 0.986 (11 runs), 1.008, 1.012 and 0.990 (15
runs each; 2.18 s against 2.21 s in the last), where the code before the day's changes
gave 0.996-1.100; on 2026-12-04, after a fresh-clone CI: 1.046, 0.975 and 0.967 (21
runs each) and 1.003 (15 runs, the a7c36b6 baseline 1.032 in the same rounds).
Timed per buildah call (6 rounds): our start 140 ms against 4 by hand,
pull and bud the same, after the bud 410 ms against a push of 610. What closed the gap
since 2026-12-02 (1.049 and 1.062 then): the dataclass code cache and the parser built
for its command (the start), the preloading's delay (the bud); before that, our push
became the default on buildah (it reads the storage itself, deflates with zlib-ng, its
modules imported while bud runs), a loopback registry asked over plain HTTP first and
buildah's output followed through a pidfd. More in docs/architecture.md, "Speed".
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from _common import (
    CLI,
    Figure,
    Timings,
    bench_parser,
    interleaved,
    parse_bench_args,
    print_figures,
    ratio,
    seconds,
)
from cli_startup import compile_sources, python_env
from tests.support.buildah_env import (
    buildah_lock,
    ensure_buildah_base_image,
    insecure_registries_conf,
)
from tests.support.env import BASE_IMAGE, start_registry


def buildah(*args: str) -> None:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: buildah {' '.join(args[:3])}… failed:\n{done.stderr[-2000:]}")


def make_context(directory: Path, base: str, size_mb: float) -> None:
    directory.mkdir(parents=True)
    size = int(size_mb * 1_000_000)
    (directory / "Dockerfile").write_text(
        f"FROM {base}\nRUN echo {uuid.uuid4().hex} > /nonce && "
        f"head -c {size} /dev/urandom > /big\n")


def run_reactor(context: Path, registry: str, name: str, env: dict[str, str],
                extra: list[str] | None = None, cli: tuple[str, ...] = CLI) -> float:
    started = time.perf_counter()
    done = subprocess.run([*cli, "-q", "build", "path", "--uri", str(context), "--image", name,
                           "--engine", "buildah", "--source-registry", registry,
                           "--target-registries", registry, *(extra or [])],
                          capture_output=True, text=True,
                          env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: atomic-reactor failed:\n{done.stderr[-2000:]}")
    return elapsed


def run_by_hand(context: Path, base: str, registry: str, name: str) -> float:
    target = f"{registry}/{name}"
    started = time.perf_counter()
    buildah("pull", "-q", base)
    buildah("bud", "-q", "--isolation", "chroot", "--layers", "--format", "docker",
            "--pull=false", "-t", target, str(context))
    buildah("push", "-q", "--format", "v2s2", target, f"docker://{target}")
    return time.perf_counter() - started


def remove(*names: str) -> None:
    subprocess.run(["buildah", "rmi", *names], capture_output=True, check=False)


def main() -> int:
    parser = bench_parser(__doc__, runs=9, size_mb=40.0,
                          smoke="one tiny run: figures, no threshold")
    parser.add_argument("--engine-push", action="store_true",
                        help="also atomic-reactor with --push-method engine (buildah's push)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="also the atomic-reactor of another checkout (its .venv), "
                             "e.g. a worktree of main: an A/B in the same rounds")
    args = parse_bench_args(parser, {"runs": 1, "size_mb": 1})
    baseline: tuple[str, ...] | None = None
    if args.against is not None:
        python = args.against.resolve() / ".venv" / "bin" / "python"
        if not python.is_file():
            raise SystemExit(f"bench: --against {args.against}: no .venv/bin/python there")
        baseline = (str(python), "-m", "atomic_reactor")

    ensure_buildah_base_image(BASE_IMAGE)
    scratch = Path(tempfile.mkdtemp(prefix="bench-buildah-"))
    running = start_registry(scratch / "registry")
    registry = running.registry.address
    conf = insecure_registries_conf(scratch / "registries.conf", [running.registry])
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)  # plain HTTP, for both sides
    env = python_env()
    base_repo = f"bench-{uuid.uuid4().hex[:8]}/busybox:latest"
    base = f"{registry}/{base_repo}"
    buildah("push", "-q", "--format", "v2s2", f"localhost/{BASE_IMAGE}", f"docker://{base}")
    kinds = ["atomic-reactor", "buildah"] + (["atomic-reactor engine-push"]
                                             if args.engine_push else []) \
        + (["baseline"] if baseline else [])
    times = Timings(kinds)
    lock = buildah_lock()  # test sessions clean up what appears while they run: take turns
    lock.acquire()
    load = [os.getloadavg()[0]]
    try:
        compile_sources()
        if args.against is not None:
            compileall.compile_dir(str(args.against / "src"), quiet=1)
        for cli in (CLI, *([baseline] if baseline else [])):
            warm = scratch / f"ctx-warm-{uuid.uuid4().hex[:8]}"  # writes the bytecode
            make_context(warm, base, 0.001)
            run_reactor(warm, registry, f"{registry}/bench-warm:1", env, cli=cli)
            remove(f"{registry}/bench-warm:1")
        for run, tool in interleaved(kinds, args.runs, rotate=True):
            context = scratch / f"ctx-{uuid.uuid4().hex[:8]}"
            make_context(context, base, args.size_mb)
            name = f"bench-{uuid.uuid4().hex[:10]}:1"
            remove(base)  # each side pulls the base (its blobs stay shared)
            if tool == "buildah":
                elapsed = run_by_hand(context, base, registry, name)
            elif tool == "baseline" and baseline:
                elapsed = run_reactor(context, registry, f"{registry}/{name}", env,
                                      cli=baseline)
            else:
                method = ["--push-method", "engine"] if tool.endswith("engine-push") \
                    else []
                elapsed = run_reactor(context, registry, f"{registry}/{name}", env, method)
            remove(f"{registry}/{name}")
            shutil.rmtree(context)
            times.add(run, tool, elapsed)
            load.append(os.getloadavg()[0])
    finally:
        lock.release()
        remove(base)
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print_figures([
        Figure("median atomic-reactor --engine buildah pull+build+push",
               seconds(times.median("atomic-reactor"))),
        Figure("median buildah pull + bud + push", seconds(times.median("buildah"))),
        Figure("ratio (atomic-reactor / buildah)", ratio(times.ratio("atomic-reactor", "buildah")),
               "<= 1.02"),
        *([Figure("median atomic-reactor --push-method engine",
                  seconds(times.median("atomic-reactor engine-push"))),
           Figure("ratio (engine push / buildah)",
                  ratio(times.ratio("atomic-reactor engine-push", "buildah")))]
          if args.engine_push else []),
        *([Figure(f"median baseline ({args.against})", seconds(times.median("baseline"))),
           Figure("ratio (baseline / buildah)", ratio(times.ratio("baseline", "buildah"))),
           Figure("ratio (atomic-reactor / baseline)",
                  ratio(times.ratio("atomic-reactor", "baseline")))]
          if baseline else []),
        Figure("load average (1 min) during the runs", f"{min(load):.2f} .. {max(load):.2f}"),
    ], smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
