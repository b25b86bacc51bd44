#!/bin/sh
# Entrypoint of the privileged build image: make the engine the build asks for ready,
# run the command (atomic-reactor inside-build ...) and exit with its status.
# SIGTERM/SIGINT are passed on to the command (as SIGTERM), so a cancelled build still
# runs its exit plugins and writes its results.
#
# ATOMIC_REACTOR_ENGINE=buildah (the host sets it for `--engine buildah`): no daemon;
# buildah keeps its storage under /var/lib/containers (a volume), with the kernel's
# overlay when it mounts there, else vfs:
#   ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER  storage driver (default: overlay if it mounts,
#                                          else vfs)
# Otherwise a private dockerd is started first, and stopped afterwards:
#   DOCKERD_STORAGE_DRIVER  storage driver (default: overlay2, then vfs if it fails)
#   DOCKERD_ARGS            more dockerd arguments
#   DOCKERD_WAIT            seconds to wait for dockerd to answer (default 60)
# Exit status 6 (atomic-reactor's "engine failed") when the engine cannot be made ready.
set -u
say() { echo "run-with-engine: $*" >&2; }
LOG=/var/log/dockerd.log
WAIT=${DOCKERD_WAIT:-60}

cgroups_writable() {
    # cgroup v1: the controllers are mounted read-only unless the container is --privileged
    if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
        for dir in /sys/fs/cgroup/*/; do
            if [ -d "$dir" ]; then
                mount -o remount,bind,rw "$dir" 2>/dev/null || true
            fi
        done
    else
        # cgroup v2 (best effort): writable, and this process out of the root cgroup so
        # that controllers can be delegated to dockerd's containers
        mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
        if mkdir -p /sys/fs/cgroup/init 2>/dev/null; then
            xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
            sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
                >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        fi
    fi
}

DOCKERD=""
start_dockerd() {
    # shellcheck disable=SC2086  # DOCKERD_ARGS is a list of arguments
    dockerd --host=unix:///var/run/docker.sock --storage-driver="$1" ${DOCKERD_ARGS:-} \
        >>"$LOG" 2>&1 &
    DOCKERD=$!
    tries=$((WAIT * 4))
    while [ "$tries" -gt 0 ]; do
        kill -0 "$DOCKERD" 2>/dev/null || return 1
        docker version >/dev/null 2>&1 && return 0
        sleep 0.25
        tries=$((tries - 1))
    done
    return 2
}

stop_dockerd() {
    [ -n "$DOCKERD" ] || return 0
    kill -TERM "$DOCKERD" 2>/dev/null || return 0
    tries=60
    while [ "$tries" -gt 0 ] && kill -0 "$DOCKERD" 2>/dev/null; do
        sleep 0.25
        tries=$((tries - 1))
    done
    kill -KILL "$DOCKERD" 2>/dev/null || true
}

start_engine_docker() {
    cgroups_writable
    started=""
    for driver in ${DOCKERD_STORAGE_DRIVER:-overlay2 vfs}; do
        if start_dockerd "$driver"; then
            started=$driver
            break
        fi
        why=$(grep -E 'level=(fatal|error)' "$LOG" 2>/dev/null | tail -n 1 | cut -c1-300)
        say "dockerd with storage driver $driver did not start${why:+: $why}"
        stop_dockerd
    done
    if [ -z "$started" ]; then
        say "no engine: dockerd did not start (see $LOG in the build container)"
        return 1
    fi
}

# Does the kernel's overlay mount in buildah's storage directory (a volume)?
overlay_mounts() {
    probe=$(mktemp -d "$1/.overlay-probe.XXXXXX") || return 1
    mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    ok=1
    if mount -t overlay overlay \
            -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
            "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
        ok=0
    fi
    rm -rf "$probe"
    return "$ok"
}

start_engine_buildah() {
    if ! command -v buildah >/dev/null 2>&1; then
        say "no engine: buildah is not installed in this build image"
        return 1
    fi
    if [ -z "${ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER:-}" ]; then
        root=${ATOMIC_REACTOR_BUILDAH_ROOT:-/var/lib/containers/storage}
        mkdir -p "$root"
        if overlay_mounts "$root"; then
            ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER=overlay
        else
            say "the kernel's overlay does not mount in $root: buildah uses vfs"
            ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER=vfs
        fi
        export ATOMIC_REACTOR_BUILDAH_STORAGE_DRIVER
    fi
}

case "${ATOMIC_REACTOR_ENGINE:-}" in
    buildah) start_engine_buildah || exit 6 ;;
    *) start_engine_docker || exit 6 ;;
esac

"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || break
done
stop_dockerd
exit "$status"
