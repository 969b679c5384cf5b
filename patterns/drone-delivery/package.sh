#!/bin/sh
#  Package: "register DELIVERY DESCRIPTION..." -> "ok pkg-DELIVERY"; the
#  package record is a file in Package's own store.
. "$DD_HOME/common.sh"
read -r verb id desc || true
[ "$verb" = register ] || fail "package: unknown request '$verb'"
valid_id "$id" || fail "package: bad delivery id"
mkdir -p "$DD_DATA/package"
printf '%s %s\n' "$id" "$desc" >"$DD_DATA/package/$id.tmp"
mv "$DD_DATA/package/$id.tmp" "$DD_DATA/package/$id"
printf 'ok pkg-%s' "$id"
