"""Build and push the same context with atomic-reactor and with plain docker.

Each run builds a context holding a fresh ~40 MB incompressible file (so every
build really builds and every push really uploads), once through
``atomic-reactor build path`` and once through ``docker build`` + ``docker push``,
interleaved (alternating which goes first). Prints per-run timings, the medians and
the ratio atomic-reactor / docker (target: at most 1.05).

    .venv/bin/python bench/build_push.py [--runs 5] [--size-mb 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.env import (  # noqa: E402
    BASE_IMAGE,
    engine_lock,
    ensure_base_image,
    ensure_engine,
    start_registry,
)

CLI = [sys.executable, "-m", "atomic_reactor"]


def make_context(directory: Path, size_mb: int) -> None:
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY payload /payload\nRUN ls -l /payload\n")
    with open(directory / "payload", "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1024 * 1024))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:4])}… failed:\n{done.stderr[-2000:]}")
    return elapsed


def run_reactor(context: Path, registry: str, name: str) -> float:
    return timed([*CLI, "-q", "build", "path", "--uri", str(context), "--image", name,
                  "--dont-pull-base-image", "--target-registries", registry])


def run_docker(context: Path, registry: str, name: str) -> float:
    target = f"{registry}/{name}"
    started = time.perf_counter()
    timed(["docker", "build", "-q", "-t", target, str(context)])
    timed(["docker", "push", "-q", target])
    return time.perf_counter() - started


def remove_images(*refs: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=40)
    args = parser.parse_args()

    ensure_engine()
    ensure_base_image(BASE_IMAGE)
    scratch = Path(tempfile.mkdtemp(prefix="bench-build-push-"))
    running = start_registry(scratch / "registry")
    registry = running.registry.address
    times: dict[str, list[float]] = {"atomic-reactor": [], "docker": []}
    lock = engine_lock()  # test sessions clean up what appears while they run: take turns
    lock.acquire()
    try:
        for run in range(args.runs):
            order = ["atomic-reactor", "docker"] if run % 2 == 0 else ["docker",
                                                                       "atomic-reactor"]
            for tool in order:
                context = scratch / f"ctx-{uuid.uuid4().hex[:8]}"
                make_context(context, args.size_mb)
                name = f"bench-{uuid.uuid4().hex[:10]}:1"
                if tool == "atomic-reactor":
                    elapsed = run_reactor(context, registry, name)
                    remove_images(name, f"{registry}/{name}")
                else:
                    elapsed = run_docker(context, registry, name)
                    remove_images(f"{registry}/{name}")
                shutil.rmtree(context)
                times[tool].append(elapsed)
                print(f"run {run + 1}: {tool:15} {elapsed:7.2f} s", flush=True)
    finally:
        lock.release()
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    ours = statistics.median(times["atomic-reactor"])
    theirs = statistics.median(times["docker"])
    print(f"\nmedian atomic-reactor build+push: {ours:.2f} s")
    print(f"median docker build + docker push:  {theirs:.2f} s")
    print(f"ratio (atomic-reactor / docker):    {ours / theirs:.3f}  (target <= 1.05)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
