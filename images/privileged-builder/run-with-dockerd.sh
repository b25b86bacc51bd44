#!/bin/sh
# Entrypoint of the privileged build image: start a private dockerd, wait until it
# answers, run the command (atomic-reactor inside-build ...), stop dockerd and exit
# with the command's status. SIGTERM/SIGINT are passed on to the command (as SIGTERM),
# so a cancelled build still runs its exit plugins and writes its results.
#
#   DOCKERD_STORAGE_DRIVER  storage driver (default: overlay2, then vfs if it fails)
#   DOCKERD_ARGS            more dockerd arguments
#   DOCKERD_WAIT            seconds to wait for dockerd to answer (default 60)
# Exit status 6 (atomic-reactor's "engine failed") when dockerd does not start.
set -u
say() { echo "run-with-dockerd: $*" >&2; }
LOG=/var/log/dockerd.log
WAIT=${DOCKERD_WAIT:-60}

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
    exit 6
fi

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
