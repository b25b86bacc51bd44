"""Twelve builds through the farm with 1, 2 and 3 workers, against the same twelve
builds run locally one after another.

Each build has a context of its own (a Dockerfile whose RUN step makes and hashes
a few MB of random data, so it really builds and really pushes) and pushes to a
local registry. The farm runs on this host: a ``redis-server`` on 127.0.0.1 (port
6391..6399, append-only), N ``atomic-reactor worker`` processes (concurrency 1),
the builds queued at once and waited for together. The local baseline runs
``atomic-reactor build json`` twelve times in a row. Rounds are interleaved
(local, 1, 2, 3 workers; the next round in the other order); printed: the wall
time of each round, builds per minute (median over the rounds) and the ratio to
the local baseline.

This machine has 2 cores and one engine for all workers: builds compete for the
same CPU and engine, so the figure flattens after 2 workers. On N real hosts each
worker has its own CPU and engine (see docs/farm.md).

    .venv/bin/python bench/farm.py [--builds 12] [--workers 1,2,3] [--rounds 1]
    .venv/bin/python bench/farm.py --smoke      # 3 builds, 1 and 2 workers (for CI)
"""

from __future__ import annotations

import contextlib
import json
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
    run,
)
from tests.support.env import (
    BASE_IMAGE,
    engine_client,
    engine_lock,
    ensure_base_image,
    ensure_engine,
    push_base_image,
    start_registry,
)
from tests.support.farmnet import RedisServer


def make_builds(root: Path, count: int, registry: str, base: str, size_mb: int
                ) -> list[Path]:
    tag = uuid.uuid4().hex[:8]
    paths = []
    for i in range(count):
        context = root / f"ctx-{i}"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(
            f"FROM {base}\nCOPY id.txt /id.txt\n"
            f"RUN dd if=/dev/urandom of=/blob bs=1M count={size_mb} 2>/dev/null && "
            "sha256sum /blob\n")
        (context / "id.txt").write_text(f"{tag}-{i}\n")
        build = {"source": {"provider": "path", "uri": f"file://{context}"},
                 "image": f"bench-farm/b{i}:{tag}", "target_registries": [registry]}
        path = root / f"build-{i}.json"
        path.write_text(json.dumps(build))
        paths.append(path)
    return paths


def remove_images(paths: list[Path]) -> None:
    client = engine_client()
    try:
        for path in paths:
            image = json.loads(path.read_text())["image"]
            registry = json.loads(path.read_text())["target_registries"][0]
            for ref in (image, f"{registry}/{image}"):
                with contextlib.suppress(Exception):
                    client.api.remove_image(ref)
    finally:
        client.close()


def run_local(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        run([*CLI, "-q", "build", "json", str(path)], what="local build")
    return time.perf_counter() - started


def run_farm(paths: list[Path], workers: int, broker: str, scratch: Path) -> float:
    from atomic_reactor import farm

    procs = []
    try:
        for n in range(workers):
            log = open(scratch / f"worker-{workers}-{n}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [*CLI, "worker", "--broker", broker, "--name", f"bench{n}",
                 "--workdir", str(scratch / f"w{n}")], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 60
        for n in range(workers):
            while b"ready." not in (scratch / f"worker-{workers}-{n}.log").read_bytes():
                if time.monotonic() > deadline:
                    raise SystemExit("bench: a worker did not start")
                time.sleep(0.1)
        started = time.perf_counter()
        builds = [farm.submit(path, broker=broker) for path in paths]
        for build in builds:
            results = build.wait(timeout=900)
            if results.exit_code != 0:
                raise SystemExit(f"bench: farm build failed: {results.error}")
        return time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = bench_parser(__doc__, size_mb=8,
                          smoke="a small run: 3 builds, 1 and 2 workers, one round")
    parser.add_argument("--builds", type=int, default=12)
    parser.add_argument("--workers", default="1,2,3", help="worker counts (comma-separated)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parse_bench_args(parser, {"builds": 3, "workers": "1,2", "rounds": 1, "size_mb": 1})
    counts = [int(c) for c in args.workers.split(",") if c]
    ensure_engine()
    ensure_base_image()
    scratch = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    running = start_registry(scratch / "registry")
    redis = RedisServer(scratch / "redis", "127.0.0.1")
    try:
        redis.start()
        registry = running.registry.address
        base = push_base_image(running.registry, BASE_IMAGE)
        kinds = ["local", *[f"{c}w" for c in counts]]
        times = Timings(kinds, label="round")
        for round_no, what in interleaved(kinds, args.rounds):
            paths = make_builds(scratch / f"r{round_no}-{what}", args.builds, registry,
                                base, args.size_mb)
            with engine_lock():  # other test sessions keep off the engine meanwhile
                try:
                    if what == "local":
                        elapsed = run_local(paths)
                    else:
                        elapsed = run_farm(paths, int(what[:-1]), redis.url, scratch)
                finally:
                    remove_images(paths)
            times.add(round_no, what, elapsed, f" ({args.builds} builds)")
        local = times.median("local")
        figures: list[Figure | str] = [
            f"{args.builds} builds, median of {args.rounds} round(s), on "
            f"{len(os.sched_getaffinity(0))} cores and one engine:",
            Figure("  local, one after another",
                   f"{local:6.1f} s  {args.builds * 60 / local:5.1f} builds/min")]
        for count in counts:
            elapsed = times.median(f"{count}w")
            figures.append(Figure(f"  farm, {count} worker(s)",
                                  f"{elapsed:6.1f} s  {args.builds * 60 / elapsed:5.1f} "
                                  f"builds/min  ratio to local {local / elapsed:4.2f}"))
        figures.append("(all workers share this machine's cores and its one engine: the "
                       "figure flattens once the cores are busy)")
        print_figures(figures, smoke=args.smoke)
    finally:
        redis.remove()
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
