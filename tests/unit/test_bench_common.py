"""bench/_common.py: the interleaving order, medians and ratios the benchmarks share."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "_common.py"


@pytest.fixture(scope="module")
def common() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench_common", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_two_kinds_alternate_which_goes_first(common: ModuleType) -> None:
    assert list(common.interleaved(["a", "b"], 3)) == [
        (0, "a"), (0, "b"), (1, "b"), (1, "a"), (2, "a"), (2, "b")]


def test_rotation_puts_every_kind_first_in_turn(common: ModuleType) -> None:
    firsts = [common.order(["a", "b", "c"], run, rotate=True)[0] for run in range(3)]
    assert firsts == ["a", "b", "c"]
    assert common.order(["a", "b", "c"], 1) == ["c", "b", "a"]


def test_medians_and_ratio(common: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    times = common.Timings(["ours", "theirs"])
    for run, (ours, theirs) in enumerate([(1.0, 2.0), (3.0, 4.0), (2.0, 8.0)]):
        times.add(run, "ours", ours)
        times.add(run, "theirs", theirs)
    assert times.median("ours") == 2.0 and times.median("theirs") == 4.0
    assert times.ratio("ours", "theirs") == 0.5
    assert "run 3: theirs    8.00 s" in capsys.readouterr().out


def test_figures_leave_the_target_out_of_smoke_runs(
        common: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [common.Figure("ratio", "0.900", "<= 1.0"), common.Figure("a longer label", "1 s")]
    common.print_figures(rows, smoke=False)
    full = capsys.readouterr().out.splitlines()
    assert full == ["", "ratio:          0.900  (target <= 1.0)", "a longer label: 1 s"]
    common.print_figures(rows, smoke=True)
    assert "target" not in capsys.readouterr().out


def test_a_failing_command_stops_the_benchmark_with_its_stderr(common: ModuleType) -> None:
    with pytest.raises(SystemExit, match=r"bench: the thing failed:\n.*oops"):
        common.run(["sh", "-c", "echo oops >&2; exit 3"], what="the thing")


def test_the_shared_options_and_their_smoke_values(common: ModuleType) -> None:
    parser = common.bench_parser("A benchmark.\n\nMore.", runs=5, size_mb=40.0)
    parser.add_argument("--files", type=int, default=100)
    assert parser.description == "A benchmark."
    smoke = {"runs": 1, "size_mb": 1, "files": 2}
    args = common.parse_bench_args(parser, smoke, ["--runs", "7", "--size-mb", "2.5"])
    assert (args.runs, args.size_mb, args.files, args.smoke) == (7, 2.5, 100, False)
    args = common.parse_bench_args(parser, smoke, ["--smoke", "--runs", "7"])
    assert (args.runs, args.size_mb, args.files, args.smoke) == (1, 1, 2, True)
    # an option left out is not there; --size-mb is parsed as its default's type
    bare = common.bench_parser(None, size_mb=8)
    assert vars(common.parse_bench_args(bare, {}, ["--size-mb", "3"])) == {
        "size_mb": 3, "smoke": False}
    with pytest.raises(SystemExit):
        common.parse_bench_args(bare, {}, ["--runs", "2"])
