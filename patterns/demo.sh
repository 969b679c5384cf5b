#!/usr/bin/env bash
#  make demo: run every channel's topology on loopback, one after another,
#  and show what flowed. Each pattern checks its own result and exits
#  non-zero if anything was lost or misrouted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for pattern in oneway pipeline fanout reqrep durable workflow; do
    echo
    echo "=== patterns/$pattern.sh"
    sed -n '2,/^source/p' "$here/$pattern.sh" | grep '^#' | sed 's/^#  \{0,1\}/    /'
    echo
    bash "$here/$pattern.sh"
done
echo
echo "=== patterns/drone-delivery/run.sh --demo 5   (a multi-service system: patterns/drone-delivery/topology.md)"
drone_run=$(mktemp -d "${TMPDIR:-/tmp}/zk-demo-drone.XXXXXX")
trap 'rm -rf "$drone_run"' EXIT
DD_RUN=$drone_run bash "$here/drone-delivery/run.sh" --demo 5
echo
echo "demo: every channel flowed end to end"
