#!/usr/bin/env bash
#  An outside ZKW/1 worker (pyzmq, Debian's python3-zmq) against zkit-proxy --lb.
set -euo pipefail
cd "$(dirname "$0")"
if ! /usr/bin/python3 -c 'import zmq' 2>/dev/null; then
    echo "outside_lb_test: python3-zmq missing (make deps installs it)" >&2
    exit 1
fi
exec /usr/bin/python3 outside_lb.py
