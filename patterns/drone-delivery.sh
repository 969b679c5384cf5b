#!/usr/bin/env bash
#  Drone delivery: a multi-service system composed from zkit, end to end
#  (patterns/drone-delivery/: topology.md draws it, run.sh runs it).
#
#      client ─req▶ proxy --lb ─▶ Scheduler ─req▶ Accounts, Package, Drones, Delivery
#      Drones ─flight jobs▶ zkit-queue ─▶ drone-sim ─pub drone.ID▶ forwarder ─▶ Delivery
#      Delivery ─put▶ zkit-queue (delivery-events) ─▶ History;  ─pub delivery.ID▶ notify, view
#
#  DD_N deliveries (default 50) through the public API all end
#  DeliveryComplete and History holds each one's ordered events, although
#  History is SIGKILLed and restarted meanwhile; with Drone Management down,
#  scheduling fails fast and clearly while queries answer; trace.sh shows a
#  delivery's path. (The same across network namespaces:
#  drone-delivery-netns.sh.)
exec bash "$(dirname "$0")/drone-delivery/test.sh" "$@"
