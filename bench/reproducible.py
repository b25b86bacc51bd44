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
    seconds,
    timed,
)
from tests.support.env import (
    BASE_IMAGE,
    EngineTracker,
    ensure_base_image,
    ensure_engine,
    warn_leftovers,
)


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
    total = timed(command, what="the build")
    results = json.loads(metadata.read_text())
    metadata.unlink()
    durations = results["plugins_durations"]
    timing = {"total": total, "build": float(durations["docker_build"])}
    if reproducible:
        timing["normalise"] = float(durations["reproducible"])
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
    return timing


def main() -> int:
    parser = bench_parser(__doc__, runs=5, size_mb=200, smoke="one tiny run")
    parser.add_argument("--files", type=int, default=2000)
    args = parse_bench_args(parser, {"runs": 1, "size_mb": 2, "files": 20})

    ensure_engine()
    ensure_base_image(BASE_IMAGE)
    tracker = EngineTracker(protected=[BASE_IMAGE])
    tracker.snapshot()
    scratch = Path(tempfile.mkdtemp(prefix="bench-reproducible-"))
    times = Timings(["plain", "reproducible"])
    try:
        context = scratch / "context"
        make_context(context, args.size_mb, args.files)
        print(f"bench: ~{args.size_mb} MB in new layers, {args.files} small files, "
              f"{args.runs} runs", flush=True)
        for run, kind in interleaved(["plain", "reproducible"], args.runs):
            image = f"atomic-reactor-bench/reproducible-{uuid.uuid4().hex[:8]}:{run}"
            timing = build(context, image, kind == "reproducible", scratch)
            note = f" (build {timing['build']:5.2f} s"
            if kind == "reproducible":
                share = timing["normalise"] / timing["build"]
                note += f", normalise {timing['normalise']:5.2f} s, {share:.0%} of the build"
                times.record("build", timing["build"])
                times.record("normalise", timing["normalise"])
                times.record("share", share)
            times.add(run, kind, timing["total"], note + ")")
        norm = times.median("normalise")
        print_figures([
            Figure("median normalisation", seconds(norm)),
            Figure("median build step", seconds(times.median("build"))),
            Figure("normalisation / build step", f"{times.median('share'):.0%} "
                   f"({args.size_mb / norm:.0f} MB/s)"),
            Figure("median whole command, plain", seconds(times.median("plain"))),
            Figure("median whole command, reproducible", seconds(times.median("reproducible"))),
            Figure("ratio (reproducible / plain)",
                   f"{times.ratio('reproducible', 'plain'):.2f}"),
        ], smoke=args.smoke)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        warn_leftovers(tracker.cleanup(), "bench/reproducible.py")
        tracker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
