#!/usr/bin/env bash
#  Outside clients (pyzmq, Debian's python3-zmq) against the real binaries.
set -euo pipefail
cd "$(dirname "$0")"
if ! /usr/bin/python3 -c 'import zmq' 2>/dev/null; then
    echo "outside_client_test: python3-zmq missing (make deps installs it)" >&2
    exit 1
fi
exec /usr/bin/python3 outside_client.py
