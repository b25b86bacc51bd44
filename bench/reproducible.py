"""What a reproducible build costs: the normalisation of a ~200 MB image against the build.

Each run builds one context twice without the engine's cache, once as a plain build
and once with ``--reproducible`` (interleaved: which goes first alternates), through
``atomic-reactor build path``. The image adds ~``--size-mb`` MB in three layers: a
``COPY`` of an incompressible file, a ``RUN`` writing as much random data, and a
``RUN`` writing ``--files`` small files. Printed per run and as medians:

* the reproducible build's normalisation time (the ``reproducible`` plugin: docker
  save, new layers rewritten, loaded back) against its build step: the share of the
  build the normalisation costs;
* the whole command, plain against reproducible: the end-to-end overhead.

``--smoke`` does one tiny run (CI checks the bench still works, not the figures).
The engine lock of the test suite is held for the whole run and everything the
bench made is removed.

    .venv/bin/python bench/reproducible.py [--runs 5] [--size-mb 200] [--files 2000]
    .venv/bin/python bench/reproducible.py --smoke
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

from tests.support.env import (  # noqa: E402
    BASE_IMAGE,
    EngineTracker,
    ensure_base_image,
    ensure_engine,
    warn_leftovers,
)

CLI = [sys.executable, "-m", "atomic_reactor"]


def make_context(directory: Path, size_mb: int, files: int) -> None:
    directory.mkdir(parents=True)
    half = max(1, size_mb // 2)
    (directory / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "COPY payload /payload\n"
        f"RUN dd if=/dev/urandom of=/generated bs=1M count={half} 2>/dev/null\n"
        f"RUN mkdir /many && i=0; while [ $i -lt {files} ]; do echo $i > /many/f$i; "
        "i=$((i+1)); done\n")
    with open(directory / "payload", "wb") as handle:
        for _ in range(half):
            handle.write(os.urandom(1024 * 1024))


def build(context: Path, image: str, reproducible: bool, scratch: Path) -> dict[str, float]:
    metadata = scratch / f"results-{uuid.uuid4().hex[:8]}.json"
    command = [*CLI, "-q", "build", "path", "--uri", str(context), "--image", image,
               "--dont-pull-base-image", "--no-cache", "--metadata-file", str(metadata)]
    if reproducible:
        command += ["--reproducible", "--source-date-epoch", "1700000000"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: the build failed:\n{done.stderr[-2000:]}")
    results = json.loads(metadata.read_text())
    metadata.unlink()
    durations = results["plugins_durations"]
    timing = {"total": total, "build": float(durations["docker_build"])}
    if reproducible:
        timing["normalise"] = float(durations["reproducible"])
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
    return timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="one tiny run")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.size_mb, args.files = 1, 2, 20

    ensure_engine()
    ensure_base_image(BASE_IMAGE)
    tracker = EngineTracker(protected=[BASE_IMAGE])
    tracker.snapshot()
    scratch = Path(tempfile.mkdtemp(prefix="bench-reproducible-"))
    plain: list[dict[str, float]] = []
    repro: list[dict[str, float]] = []
    try:
        context = scratch / "context"
        make_context(context, args.size_mb, args.files)
        print(f"bench: ~{args.size_mb} MB in new layers, {args.files} small files, "
              f"{args.runs} runs", flush=True)
        for run in range(args.runs):
            order = (False, True) if run % 2 == 0 else (True, False)
            for reproducible in order:
                image = f"atomic-reactor-bench/reproducible-{uuid.uuid4().hex[:8]}:{run}"
                timing = build(context, image, reproducible, scratch)
                (repro if reproducible else plain).append(timing)
                if reproducible:
                    print(f"  run {run + 1}: reproducible {timing['total']:6.2f} s (build "
                          f"{timing['build']:5.2f} s, normalise {timing['normalise']:5.2f} s, "
                          f"{timing['normalise'] / timing['build']:.0%} of the build)",
                          flush=True)
                else:
                    print(f"  run {run + 1}: plain        {timing['total']:6.2f} s (build "
                          f"{timing['build']:5.2f} s)", flush=True)
        norm = statistics.median(t["normalise"] for t in repro)
        built = statistics.median(t["build"] for t in repro)
        share = statistics.median(t["normalise"] / t["build"] for t in repro)
        total_plain = statistics.median(t["total"] for t in plain)
        total_repro = statistics.median(t["total"] for t in repro)
        print(f"median: normalisation {norm:.2f} s, build step {built:.2f} s, "
              f"normalisation = {share:.0%} of the build step "
              f"({args.size_mb / norm:.0f} MB/s)")
        print(f"median: whole command plain {total_plain:.2f} s, reproducible "
              f"{total_repro:.2f} s, ratio {total_repro / total_plain:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        warn_leftovers(tracker.cleanup(), "bench/reproducible.py")
        tracker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
