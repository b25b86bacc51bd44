#!/usr/bin/env bash
# The project's test command (also what CI runs via .ci/run):
#   1. scripts/ensure-env.sh (packages, dockerd, .venv)
#   2. ruff check src tests bench scripts
#   3. mypy --strict over src, tests, bench and scripts (configured in pyproject.toml)
#   4. pytest tests/unit
#   5. pytest tests/integration (docker engine)
#   6. pytest tests/integration with AR_TEST_ENGINE=buildah: the engine-neutral tests
#      (marked both_engines) and tests/integration/buildah, against buildah
#   6. bench/smoke.sh (every benchmark once, tiny, no threshold)
# Every stage runs even if an earlier one failed; the exit status is non-zero
# if any stage failed.  Extra arguments are passed to both pytest runs, e.g.
#   bash scripts/test.sh -x -k registry
# A pytest run that collects no tests (exit 5) counts as passed, with a warning.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

header() { printf '\n==> %s\n' "$*"; }

header "environment (scripts/ensure-env.sh)"
if ! bash scripts/ensure-env.sh; then
    echo "test.sh: the environment is not usable; no stage was run" >&2
    exit 1
fi

BIN=.venv/bin
failed=()
warnings=()

stage() {
    local name=$1 rc
    shift
    header "$name"
    "$@"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "--> $name: ok"
    else
        echo "--> $name: FAILED (exit $rc)"
        failed+=("$name")
    fi
}

pytest_stage() {
    local name=$1 dir=$2 rc
    shift 2
    header "$name"
    if [ ! -d "$dir" ]; then
        echo "--> $name: WARNING: $dir does not exist, nothing to run"
        warnings+=("$name: $dir does not exist")
        return
    fi
    "$BIN/pytest" "$dir" -q "$@"
    rc=$?
    case $rc in
        0) echo "--> $name: ok" ;;
        5)
            echo "--> $name: WARNING: no tests collected in $dir (exit 5), counted as passed"
            warnings+=("$name: no tests collected")
            ;;
        *)
            echo "--> $name: FAILED (exit $rc)"
            failed+=("$name")
            ;;
    esac
}

stage "ruff check" "$BIN/ruff" check src tests bench scripts
stage "mypy" "$BIN/mypy"
pytest_stage "pytest tests/unit" tests/unit "$@"
pytest_stage "pytest tests/integration" tests/integration "$@"
AR_TEST_ENGINE=buildah pytest_stage "pytest tests/integration (buildah engine)" \
    tests/integration "$@"
stage "benchmarks (smoke)" bash bench/smoke.sh

header "summary"
for w in "${warnings[@]+"${warnings[@]}"}"; do
    echo "warning: $w"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED stages: ${failed[*]}"
    exit 1
fi
echo "all stages passed"
