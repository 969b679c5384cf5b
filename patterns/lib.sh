#!/usr/bin/env bash
#  patterns/lib.sh — what the pattern scripts share. Source it.
#
#  Every process started with zk_start is stopped (SIGTERM, then SIGKILL)
#  when the script exits, and the scratch directory is removed. Nothing
#  waits on a fixed sleep: processes announce readiness with --ready-file
#  and zk_wait_ready polls for the file with a deadline.

set -euo pipefail

ZK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZK_BIN=${ZK_BIN:-$ZK_ROOT/build/bin}
export PATH="$ZK_BIN:$PATH"
for zk_tool in zkit-proxy zkit-forwarder zkit-worker zkit-cat zkit-queue; do
    [ -x "$ZK_BIN/$zk_tool" ] || { echo "$0: $ZK_BIN/$zk_tool not built (run make)" >&2; exit 1; }
done

ZK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/zk-pattern.XXXXXX")
ZK_PIDS=()
ZK_NAMES=()

zk_cleanup() {
    local rc=$?
    local pid
    for pid in "${ZK_PIDS[@]+"${ZK_PIDS[@]}"}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${ZK_PIDS[@]+"${ZK_PIDS[@]}"}"; do
        #  Bounded: 50 x 0.1 s, then SIGKILL.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] && [ -d "$ZK_TMP" ]; then
        for log in "$ZK_TMP"/*.log; do
            [ -s "$log" ] || continue
            echo "--- $(basename "$log")" >&2
            tail -n 20 "$log" >&2
        done
    fi
    rm -rf "$ZK_TMP"
    exit "$rc"
}
trap zk_cleanup EXIT
trap 'exit 130' INT TERM

#  zk_start NAME CMD [ARGS...]: run CMD in the background, stderr to NAME.log.
zk_start() {
    local name=$1
    shift
    "$@" <&0 2>"$ZK_TMP/$name.log" &
    ZK_PIDS+=("$!")
    ZK_NAMES+=("$name")
}

#  zk_start_out NAME CMD...: the same, with stdout kept in NAME.out.
zk_start_out() {
    local name=$1
    shift
    #  <&0: a background job would otherwise read /dev/null, not our stdin.
    "$@" <&0 >"$ZK_TMP/$name.out" 2>"$ZK_TMP/$name.log" &
    ZK_PIDS+=("$!")
    ZK_NAMES+=("$name")
}

#  zk_wait_ready FILE [SECONDS]: wait until FILE exists (written atomically).
zk_wait_ready() {
    local file=$1 seconds=${2:-10}
    local tries=$((seconds * 20))
    while [ ! -s "$file" ]; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "$0: timed out waiting for $file" >&2
            return 1
        fi
        sleep 0.05
    done
}

#  zk_endpoint FILE ROLE: the endpoint a ready file gives for ROLE.
zk_endpoint() {
    awk -v role="$2" '$1 == role { print $2; exit }' "$1"
}

#  zk_wait_exit PID [SECONDS]: wait for a background process to end; its exit status.
zk_wait_exit() {
    local pid=$1 seconds=${2:-20}
    local tries=$((seconds * 20))
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "$0: process $pid still running after ${seconds}s" >&2
            return 124
        fi
        sleep 0.05
    done
    wait "$pid"
}

#  zk_check DESCRIPTION EXPECTED ACTUAL: print a check line; fail if different.
zk_check() {
    if [ "$2" = "$3" ]; then
        printf '  ok    %s: %s\n' "$1" "$3"
    else
        printf '  FAIL  %s: expected %s, got %s\n' "$1" "$2" "$3"
        return 1
    fi
}
