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
echo "demo: every channel flowed end to end"
