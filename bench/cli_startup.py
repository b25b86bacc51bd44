"""How long ``atomic-reactor --help`` takes, against a bare interpreter start.

    .venv/bin/python bench/cli_startup.py [--runs 20] [--smoke]

Target: under 0.3 s. Heavy modules (docker SDK, requests, the workflow) must only
be imported once a command runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_time(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="three runs: a figure, no target")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 3
    baseline = median_time([sys.executable, "-c", "pass"], args.runs)
    helped = median_time([sys.executable, "-m", "atomic_reactor", "--help"], args.runs)
    loaded = median_time([sys.executable, "-c", "import atomic_reactor.inner"], args.runs)
    print(f"python -c pass:                {baseline * 1000:7.1f} ms")
    print(f"atomic-reactor --help:         {helped * 1000:7.1f} ms  (target < 300 ms)")
    print(f"import of the whole workflow:  {loaded * 1000:7.1f} ms  (what --help avoids)")
    print(f"ratio --help / bare python:    {helped / baseline:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
