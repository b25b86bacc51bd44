"""atomic-reactor --engine buildah against buildah by hand, and the process start.

Each run pulls a base image from a local registry, builds a fresh ~40 MB
incompressible layer made by a ``RUN`` step and pushes the result, once through
``atomic-reactor build path --engine buildah`` and once through ``buildah pull`` +
``buildah bud`` + ``buildah push`` with the same options (chroot isolation,
``--layers``, Docker schema 2), interleaved (alternating which goes first).
Prints per-run timings, the medians and the ratio atomic-reactor / buildah
(target: at most 1.02).

Then the process start of atomic-reactor for either engine: the time from
starting ``atomic-reactor build path`` to its first call to the engine (imports,
argument parsing, request validation, source copy, workflow set-up), measured
by a stand-in engine that notes when it is first reached: a ``buildah`` in PATH
that records the time and fails, and a unix socket as ``DOCKER_HOST`` that
records its first connection (target: under 0.15 s).

    .venv/bin/python bench/build_push_buildah.py [--runs 5] [--size-mb 40] [--smoke]

``--smoke``: one run with a 1 MB layer, figures printed, no threshold.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _common import CLI, Figure, Timings, interleaved, millis, print_figures, ratio, seconds
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


def run_reactor(context: Path, registry: str, name: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([*CLI, "-q", "build", "path", "--uri", str(context), "--image", name,
                           "--engine", "buildah", "--source-registry", registry,
                           "--target-registries", registry], capture_output=True, text=True,
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


def startup_buildah(context: Path, scratch: Path) -> float:
    """Seconds from starting atomic-reactor to its first buildah call."""
    bindir = scratch / "fake-bin"
    bindir.mkdir(exist_ok=True)
    stamp = scratch / "first-call"
    stamp.unlink(missing_ok=True)
    fake = bindir / "buildah"
    fake.write_text(f"#!/bin/sh\n[ -e {stamp} ] || date +%s.%N > {stamp}\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    started = time.time()
    subprocess.run([*CLI, "-q", "build", "path", "--uri", str(context), "--image",
                    "bench-start:1", "--engine", "buildah", "--dont-pull-base-image"],
                   capture_output=True, env=env, check=False)
    return float(stamp.read_text()) - started


def startup_docker(context: Path, scratch: Path) -> float:
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
    subprocess.run([*CLI, "-q", "build", "path", "--uri", str(context), "--image",
                    "bench-start:1", "--engine", "docker", "--dont-pull-base-image",
                    "--retry-attempts", "1"],
                   capture_output=True, env={**os.environ, "DOCKER_HOST": f"unix://{path}"},
                   check=False)
    server.close()
    return first[0] - started if first else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--startup-runs", type=int, default=7)
    parser.add_argument("--smoke", action="store_true",
                        help="one tiny run: figures, no threshold")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.size_mb, args.startup_runs = 1, 1, 1

    ensure_buildah_base_image(BASE_IMAGE)
    scratch = Path(tempfile.mkdtemp(prefix="bench-buildah-"))
    running = start_registry(scratch / "registry")
    registry = running.registry.address
    conf = insecure_registries_conf(scratch / "registries.conf", [running.registry])
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)  # plain HTTP, for both sides
    env = dict(os.environ)
    base_repo = f"bench-{uuid.uuid4().hex[:8]}/busybox:latest"
    base = f"{registry}/{base_repo}"
    buildah("push", "-q", "--format", "v2s2", f"localhost/{BASE_IMAGE}", f"docker://{base}")
    times = Timings(["atomic-reactor", "buildah"])
    starts = Timings(["buildah", "docker"], echo=False)
    lock = buildah_lock()  # test sessions clean up what appears while they run: take turns
    lock.acquire()
    try:
        for run, tool in interleaved(["atomic-reactor", "buildah"], args.runs):
            context = scratch / f"ctx-{uuid.uuid4().hex[:8]}"
            make_context(context, base, args.size_mb)
            name = f"bench-{uuid.uuid4().hex[:10]}:1"
            remove(base)  # each side pulls the base (its blobs stay shared)
            if tool == "atomic-reactor":
                elapsed = run_reactor(context, registry, f"{registry}/{name}", env)
            else:
                elapsed = run_by_hand(context, base, registry, name)
            remove(f"{registry}/{name}")
            shutil.rmtree(context)
            times.add(run, tool, elapsed)
        context = scratch / "ctx-start"
        make_context(context, base, 0.001)
        for _ in range(args.startup_runs):
            starts.record("buildah", startup_buildah(context, scratch))
            starts.record("docker", startup_docker(context, scratch))
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
        *(Figure(f"process start before the first {engine} call (median of {args.startup_runs})",
                 millis(starts.median(engine)), "< 150 ms") for engine in ("buildah", "docker")),
    ], smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
