#!/usr/bin/env bash
# Run every benchmark once in its smoke mode: tiny inputs, a figure printed, no threshold.
# Every bench/*.py with a --smoke mode (its options made by _common.bench_parser, or a
# "--smoke" of its own) is picked up (new benchmarks too; bench/_*.py are modules the
# benchmarks share, not benchmarks);
# each gets BENCH_SMOKE_TIMEOUT seconds (default 300: benchmarks wait for the engine lock
# while test sessions hold it). Exit status: non-zero if any failed.
#   bash bench/smoke.sh            (from the repository root or anywhere)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-.venv/bin/python}
TIMEOUT=${BENCH_SMOKE_TIMEOUT:-300}
failed=()
ran=0
for bench in bench/*.py; do
    case $(basename "$bench") in _*) continue ;; esac
    if ! grep -q -e 'bench_parser(' -e '"--smoke"' -- "$bench"; then
        echo "bench/smoke.sh: $bench has no --smoke mode, skipped"
        continue
    fi
    ran=$((ran + 1))
    printf '\n--> %s --smoke\n' "$bench"
    started=$(date +%s%N)
    timeout --kill-after=10 "$TIMEOUT" "$PY" "$bench" --smoke
    rc=$?
    tenths=$(( ($(date +%s%N) - started) / 100000000 ))
    elapsed="$((tenths / 10)).$((tenths % 10))"
    if [ "$rc" -eq 0 ]; then
        echo "--> $bench: ok (${elapsed} s)"
    else
        echo "--> $bench: FAILED (exit $rc, ${elapsed} s)"
        failed+=("$bench")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench/smoke.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "bench/smoke.sh: $ran benchmarks ran"
