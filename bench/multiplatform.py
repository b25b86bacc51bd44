"""One two-platform build against two single-platform builds run back to back.

Each run builds the same kind of context (a fresh random file, so nothing comes from
the cache, and a ``RUN`` that does some shell work, which for arm64 runs under QEMU
emulation) from a multi-arch busybox base in a local registry, through the command
line, and pushes to that registry:

- ``multi``: ``--platform linux/amd64,linux/arm64`` (one build, a list of two);
- ``singles``: ``--platform linux/amd64`` then ``--platform linux/arm64`` (two builds,
  a plain image each), timed together;
- with ``--engine buildah`` also ``multi-seq``: the two-platform build with the
  platforms built one after the other (``ATOMIC_REACTOR_PLATFORM_JOBS=1``), to see
  what building them in parallel buys.

The variants rotate which goes first. Prints per-run timings, the medians and the
ratio multi / singles (below 1: the two-platform build saves time; buildah builds
the platforms in parallel, docker one after the other).

    .venv/bin/python bench/multiplatform.py [--engine docker|buildah] [--runs 5]
    .venv/bin/python bench/multiplatform.py --smoke      # one quick run, for CI
"""

from __future__ import annotations

import argparse
import json
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

from tests.support.env import engine_lock, ensure_engine, start_registry  # noqa: E402
from tests.support.multiarch import ARM64, emulation_available, push_multiarch_base  # noqa: E402

CLI = [sys.executable, "-m", "atomic_reactor"]
BASE_REPOSITORY = "bench/multiarch-busybox"


def make_context(directory: Path, loops: int) -> None:
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(
        f"FROM {BASE_REPOSITORY}:latest\n"
        "COPY payload /payload\n"
        f"RUN i=0; while [ $i -lt {loops} ]; do i=$((i+1)); done; "
        "uname -m > /arch; sha256sum /payload > /payload.sum\n")
    (directory / "payload").write_bytes(os.urandom(1024 * 1024))


def build(context: Path, registry: str, image: str, platforms: str, env: dict[str, str],
          scratch: Path) -> tuple[float, list[str]]:
    """Seconds taken, and the ids of the images the build left (to remove)."""
    metadata = scratch / f"meta-{uuid.uuid4().hex[:8]}.json"
    command = [*CLI, "-q", "build", "path", "--uri", str(context), "--image", image,
               "--platform", platforms, "--source-registry", registry,
               "--source-registry-insecure", "--target-registries", registry,
               "--target-registries-insecure", "--metadata-file", str(metadata)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: building {image} for {platforms} failed:\n"
                         f"{done.stderr[-2000:]}")
    results = json.loads(metadata.read_text())
    ids = [str(p["image_id"]) for p in results.get("platforms") or () if p.get("image_id")]
    ids += [str(p["base_image_id"]) for p in results.get("platforms") or ()
            if p.get("base_image_id")]
    return elapsed, ids


def remove(engine: str, ids: list[str]) -> None:
    if not ids:
        return
    if engine == "buildah":
        subprocess.run(["buildah", "rmi", "-f", *sorted(set(ids))], capture_output=True,
                       check=False)
    else:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True,
                       check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("docker", "buildah"), default="docker")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loops", type=int, default=30000,
                        help="iterations of the shell loop in the RUN step")
    parser.add_argument("--smoke", action="store_true", help="one short run (CI)")
    args = parser.parse_args()
    runs, loops = (1, 2000) if args.smoke else (args.runs, args.loops)

    if not emulation_available(ARM64):
        raise SystemExit("bench: linux/arm64 cannot run here (binfmt_misc/qemu-aarch64); "
                         "run scripts/ensure-env.sh as root")
    if args.engine == "docker":
        ensure_engine()
    scratch = Path(tempfile.mkdtemp(prefix="bench-multiplatform-"))
    running = start_registry(scratch / "registry")
    registry = running.registry
    env = dict(os.environ, ATOMIC_REACTOR_ENGINE=args.engine, TMPDIR=str(scratch))
    if args.engine == "buildah":
        from tests.support.buildah_env import insecure_registries_conf

        env["CONTAINERS_REGISTRIES_CONF"] = str(
            insecure_registries_conf(scratch / "registries.conf", [registry]))
    kinds = ["multi", "singles"] + (["multi-seq"] if args.engine == "buildah" else [])
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    lock = engine_lock()  # test sessions clean up what appears while they run: take turns
    lock.acquire()
    try:
        push_multiarch_base(registry, BASE_REPOSITORY)
        for run in range(runs):
            order = kinds[run % len(kinds):] + kinds[:run % len(kinds)]
            for kind in order:
                context = scratch / f"ctx-{uuid.uuid4().hex[:8]}"
                make_context(context, loops)
                name = f"bench-{uuid.uuid4().hex[:10]}"
                if kind.startswith("multi"):
                    jobs = {"ATOMIC_REACTOR_PLATFORM_JOBS": "1"} if kind == "multi-seq" else {}
                    elapsed, ids = build(context, registry.address, f"{name}:1",
                                         "linux/amd64,linux/arm64", {**env, **jobs}, scratch)
                else:
                    first, ids_a = build(context, registry.address, f"{name}:amd64",
                                         "linux/amd64", env, scratch)
                    second, ids_b = build(context, registry.address, f"{name}:arm64",
                                          "linux/arm64", env, scratch)
                    elapsed, ids = first + second, ids_a + ids_b
                remove(args.engine, ids)
                shutil.rmtree(context)
                times[kind].append(elapsed)
                print(f"run {run + 1}: {kind:8} {elapsed:7.2f} s", flush=True)
    finally:
        lock.release()
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    multi = statistics.median(times["multi"])
    singles = statistics.median(times["singles"])
    print(f"\nengine: {args.engine}, {runs} run(s), RUN loop of {loops}")
    print(f"median two-platform build:            {multi:.2f} s")
    print(f"median two single-platform builds:    {singles:.2f} s")
    print(f"ratio (two-platform / two singles):   {multi / singles:.3f}")
    if times.get("multi-seq"):
        sequential = statistics.median(times["multi-seq"])
        print(f"median two-platform, one at a time:   {sequential:.2f} s")
        print(f"ratio (parallel / one at a time):     {multi / sequential:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
