"""Squash the same image with atomic-reactor's ``squash`` plugin and with docker-squash.

Builds a test image on the busybox test base: five layers adding ~100 MB of
incompressible data plus a thousand (``--files``) small files, deleting and
replacing some of them in later layers. Then squashes its top five layers into
one, alternately with the plugin (in-process, archive written and image loaded)
and with docker-squash (PyPI ``docker-squash``, same work: archive written and
image loaded), ``--runs`` times each. Prints every timing, the medians and the
ratio ours / theirs. docker-squash is installed into the running interpreter's
environment with pip when missing.

The engine lock of the test suite is held for the whole run (so concurrent test
sessions do not mistake our images for theirs) and everything the bench created
is removed at the end.

    .venv/bin/python bench/squash.py [--runs 3] [--size-mb 100] [--files 1000] [--smoke]

``--smoke``: one run of a 5 MB image with 20 small files, ours only unless
docker-squash is installed already (nothing is installed); a figure, no threshold.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import (
    Figure,
    Timings,
    bench_parser,
    interleaved,
    parse_bench_args,
    print_figures,
    ratio,
    run,
    seconds,
)
from tests.support.env import (
    BASE_IMAGE,
    EngineTracker,
    ensure_base_image,
    ensure_engine,
    warn_leftovers,
)

LAYERS = 5


def ensure_docker_squash() -> Any:
    try:
        return importlib.import_module("docker_squash.squash")
    except ImportError:
        print("bench: installing docker-squash into this environment", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "docker-squash"],
                       check=True)
        importlib.invalidate_caches()
        return importlib.import_module("docker_squash.squash")


def dockerfile(size_mb: int, files: int) -> str:
    chunk = max(1, size_mb // 5)
    return "\n".join([
        f"FROM {BASE_IMAGE}",
        f"RUN mkdir /data && dd if=/dev/urandom of=/data/a bs=1M count={chunk} 2>/dev/null",
        f"RUN dd if=/dev/urandom of=/data/b bs=1M count={chunk} 2>/dev/null && mkdir /data/small"
        f" && i=0; while [ $i -lt {files} ]; do echo $i > /data/small/f$i; i=$((i+1)); done",
        f"RUN rm /data/a && dd if=/dev/urandom of=/data/c bs=1M count={chunk} 2>/dev/null"
        " && rm -f /data/small/f1*",
        f"RUN dd if=/dev/urandom of=/data/d bs=1M count={chunk} 2>/dev/null"
        " && ln /data/d /data/d-link && echo x > /data/small/f5",
        f"RUN dd if=/dev/urandom of=/data/e bs=1M count={chunk} 2>/dev/null && rm /data/b",
        "",
    ])


def build(context: Path, tag: str, size_mb: int, files: int) -> None:
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile(size_mb, files))
    run(["docker", "build", "-q", "--network", "none", "-t", tag, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"}, what="docker build")


def run_ours(tasker: Any, image_id: str, target: str, scratch: Path) -> float:
    from atomic_reactor._reference import ImageName
    from atomic_reactor.plugins.squash import SquashPlugin

    builder = SimpleNamespace(image_id=image_id, base_image=None,
                              get_built_image_info=lambda: None)
    builder.set_image_id = lambda new_id: setattr(builder, "image_id", new_id)
    workflow: Any = SimpleNamespace(image=ImageName.parse(target), workdir=str(scratch),
                                    exported_image_sequence=[], builder=builder)
    export = scratch / "ours"
    plugin = SquashPlugin(tasker, workflow, from_layer=str(LAYERS), export_dir=str(export))
    started = time.perf_counter()
    result = plugin.run()
    elapsed = time.perf_counter() - started
    if result.skipped or not result.loaded:
        raise SystemExit(f"bench: our squash did not squash: {result}")
    shutil.rmtree(export)
    return elapsed


def run_theirs(squash_module: Any, client: Any, image_id: str, target: str,
               scratch: Path) -> float:
    log = logging.getLogger("docker-squash")
    output = scratch / "theirs.tar"
    work = scratch / f"theirs-{uuid.uuid4().hex[:8]}"  # docker-squash wants to create it
    started = time.perf_counter()
    squash_module.Squash(log=log, image=image_id, docker=client, from_layer=str(LAYERS),
                         tag=target, output_path=str(output), load_image=True,
                         tmp_dir=str(work)).run()
    elapsed = time.perf_counter() - started
    output.unlink()
    shutil.rmtree(work, ignore_errors=True)
    return elapsed


def remove(client: Any, ref: str) -> None:
    try:
        client.remove_image(ref)
    except Exception as exc:
        print(f"bench: could not remove {ref}: {exc}", file=sys.stderr)


def main() -> int:
    parser = bench_parser(__doc__, runs=3, size_mb=100)
    parser.add_argument("--files", type=int, default=1000,
                        help="small files written by the second layer")
    args = parse_bench_args(parser, {"runs": 1, "size_mb": 5, "files": 20})
    logging.basicConfig(level=logging.WARNING)

    ensure_engine()
    ensure_base_image(BASE_IMAGE)
    squash_module: Any = None
    if args.smoke:
        try:
            squash_module = importlib.import_module("docker_squash.squash")
        except ImportError:
            print("bench: docker-squash is not installed; smoke run of ours only")
    else:
        squash_module = ensure_docker_squash()
    from atomic_reactor.core import DockerTasker

    tasker = DockerTasker()
    client = tasker.d
    tracker = EngineTracker(protected=[BASE_IMAGE])
    tracker.snapshot()
    name = f"atomic-reactor-bench/squash-{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix="bench-squash-"))
    kinds = ["ours", "theirs"] if squash_module is not None else ["ours"]
    times = Timings(kinds)
    try:
        print(f"bench: building {name} ({LAYERS} layers, ~{args.size_mb} MB, "
              f"{args.files} small files)", flush=True)
        build(scratch / "context", f"{name}:built", args.size_mb, args.files)
        image_id = str(client.inspect_image(f"{name}:built")["Id"])
        for round_no, which in interleaved(kinds, args.runs):
            target = f"{name}:{which}-{round_no}"
            if which == "ours":
                elapsed = run_ours(tasker, image_id, target, scratch)
            else:
                elapsed = run_theirs(squash_module, client, image_id, target, scratch)
            times.add(round_no, which, elapsed)
            remove(client, target)
        figures = [Figure("median ours", seconds(times.median("ours")))]
        if times.has("theirs"):
            figures += [Figure("median docker-squash", seconds(times.median("theirs"))),
                        Figure("ratio ours/theirs", ratio(times.ratio("ours", "theirs")))]
        print_figures(figures, smoke=args.smoke)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        warn_leftovers(tracker.cleanup(), "bench/squash.py")
        tracker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
