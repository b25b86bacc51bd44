"""What every benchmark under bench/ shares: interleaved runs, medians, ratios, figures.

A benchmark measures a few *kinds* (ours against a baseline, or variants) in
``runs`` rounds; the kinds are interleaved in every round and the order changes
from one round to the next (``interleaved``), so that drift of the shared machine
falls on all of them alike. ``Timings`` keeps the seconds of every kind, prints
each as it comes and gives medians and ratios of medians; ``print_figures``
prints the summary as aligned ``label: value`` lines, with the target noted
unless it is a smoke run. ``run``/``timed`` start a command and stop the
benchmark with the tail of its stderr when it fails. ``bench_parser`` makes the
options every benchmark has (``--runs``, ``--size-mb``, ``--smoke``) and
``parse_bench_args`` parses them, a smoke run taking its tiny inputs.

Importing this module also puts the repository root on ``sys.path`` (for
``tests.support``), so a benchmark is run as ``.venv/bin/python bench/NAME.py``.
This file is no benchmark itself: bench/smoke.sh skips ``bench/_*.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLI: tuple[str, ...] = (sys.executable, "-m", "atomic_reactor")
"""The command line of atomic-reactor, as this interpreter runs it."""


def bench_parser(doc: str | None, *, runs: int | None = None,
                 size_mb: float | None = None,
                 smoke: str = "one tiny run: a figure, no threshold") -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc`` (the benchmark's docstring)
    with the options benchmarks share: ``--runs`` (rounds, default ``runs``) and
    ``--size-mb`` (the payload, default ``size_mb``, parsed as the type of that default)
    when a default is given, and ``--smoke`` (``smoke`` says what it runs)."""
    first = doc.strip().splitlines()[0] if doc and doc.strip() else None
    parser = argparse.ArgumentParser(description=first)
    if runs is not None:
        parser.add_argument("--runs", type=int, default=runs)
    if size_mb is not None:
        parser.add_argument("--size-mb", type=type(size_mb), default=size_mb)
    parser.add_argument("--smoke", action="store_true", help=smoke)
    return parser


def parse_bench_args(parser: argparse.ArgumentParser, smoke: Mapping[str, Any],
                     argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line's options; with ``--smoke``, each option named in ``smoke``
    (by its ``dest``: ``runs``, ``size_mb``, ...) takes the value given there."""
    args = parser.parse_args(argv)
    if args.smoke:
        for dest, value in smoke.items():
            setattr(args, dest, value)
    return args


def order(kinds: Sequence[str], run: int, *, rotate: bool = False) -> list[str]:
    """The order of ``kinds`` in round ``run`` (counted from 0).

    By default even rounds take them as given and odd rounds reversed; with
    ``rotate`` each round starts one kind further on (with three or more kinds
    every kind then goes first in turn).
    """
    if rotate:
        shift = run % len(kinds) if kinds else 0
        return [*kinds[shift:], *kinds[:shift]]
    return list(kinds) if run % 2 == 0 else list(reversed(kinds))


def interleaved(kinds: Sequence[str], runs: int, *, rotate: bool = False
                ) -> Iterator[tuple[int, str]]:
    """``(run, kind)`` for every kind of every round, in the order of ``order``."""
    for run in range(runs):
        for kind in order(kinds, run, rotate=rotate):
            yield run, kind


class Timings:
    """Samples (seconds, or other figures) per kind, with medians and ratios."""

    def __init__(self, kinds: Iterable[str], *, label: str = "run", echo: bool = True
                 ) -> None:
        self.samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        self._label = label
        self._echo = echo
        self._width = max((len(kind) for kind in self.samples), default=0)

    def add(self, run: int, kind: str, seconds: float, note: str = "") -> float:
        """Record ``seconds`` for ``kind`` in round ``run`` and print the line."""
        self.samples.setdefault(kind, []).append(seconds)
        if self._echo:
            print(f"{self._label} {run + 1}: {kind:<{self._width}} {seconds:7.2f} s{note}",
                  flush=True)
        return seconds

    def record(self, kind: str, value: float) -> None:
        """Record a sample of ``kind`` without printing (derived figures)."""
        self.samples.setdefault(kind, []).append(value)

    def has(self, kind: str) -> bool:
        return bool(self.samples.get(kind))

    def median(self, kind: str) -> float:
        return statistics.median(self.samples[kind])

    def medians(self) -> dict[str, float]:
        return {kind: statistics.median(values) for kind, values in self.samples.items()
                if values}

    def ratio(self, ours: str, theirs: str) -> float:
        """median(ours) / median(theirs)."""
        return self.median(ours) / self.median(theirs)


@dataclass(frozen=True)
class Figure:
    """One line of a benchmark's summary; ``target`` is left out in smoke runs."""

    label: str
    value: str
    target: str | None = None


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def millis(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def ratio(value: float) -> str:
    return f"{value:.3f}"


def print_figures(figures: Iterable[Figure | str], *, smoke: bool) -> None:
    """A blank line, then the figures as aligned ``label: value`` lines (a ``str`` as is)."""
    rows = list(figures)
    width = max((len(row.label) for row in rows if isinstance(row, Figure)), default=0) + 1
    print()
    for row in rows:
        if isinstance(row, str):
            print(row)
            continue
        target = "" if smoke or row.target is None else f"  (target {row.target})"
        print(f"{row.label + ':':<{width}} {row.value}{target}")


def run(command: Sequence[str], *, env: Mapping[str, str] | None = None,
        what: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; stop the benchmark with the end of its stderr if it fails."""
    done = subprocess.run(list(command), capture_output=True, text=True, check=False,
                          env=dict(env) if env is not None else None)
    if done.returncode != 0:
        name = what or " ".join(command[:4]) + "…"
        raise SystemExit(f"bench: {name} failed:\n{done.stderr[-2000:]}")
    return done


def timed(command: Sequence[str], *, env: Mapping[str, str] | None = None,
          what: str | None = None) -> float:
    """Seconds ``command`` took (see ``run``)."""
    started = time.perf_counter()
    run(command, env=env, what=what)
    return time.perf_counter() - started
