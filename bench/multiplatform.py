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

import json
import os
import shutil
import subprocess
import tempfile
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
    timed,
)
from tests.support.buildah_env import BuildahTracker
from tests.support.env import (
    BASE_IMAGE,
    EngineTracker,
    engine_lock,
    ensure_engine,
    start_registry,
    warn_leftovers,
)
from tests.support.multiarch import ARM64, emulation_available, push_multiarch_base

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
    elapsed = timed(command, env=env, what=f"building {image} for {platforms}")
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
    parser = bench_parser(__doc__, runs=5, smoke="one short run (CI)")
    parser.add_argument("--engine", choices=("docker", "buildah"), default="docker")
    parser.add_argument("--loops", type=int, default=30000,
                        help="iterations of the shell loop in the RUN step")
    args = parse_bench_args(parser, {"runs": 1, "loops": 2000})
    runs, loops = args.runs, args.loops

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
    times = Timings(kinds)
    lock = engine_lock()  # test sessions clean up what appears while they run: take turns
    lock.acquire()
    # what the builds leave beyond the ids their results name (the bases they pulled by
    # digest, for one) is removed at the end
    tracker: EngineTracker | BuildahTracker = \
        BuildahTracker(protected=[f"localhost/{BASE_IMAGE}"]) if args.engine == "buildah" \
        else EngineTracker(protected=[BASE_IMAGE])
    tracker.snapshot()
    try:
        push_multiarch_base(registry, BASE_REPOSITORY)
        for run, kind in interleaved(kinds, runs, rotate=True):
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
            times.add(run, kind, elapsed)
    finally:
        warn_leftovers(tracker.cleanup(), "bench/multiplatform.py")
        tracker.close()
        lock.release()
        running.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    figures: list[Figure | str] = [
        f"engine: {args.engine}, {runs} run(s), RUN loop of {loops}",
        Figure("median two-platform build", seconds(times.median("multi"))),
        Figure("median two single-platform builds", seconds(times.median("singles"))),
        Figure("ratio (two-platform / two singles)", ratio(times.ratio("multi", "singles")))]
    if times.has("multi-seq"):
        figures += [
            Figure("median two-platform, one at a time", seconds(times.median("multi-seq"))),
            Figure("ratio (parallel / one at a time)", ratio(times.ratio("multi", "multi-seq")))]
    print_figures(figures, smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
