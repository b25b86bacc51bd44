#!/usr/bin/env bash
# Make sure this machine can run the test suite: Debian packages, a running
# container engine (dockerd) and the project virtualenv (.venv).
#
# Idempotent and quiet: prints one line per action taken, nothing when all is
# in place (then it takes well under 2 s).  Exits non-zero with one line on
# failure.  Installing packages / starting dockerd needs root.
#
# Environment:
#   PYTHON        interpreter used to create .venv (default: python3, >= 3.11)
#   DOCKERD_LOG   dockerd log file (default: /var/log/atomic-reactor-dockerd.log)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_ROOT=$(pwd)

PACKAGES=(docker.io docker-registry busybox-static git ca-certificates curl python3 python3-venv
          go-md2man debootstrap debian-archive-keyring rpm pigz zstd xz-utils
          buildah fuse-overlayfs skopeo containers-storage
          qemu-user-static binfmt-support redis-server iproute2)
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/atomic-reactor-dockerd.log}
DOCKERD_WAIT=60
VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.ensure-env-stamp"
PYTHON=${PYTHON:-python3}

say() { echo "ensure-env: $*"; }
die() { echo "ensure-env: error: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a noisy command; on failure show where its output went and stop.
run_logged() {
    local what=$1 log
    shift
    log=$(mktemp "${TMPDIR:-/tmp}/ensure-env.XXXXXX.log")
    if "$@" >"$log" 2>&1; then
        rm -f "$log"
    else
        die "$what failed (exit $?; output in $log)"
    fi
}

# --------------------------------------------------------------------------- packages
ensure_packages() {
    local missing=() pkg status
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not Debian: only check that the tools exist.
        for tool in docker dockerd docker-registry busybox git; do
            command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
        done
        [ ${#missing[@]} -eq 0 ] || die "not a Debian system and missing: ${missing[*]}"
        return 0
    fi
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = "install ok installed" ] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    is_root || die "missing Debian packages (${missing[*]}); rerun as root to install them"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run_logged "apt-get update" apt-get update -q
    run_logged "apt-get install ${missing[*]}" \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --------------------------------------------------------------------------- engine
engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

ensure_engine() {
    engine_answers && return 0
    if [ -n "${DOCKER_HOST:-}" ]; then
        die "no container engine answers at DOCKER_HOST=$DOCKER_HOST (not starting a local dockerd)"
    fi
    is_root || die "no container engine answers and starting dockerd needs root"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (package docker.io)"

    # A dockerd that is already running but not answering yet: just wait for it.
    local pid=""
    if [ -s /var/run/docker.pid ]; then
        pid=$(cat /var/run/docker.pid)
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f /var/run/docker.pid # stale, from a dockerd that died
            pid=""
        fi
    fi
    if [ -z "$pid" ]; then
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
        pid=$!
        say "started dockerd (pid $pid, log $DOCKERD_LOG)"
    fi
    local deadline=$((SECONDS + DOCKERD_WAIT))
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            local why
            why=$(grep -E 'failed to start daemon|level=fatal' "$DOCKERD_LOG" 2>/dev/null | tail -n 1 | cut -c1-200)
            die "dockerd exited${why:+ ($why)}; see $DOCKERD_LOG"
        fi
        [ $SECONDS -lt $deadline ] || die "dockerd did not answer within ${DOCKERD_WAIT}s; see $DOCKERD_LOG"
        sleep 1
    done
}

# --------------------------------------------------------------------------- venv
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ] || ! python_ok "$VENV/bin/python"; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (package python3)"
        python_ok "$PYTHON" || die "$PYTHON is older than 3.11"
        say "creating virtualenv $VENV"
        rm -f "$STAMP"
        run_logged "creating $VENV" "$PYTHON" -m venv --clear "$VENV"
    fi
    if [ ! -f "$STAMP" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$STAMP" ]; then
        say "installing the project into $VENV (pip install -e '.[dev]')"
        run_logged "pip install -e '.[dev]'" \
            "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "${REPO_ROOT}[dev]"
        touch "$STAMP"
    fi
}

# --------------------------------------------------------------------------- emulation
# Other architectures run under QEMU user emulation. binfmt_misc is not mounted on
# a fresh machine; without it nothing foreign runs (multi-platform builds say so).
ensure_binfmt() {
    command -v update-binfmts >/dev/null 2>&1 || return 0
    is_root || return 0
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || { say "warning: cannot mount binfmt_misc; foreign platforms will not build"; return 0; }
        say "mounted binfmt_misc"
    fi
    local arch
    for arch in aarch64; do
        if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ]; then
            update-binfmts --enable "qemu-$arch" >/dev/null 2>&1 \
                && say "enabled qemu-$arch emulation" \
                || say "warning: could not enable qemu-$arch"
        fi
    done
}

ensure_packages
ensure_engine
ensure_binfmt
ensure_venv
