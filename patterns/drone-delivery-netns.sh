#!/usr/bin/env bash
#  Drone delivery across hosts: the hub and every service in a network
#  namespace of its own (veth pairs, a bridge; addresses from the
#  environment), History's link cut for a few seconds: delayed, nothing lost.
#  Skips, saying why, where ip netns is not permitted (not root, a container).
exec bash "$(dirname "$0")/drone-delivery/netns-test.sh" "$@"
