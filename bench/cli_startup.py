"""How long ``atomic-reactor --help`` takes, against a bare interpreter start.

    .venv/bin/python bench/cli_startup.py [--runs 20] [--smoke]

Target: under 0.3 s. Heavy modules (docker SDK, requests, the workflow) must only
be imported once a command runs. The three commands are interleaved (the order
alternates from one run to the next); medians are printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import Figure, Timings, interleaved, millis, print_figures

COMMANDS = {
    "bare": [sys.executable, "-c", "pass"],
    "help": [sys.executable, "-m", "atomic_reactor", "--help"],
    "import": [sys.executable, "-c", "import atomic_reactor.inner"],
}


def time_once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="three runs: a figure, no target")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 3
    times = Timings(COMMANDS, echo=False)
    for run, kind in interleaved(list(COMMANDS), args.runs):
        times.add(run, kind, time_once(COMMANDS[kind]))
    print_figures([
        Figure("python -c pass", millis(times.median("bare"))),
        Figure("atomic-reactor --help", millis(times.median("help")), "< 300 ms"),
        Figure("import of the whole workflow", f"{millis(times.median('import'))}"
               "  (what --help avoids)"),
        Figure("ratio --help / bare python", f"{times.ratio('help', 'bare'):.2f}"),
    ], smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
